// Random-weight GGUF files in the shapes of real MoE models, for the end-to-end benchmark.
// Tensor names, shapes, types and metadata keys mirror what lib/convert/hf-to-gguf.ts writes
// (llama.cpp's names; experts stacked as ffn_*_exps [E, F, D]; 1-D tensors and the router F32;
// matrices in the requested type with typeForRow's fallback), and the tokenizer is the tiny
// byte-level BPE of lib/fixtures (vocabulary 320), so llama.cpp loads the same file.
//
// Speed: the weight values do not matter for timing, only that every block is valid (finite,
// sane scales). Each quantized type gets one pool of random rows quantized once with the native
// quantizer; every matrix is then filled by tiling that pool's blocks from a rotating offset and
// streamed to writeGGUF chunk by chunk, so a multi-GB file costs little more than the disk write.
import * as fs from 'fs';
import * as path from 'path';

import { typeForRow } from '../../lib/convert/hf-to-gguf';
import type { ConvertType } from '../../lib/convert/hf-to-gguf';
import { tinyTokenizerConfig, tinyTokenizerJson, tinyTokenizerSize } from '../../lib/fixtures/tiny-tokenizer';
import { ggmlTypeInfo, tensorByteSize } from '../../lib/formats/ggml-types';
import type { GGMLTypeName } from '../../lib/formats/ggml-types';
import { f32, str, u32 } from '../../lib/formats/gguf-types';
import type { GGUFMetadataInput } from '../../lib/formats/gguf-types';
import { writeGGUF } from '../../lib/formats/gguf-write';
import type { GGUFWriteTensor } from '../../lib/formats/gguf-write';
import { hfTokenizerToGGUFMetadata } from '../../lib/formats/vocab/hf-to-gguf';
import { native } from '../../lib/native';
import type { DTypeName } from '../../lib/native';

export type BenchModelName = 'olmoe' | 'qwen-mini';
export type BenchType = 'q4_0' | 'q8_0' | 'q4_k';

export interface BenchModelShape {
  name: BenchModelName;
  /** What it imitates. */
  title: string;
  /** GGUF general.architecture. */
  arch: 'olmoe' | 'qwen2moe';
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  topk: number;
  expertFfn: number;
  /** Shared expert FFN width (0: none); Qwen2-MoE's comes with a sigmoid gate. */
  sharedFfn: number;
  /** {arch}.feed_forward_length (HF intermediate_size). */
  ffnLength: number;
  contextLength: number;
  vocabSize: number;
  ropeTheta: number;
  normEps: number;
  qkNorm: boolean;
  qkvBias: boolean;
}

export const MODELS: Record<BenchModelName, BenchModelShape> = {
  olmoe: {
    name: 'olmoe', title: 'OLMoE-1B-7B', arch: 'olmoe', layers: 16, hidden: 2048, heads: 16, kvHeads: 16, headDim: 128,
    experts: 64, topk: 8, expertFfn: 1024, sharedFfn: 0, ffnLength: 1024, contextLength: 4096, vocabSize: 320,
    ropeTheta: 10000, normEps: 1e-5, qkNorm: true, qkvBias: false,
  },
  'qwen-mini': {
    name: 'qwen-mini', title: 'Qwen-MoE-mini', arch: 'qwen2moe', layers: 8, hidden: 1024, heads: 8, kvHeads: 8, headDim: 128,
    experts: 60, topk: 4, expertFfn: 704, sharedFfn: 2816, ffnLength: 2816, contextLength: 4096, vocabSize: 320,
    ropeTheta: 1000000, normEps: 1e-6, qkNorm: false, qkvBias: true,
  },
};

/** Default types per model (Q4_K only for OLMoE: Qwen-mini's 704-wide rows make it mostly Q5_0). */
export const DEFAULT_TYPES: Record<BenchModelName, BenchType[]> = {
  olmoe: ['q4_0', 'q8_0', 'q4_k'],
  'qwen-mini': ['q4_0', 'q8_0'],
};

// llama_ftype values (llama.h) for general.file_type.
const FILE_TYPE: Record<BenchType, number> = { q4_0: 2, q8_0: 7, q4_k: 15 };

/** One tensor of the file: name, type, row-major shape, and how to fill it. */
export interface PlannedTensor {
  name: string;
  type: GGMLTypeName;
  shape: number[];
  fill: 'matrix' | 'norm' | 'router' | 'bias';
}

/** The tensor list of a model in a type, in llama.cpp's order (token_embd, blocks, output). */
export function planTensors(m: BenchModelShape, type: BenchType): PlannedTensor[] {
  const want = type.toUpperCase() as ConvertType;
  const D = m.hidden, Q = m.heads * m.headDim, KV = m.kvHeads * m.headDim, E = m.experts, F = m.expertFfn, Fs = m.sharedFfn;
  const out: PlannedTensor[] = [];
  const mat = (name: string, shape: number[]) =>
    out.push({ name, type: typeForRow(want, shape[shape.length - 1]) as GGMLTypeName, shape, fill: 'matrix' });
  const vec = (name: string, n: number, fill: PlannedTensor['fill']) => out.push({ name, type: 'F32', shape: [n], fill });
  mat('token_embd.weight', [m.vocabSize, D]);
  for (let l = 0; l < m.layers; l++) {
    const b = (s: string) => `blk.${l}.${s}`;
    vec(b('attn_norm.weight'), D, 'norm');
    mat(b('attn_q.weight'), [Q, D]);
    mat(b('attn_k.weight'), [KV, D]);
    mat(b('attn_v.weight'), [KV, D]);
    if (m.qkvBias) {
      vec(b('attn_q.bias'), Q, 'bias');
      vec(b('attn_k.bias'), KV, 'bias');
      vec(b('attn_v.bias'), KV, 'bias');
    }
    if (m.qkNorm) {
      vec(b('attn_q_norm.weight'), Q, 'norm');
      vec(b('attn_k_norm.weight'), KV, 'norm');
    }
    mat(b('attn_output.weight'), [D, Q]);
    vec(b('ffn_norm.weight'), D, 'norm');
    // router: F32, as the converter keeps it
    out.push({ name: b('ffn_gate_inp.weight'), type: 'F32', shape: [E, D], fill: 'router' });
    mat(b('ffn_gate_exps.weight'), [E, F, D]);
    mat(b('ffn_up_exps.weight'), [E, F, D]);
    mat(b('ffn_down_exps.weight'), [E, D, F]);
    if (Fs > 0) {
      vec(b('ffn_gate_inp_shexp.weight'), D, 'router');
      mat(b('ffn_gate_shexp.weight'), [Fs, D]);
      mat(b('ffn_up_shexp.weight'), [Fs, D]);
      mat(b('ffn_down_shexp.weight'), [D, Fs]);
    }
  }
  vec('output_norm.weight', D, 'norm');
  mat('output.weight', [m.vocabSize, D]);
  return out;
}

/** Metadata keys as lib/convert/hf-to-gguf.ts metadata() writes them, plus the tiny tokenizer. */
export function modelMetadata(m: BenchModelShape, type: BenchType): Record<string, GGUFMetadataInput> {
  const a = m.arch;
  const meta: Record<string, GGUFMetadataInput> = {
    'general.architecture': str(a),
    'general.name': str(`quantmoe-bench ${m.title} random ${type} (${m.layers} layers)`),
    'general.file_type': u32(FILE_TYPE[type]),
    [`${a}.context_length`]: u32(m.contextLength),
    [`${a}.embedding_length`]: u32(m.hidden),
    [`${a}.block_count`]: u32(m.layers),
    [`${a}.feed_forward_length`]: u32(m.ffnLength),
    [`${a}.attention.head_count`]: u32(m.heads),
    [`${a}.attention.head_count_kv`]: u32(m.kvHeads),
    [`${a}.attention.key_length`]: u32(m.headDim),
    [`${a}.attention.value_length`]: u32(m.headDim),
    [`${a}.attention.layer_norm_rms_epsilon`]: f32(m.normEps),
    [`${a}.rope.freq_base`]: f32(m.ropeTheta),
    [`${a}.rope.dimension_count`]: u32(m.headDim),
    [`${a}.vocab_size`]: u32(m.vocabSize),
    [`${a}.expert_count`]: u32(m.experts),
    [`${a}.expert_used_count`]: u32(m.topk),
    [`${a}.expert_feed_forward_length`]: u32(m.expertFfn),
  };
  if (m.sharedFfn > 0) meta[`${a}.expert_shared_feed_forward_length`] = u32(m.sharedFfn);
  const vocab = hfTokenizerToGGUFMetadata(tinyTokenizerJson(), tinyTokenizerConfig(), {
    vocabSize: m.vocabSize, eosTokenId: tinyTokenizerSize() - 3,
  });
  return { ...meta, ...vocab };
}

// ---- deterministic random numbers (cheap; only a few million are drawn per file) ----
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** Uniform [0, 1) (mulberry32). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Approximately normal (sum of 4 uniforms, unit variance). */
  normal(): number {
    return (this.next() + this.next() + this.next() + this.next() - 2) * Math.sqrt(3);
  }
}

const POOL_COLS = 256; // a multiple of every block size
const POOL_ROWS = 4096; // 1 Mi values per type
const CHUNK = 8 << 20;

/** Quantized blocks of random N(0, 0.02²) rows, one pool per type (built on first use). */
class BlockPools {
  private readonly pools = new Map<GGMLTypeName, { bytes: Buffer; blockBytes: number }>();

  get(type: GGMLTypeName): { bytes: Buffer; blockBytes: number } {
    let p = this.pools.get(type);
    if (p) return p;
    const info = ggmlTypeInfo(type)!;
    const rng = new Rng(0x5eed + info.id);
    const v = new Float32Array(POOL_ROWS * POOL_COLS);
    for (let i = 0; i < v.length; i++) v[i] = 0.02 * rng.normal();
    const q = native();
    const t = q.tensorFromData('f32', [POOL_ROWS, POOL_COLS], v);
    const qt = q.quantize(type.toLowerCase() as DTypeName, t);
    const bytes = Buffer.from(qt.toArrayBuffer());
    t.dispose();
    qt.dispose();
    p = { bytes, blockBytes: info.typeSize };
    this.pools.set(type, p);
    return p;
  }
}

/** size bytes of whole blocks tiled from the pool, starting at block `start` (mod the pool). */
async function* tiled(pool: { bytes: Buffer; blockBytes: number }, size: number, start: number): AsyncGenerator<Uint8Array> {
  const poolBytes = pool.bytes.length;
  let src = (start * pool.blockBytes) % poolBytes;
  let left = size;
  while (left > 0) {
    const n = Math.min(CHUNK, left);
    const chunk = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const k = Math.min(n - o, poolBytes - src);
      pool.bytes.copy(chunk, o, src, src + k);
      o += k;
      src = (src + k) % poolBytes;
    }
    left -= n;
    yield chunk;
  }
}

function f32Tensor(shape: number[], fill: PlannedTensor['fill'], rng: Rng, D: number): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (fill === 'norm') v[i] = 1 + 0.05 * rng.normal(); // RMSNorm weights around 1
    else if (fill === 'router') v[i] = (3 / Math.sqrt(D)) * rng.normal(); // router logits ~N(0, 3²/D·|x|²)
    else v[i] = 0.02 * rng.normal(); // biases
  }
  return new Uint8Array(v.buffer);
}

/** Writes the random GGUF (unless it exists). Returns its path and size. */
export async function ensureModelFile(
  dir: string, m: BenchModelShape, type: BenchType, log: (line: string) => void,
): Promise<{ path: string; bytes: number; created: boolean }> {
  // v1: bump when the generator changes, so stale cached files are not reused
  const file = path.join(dir, `${m.name}-${m.layers}L-${type}-v1.gguf`);
  if (fs.existsSync(file)) return { path: file, bytes: fs.statSync(file).size, created: false };
  await fs.promises.mkdir(dir, { recursive: true });
  const plan = planTensors(m, type);
  const total = plan.reduce((s, t) => s + tensorByteSize(t.type, t.shape), 0);
  log(`generating ${path.basename(file)} (${(total / 1e9).toFixed(2)} GB of tensors) ...`);
  const pools = new BlockPools();
  const rng = new Rng(1234);
  let rot = 0;
  const tensors: GGUFWriteTensor[] = plan.map((t) => {
    const size = tensorByteSize(t.type, t.shape);
    if (t.type === 'F32') {
      return { name: t.name, type: t.type, shape: t.shape, data: () => f32Tensor(t.shape, t.fill, rng, m.hidden) };
    }
    const start = (rot += 7919);
    return { name: t.name, type: t.type, shape: t.shape, data: tiled(pools.get(t.type), size, start) };
  });
  const t0 = Date.now();
  let lastLog = t0;
  const res = await writeGGUF(file, { metadata: modelMetadata(m, type), tensors }, {
    onProgress: (p) => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`  ${((100 * p.bytesWritten) / p.totalBytes).toFixed(0)}% (${(p.bytesWritten / 1e9).toFixed(2)} GB)`);
      }
    },
  });
  const s = (Date.now() - t0) / 1000;
  log(`  wrote ${(res.fileSize / 1e9).toFixed(2)} GB in ${s.toFixed(1)} s (${(res.fileSize / 1e9 / s).toFixed(2)} GB/s)`);
  return { path: file, bytes: res.fileSize, created: true };
}
