// Hugging Face folder → GGUF file that llama.cpp runs: llama.cpp tensor names and metadata keys
// (as convert_hf_to_gguf.py writes them), experts stacked into ffn_*_exps [E, F, D], Llama/Mixtral
// Q/K rows permuted for GGUF `llama`'s adjacent-pair RoPE, 1-D tensors and the router kept F32,
// the rest in the requested type (K-quants fall back to Q8_0/Q5_0-style types when a row is not a
// multiple of 256, as llama.cpp's quantizer does).
import * as fs from 'fs';

import { QuantMoeError, abortError } from '../errors';
import { ggmlTypeInfo } from '../formats/ggml-types';
import type { GGMLTypeName } from '../formats/ggml-types';
import { writeGGUF } from '../formats/gguf-write';
import type { GGUFWriteTensor } from '../formats/gguf-write';
import { f32, str, u32 } from '../formats/gguf-types';
import type { GGUFMetadataInput } from '../formats/gguf-types';
import { readHFFolder } from '../formats/hf';
import type { SafetensorsTensorInfo } from '../formats/safetensors-types';
import { hfTokenizerToGGUFMetadata } from '../formats/vocab/hf-to-gguf';
import { ARCHS } from '../models/archs';
import { specFromHF } from '../models/from-hf';
import { blk, hfToGGUFName } from '../models/names';
import type { ModelSpec } from '../models/spec';
import { native } from '../native';
import type { DTypeName } from '../native';

export type ConvertType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface ConvertOptions {
  type?: ConvertType;
  signal?: AbortSignal;
  onProgress?: (p: { phase: 'convert'; fraction: number; tensor?: string }) => void;
}

/** The type a row of `cols` elements can take: the requested one, or llama.cpp's fallback. */
export function typeForRow(type: ConvertType, cols: number): ConvertType {
  const bs = ggmlTypeInfo(type)!.blockSize;
  if (cols % bs === 0) return type;
  const fallback: Partial<Record<ConvertType, ConvertType>> = {
    Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0',
  };
  const f = fallback[type];
  if (f && cols % 32 === 0) return f;
  return 'F16';
}

async function readF32(info: SafetensorsTensorInfo): Promise<Float32Array> {
  const fh = await fs.promises.open(info.file, 'r');
  try {
    const buf = Buffer.alloc(info.byteSize);
    await fh.read(buf, 0, info.byteSize, info.offset);
    if (info.dtype === 'F32') return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const dtype = info.dtype.toLowerCase() as DTypeName;
    const t = native().tensorFromData(dtype, [info.nElements], buf);
    const f = native().dequantize(t);
    const out = new Float32Array(f.toArrayBuffer());
    t.dispose();
    f.dispose();
    return out;
  } finally {
    await fh.close();
  }
}

// GGUF `llama` expects Q/K rows in the interleaved order its adjacent-pair RoPE rotates
// (convert_hf_to_gguf.py LlamaModel.permute): within each head, rows [0..d/2) and [d/2..d) are
// interleaved.
function permuteQK(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const out = new Float32Array(w.length);
  const hd = rows / heads;
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (const j of [0, 1]) {
        const src = h * hd + j * half + i;
        const dst = h * hd + 2 * i + j;
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

function encode(values: Float32Array, shape: number[], type: ConvertType): Uint8Array {
  if (type === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const t = native().tensorFromData('f32', shape, values);
  const q = native().quantize(type.toLowerCase() as DTypeName, t);
  const bytes = new Uint8Array(q.toArrayBuffer());
  t.dispose();
  q.dispose();
  return bytes;
}

function metadata(spec: ModelSpec, hfConfig: Record<string, unknown>): Record<string, GGUFMetadataInput> {
  const a = ARCHS[spec.arch].gguf;
  const m: Record<string, GGUFMetadataInput> = {
    'general.architecture': str(a),
    'general.name': str(String(hfConfig._name_or_path ?? spec.arch)),
    'general.file_type': u32(1),
    [`${a}.context_length`]: u32(spec.contextLength),
    [`${a}.embedding_length`]: u32(spec.hidden),
    [`${a}.block_count`]: u32(spec.layers),
    [`${a}.feed_forward_length`]: u32(spec.denseFfn || spec.moe?.expertFfn || 0),
    [`${a}.attention.head_count`]: u32(spec.heads),
    [`${a}.attention.head_count_kv`]: u32(spec.kvHeads),
    [`${a}.attention.key_length`]: u32(spec.headDim),
    [`${a}.attention.value_length`]: u32(spec.headDim),
    [`${a}.attention.layer_norm_rms_epsilon`]: f32(spec.normEps),
    [`${a}.rope.freq_base`]: f32(spec.ropeTheta),
    [`${a}.rope.dimension_count`]: u32(spec.ropeDim),
    [`${a}.vocab_size`]: u32(spec.vocabSize),
  };
  if (spec.ropeScaling.type === 'linear') {
    m[`${a}.rope.scaling.type`] = str('linear');
    m[`${a}.rope.scaling.factor`] = f32(spec.ropeScaling.factor);
  } else if (spec.ropeScaling.type === 'yarn') {
    m[`${a}.rope.scaling.type`] = str('yarn');
    m[`${a}.rope.scaling.factor`] = f32(spec.ropeScaling.factor);
    m[`${a}.rope.scaling.original_context_length`] = u32(spec.ropeScaling.originalContextLength);
  }
  if (spec.moe) {
    const mo = spec.moe;
    m[`${a}.expert_count`] = u32(mo.experts);
    m[`${a}.expert_used_count`] = u32(mo.topk);
    m[`${a}.expert_feed_forward_length`] = u32(mo.expertFfn);
    if (mo.sharedFfn > 0) m[`${a}.expert_shared_feed_forward_length`] = u32(mo.sharedFfn);
    if (spec.arch === 'deepseek') {
      m[`${a}.leading_dense_block_count`] = u32(spec.ffnKinds.indexOf('moe'));
      m[`${a}.expert_shared_count`] = u32(Math.round(mo.sharedFfn / mo.expertFfn));
      m[`${a}.expert_weights_scale`] = f32(mo.routedScaling);
    }
  }
  return m;
}

export async function convertHFToGGUF(hfDir: string, outFile: string, options: ConvertOptions = {}): Promise<{ path: string; bytes: number }> {
  const type = options.type ?? 'F16';
  if (!ggmlTypeInfo(type)) throw new QuantMoeError('E_ARGUMENT', `unknown target type '${type}'`);
  const hf = await readHFFolder(hfDir);
  const spec = specFromHF(hf.config);
  if (!hf.weights) throw new QuantMoeError('E_FORMAT', `${hfDir}: no weights`);
  if (!hf.tokenizer) throw new QuantMoeError('E_FORMAT', `${hfDir}: tokenizer.json is required to convert to GGUF`);
  const byName = new Map<string, SafetensorsTensorInfo>();
  for (const t of hf.weights.tensors) {
    const n = hfToGGUFName(t.name);
    if (n) byName.set(n, t);
  }
  const ids = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? (v[0] as number) : undefined);
  const vocabMeta = hfTokenizerToGGUFMetadata(hf.tokenizer.tokenizerJson, hf.tokenizer.tokenizerConfig, {
    vocabSize: spec.vocabSize, bosTokenId: ids(hf.config.bos_token_id), eosTokenId: ids(hf.config.eos_token_id),
  });
  const permute = spec.arch === 'llama' || spec.arch === 'deepseek';
  const tensors: GGUFWriteTensor[] = [];
  let done = 0;
  const total = byName.size;
  const progress = (tensor: string) => options.onProgress?.({ phase: 'convert', fraction: ++done / total, tensor });
  const check = () => {
    if (options.signal?.aborted) throw abortError('conversion');
  };

  const plain = (name: string, info: SafetensorsTensorInfo) => {
    const shape = [...info.shape];
    const oneD = shape.length === 1 || name.endsWith('ffn_gate_inp.weight') || name.endsWith('ffn_gate_inp_shexp.weight');
    const outShape = name.endsWith('ffn_gate_inp_shexp.weight') ? [shape[shape.length - 1]] : shape;
    const t: ConvertType = oneD ? 'F32' : typeForRow(type, shape[shape.length - 1]);
    tensors.push({
      name, type: t as GGMLTypeName, shape: outShape,
      data: async () => {
        check();
        let v = await readF32(info);
        if (permute && (name.endsWith('attn_q.weight') || name.endsWith('attn_k.weight'))) {
          v = permuteQK(v, shape[0], shape[1], name.endsWith('attn_q.weight') ? spec.heads : spec.kvHeads);
        }
        progress(name);
        return encode(v, outShape, t);
      },
    });
  };

  for (const [name, info] of byName) {
    if (/^blk\.\d+\.ffn_(gate|up|down)\.\d+\.weight$/.test(name)) continue; // stacked below
    plain(name, info);
  }
  for (let l = 0; l < spec.layers; l++) {
    if (spec.ffnKinds[l] !== 'moe') continue;
    const E = spec.moe!.experts;
    for (const proj of ['gate', 'up', 'down'] as const) {
      const parts: SafetensorsTensorInfo[] = [];
      for (let e = 0; e < E; e++) {
        const info = byName.get(`blk.${l}.ffn_${proj}.${e}.weight`);
        if (!info) throw new QuantMoeError('E_FORMAT', `${hfDir}: expert ${e} of layer ${l} has no ${proj} projection`);
        parts.push(info);
      }
      const [rows, cols] = parts[0].shape;
      const t = typeForRow(type, cols);
      const name = blk(l, `ffn_${proj}_exps.weight`);
      tensors.push({
        name, type: t as GGMLTypeName, shape: [E, rows, cols],
        data: async () => {
          check();
          const all = new Float32Array(E * rows * cols);
          for (let e = 0; e < E; e++) {
            all.set(await readF32(parts[e]), e * rows * cols);
            progress(parts[e].name);
          }
          return encode(all, [E * rows, cols], t);
        },
      });
    }
  }
  const meta = { ...metadata(spec, hf.config as Record<string, unknown>), ...vocabMeta };
  await writeGGUF(outFile, { metadata: meta, tensors }, { signal: options.signal });
  const st = await fs.promises.stat(outFile);
  return { path: outFile, bytes: st.size };
}
