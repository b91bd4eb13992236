// Attention capture for the sparse-attention work: runs one prefill of a text through the forward
// pass in the caller's process (no worker, the caller's thread blocks for it) and copies, for the
// chosen layers, the q [T, Hq, D] and k/v [T, Hkv, D] that attention consumes (after q/k-norm and
// RoPE) and the attention output [T, Hq, D] the model computed from them. Then
// sparseAttentionReport() runs the native block-sparse attention against dense attention on
// those tensors and reports the sparsity and relative L1 error per layer and per KV-head group.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { QuantMoeError } from '../errors';
import type { ModelSpec } from '../models/spec';
import { native } from '../native';
import type { Tensor } from '../native';
import type { SparseAttentionOptions, SparseAttentionStats } from '../native-ops/attention';
import { Forward } from '../runtime/forward';
import { Tokenizer } from '../runtime/tokenizer';
import { loadWeights } from '../runtime/weights';
import type { LoadedWeights } from '../runtime/weights';
import { checkAborted, checkContext } from './common';
import type { EvalText } from './common';

export interface CaptureOptions {
  /** Layers to capture (default: all). */
  layers?: number[];
  /** Tokens captured: the first `context` tokens of the text (default 512). */
  context?: number;
  /** CPU threads (default: all cores). */
  threads?: number;
  /**
   * KV cache storage the captured layers' attention reads (default 'f32': `out` is attention of
   * exactly the captured f32 k/v). 'f16' reproduces an engine loaded with kvCacheType 'f16'.
   */
  kvCacheType?: 'f32' | 'f16';
  signal?: AbortSignal;
  /** Loading progress (fraction of tensors mapped), then 1 when the forward pass is done. */
  onProgress?: (p: { phase: 'load' | 'forward'; fraction: number }) => void;
}

export interface AttentionShape {
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export interface CapturedLayer {
  layer: number;
  /** f32 [T, Hq, D] row-major, after q-norm and RoPE. */
  q: Float32Array;
  /** f32 [T, Hkv, D], after k-norm and RoPE. */
  k: Float32Array;
  /** f32 [T, Hkv, D]. */
  v: Float32Array;
  /** The model's own attention output f32 [T, Hq, D] (causal, scale 1/√D), read from its KV cache. */
  out: Float32Array;
  shape: AttentionShape;
}

export interface AttentionCapture {
  architecture: string;
  tokens: number[];
  /** Softmax scale the model uses (1/√D). */
  scale: number;
  causal: true;
  layers: CapturedLayer[];
}

async function tokenizerFor(loaded: LoadedWeights, source: string | undefined): Promise<Tokenizer> {
  if (loaded.hf) return Tokenizer.fromHFFolder(loaded.hf.dir);
  if (loaded.gguf) return Tokenizer.fromGGUF(loaded.gguf);
  if (source) return fs.statSync(source).isDirectory() ? Tokenizer.fromHFFolder(source) : Tokenizer.fromGGUF(source);
  throw new QuantMoeError('E_ARGUMENT', 'captureAttention: these weights carry no tokenizer; pass token ids instead of text');
}

function resolveLayers(spec: ModelSpec, layers: number[] | undefined): number[] {
  if (layers === undefined) return Array.from({ length: spec.layers }, (_, i) => i);
  if (!Array.isArray(layers) || layers.length === 0) throw new QuantMoeError('E_ARGUMENT', 'captureAttention: layers must be a non-empty array of layer indices');
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= spec.layers) {
      throw new QuantMoeError('E_ARGUMENT', `captureAttention: layer ${l} is outside [0, ${spec.layers})`);
    }
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

const copy = (t: Tensor) => new Float32Array(t.toArrayBuffer());

/**
 * Captures attention inputs and outputs for `layers` over the first `context` tokens of `text`.
 * `source` is a model path (.gguf file or Hugging Face folder; loaded here and released after)
 * or weights from loadWeights() (left loaded).
 */
export async function captureAttention(source: string | LoadedWeights, text: EvalText, options: CaptureOptions = {}): Promise<AttentionCapture> {
  const what = 'captureAttention';
  const context = options.context ?? 512;
  checkContext(context, what);
  const threads = options.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new QuantMoeError('E_ARGUMENT', `${what}: threads must be a positive integer, got ${threads}`);
  if (typeof text === 'string' && text.length === 0) throw new QuantMoeError('E_ARGUMENT', `${what}: the text is empty`);
  checkAborted(options.signal, what);
  const owned = typeof source === 'string';
  const loaded = owned
    ? await loadWeights(path.resolve(source), (f) => options.onProgress?.({ phase: 'load', fraction: f }))
    : source;
  let cache: Tensor | undefined;
  try {
    const spec = loaded.spec;
    const layers = resolveLayers(spec, options.layers);
    let all: number[];
    if (typeof text === 'string') all = (await tokenizerFor(loaded, owned ? path.resolve(source) : undefined)).encode(text);
    else if (Array.isArray(text)) all = [...text];
    else throw new QuantMoeError('E_ARGUMENT', `${what}: text must be a string or an array of token ids`);
    if (all.length < 2) throw new QuantMoeError('E_ARGUMENT', `${what}: the text has ${all.length} token(s); at least 2 are needed`);
    const tokens = all.slice(0, context);
    const T = tokens.length;
    if (spec.contextLength > 0 && T > spec.contextLength) {
      throw new QuantMoeError('E_CONTEXT_OVERFLOW', `${what}: ${T} tokens exceed the model's trained context of ${spec.contextLength}; use a smaller context`);
    }
    checkAborted(options.signal, what);
    cache = native().kvCacheCreate({ layers: spec.layers, maxSeqs: 1, capacity: T, kvHeads: spec.kvHeads, headDim: spec.headDim, dtype: options.kvCacheType ?? 'f32' });
    const forward = new Forward(spec, loaded.weights, cache, threads);
    const want = new Set(layers);
    const shape: AttentionShape = { tokens: T, heads: spec.heads, kvHeads: spec.kvHeads, headDim: spec.headDim };
    const captured: CapturedLayer[] = [];
    forward.step(
      { kind: 'prefill', seq: 0, tokens: Int32Array.from(tokens), startPos: 0 },
      {
        logits: 'last',
        capture: (l, q, k, v, out) => {
          if (want.has(l)) captured.push({ layer: l, q: copy(q), k: copy(k), v: copy(v), out: copy(out), shape: { ...shape } });
        },
      },
    );
    options.onProgress?.({ phase: 'forward', fraction: 1 });
    return { architecture: spec.arch, tokens, scale: 1 / Math.sqrt(spec.headDim), causal: true, layers: captured };
  } finally {
    cache?.dispose();
    if (owned) loaded.weights.dispose();
  }
}

// ---- sparse vs dense on captured tensors ----

export interface SparseReportOptions extends SparseAttentionOptions {
  /** Also run each KV-head group (a KV head and its Hq/Hkv query heads) on its own, default true. */
  perGroup?: boolean;
}

export interface SparseGroupReport {
  /** KV head index. */
  group: number;
  /** Query heads of the group. */
  heads: number[];
  sparsity: number;
  relL1: number;
  stats: SparseAttentionStats;
}

export interface SparseLayerReport {
  layer: number;
  tokens: number;
  /** Achieved sparsity over all heads (native stats). */
  sparsity: number;
  /** Σ|sparse − dense| / Σ|dense| over all heads. */
  relL1: number;
  /** Relative L1 of dense attention on the captured tensors vs the model's own output (should be ~1e-6). */
  denseVsModel: number;
  stats: SparseAttentionStats;
  groups: SparseGroupReport[];
}

export function relL1(a: Float32Array, ref: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += Math.abs(a[i] - ref[i]);
    den += Math.abs(ref[i]);
  }
  return den > 0 ? num / den : num;
}

/** Heads [h0, h0 + n) of x [T, H, D] as a new [T, n, D] array. */
function headSlice(x: Float32Array, T: number, H: number, D: number, h0: number, n: number): Float32Array {
  const out = new Float32Array(T * n * D);
  for (let t = 0; t < T; t++) out.set(x.subarray((t * H + h0) * D, (t * H + h0 + n) * D), t * n * D);
  return out;
}

function runPair(
  q: Float32Array, k: Float32Array, v: Float32Array, T: number, Hq: number, Hkv: number, D: number, opts: SparseAttentionOptions,
): { dense: Float32Array; sparse: Float32Array; stats: SparseAttentionStats } {
  const n = native();
  const tq = n.tensorFromData('f32', [T, Hq, D], q);
  const tk = n.tensorFromData('f32', [T, Hkv, D], k);
  const tv = n.tensorFromData('f32', [T, Hkv, D], v);
  try {
    const d = n.attentionDense(tq, tk, tv, { causal: opts.causal ?? true, scale: opts.scale, startPos: 0, threads: opts.threads });
    const dense = copy(d);
    d.dispose();
    const r = n.sparseAttention(tq, tk, tv, opts);
    const sparse = copy(r.out);
    r.out.dispose();
    return { dense, sparse, stats: r.stats };
  } finally {
    for (const t of [tq, tk, tv]) t.dispose();
  }
}

/** Native sparseAttention vs attentionDense on each captured layer (and KV-head group). */
export function sparseAttentionReport(capture: AttentionCapture, options: SparseReportOptions = {}): SparseLayerReport[] {
  const { perGroup = true, ...opts } = options;
  if (typeof native().sparseAttention !== 'function') {
    throw new QuantMoeError('E_NOT_IMPLEMENTED', 'sparseAttentionReport: this build of the native addon has no sparseAttention');
  }
  const sparseOpts: SparseAttentionOptions = { scale: capture.scale, ...opts };
  return capture.layers.map((c) => {
    const { tokens: T, heads: Hq, kvHeads: Hkv, headDim: D } = c.shape;
    const all = runPair(c.q, c.k, c.v, T, Hq, Hkv, D, sparseOpts);
    const groups: SparseGroupReport[] = [];
    if (perGroup) {
      const r = Hq / Hkv;
      for (let g = 0; g < Hkv; g++) {
        const res = runPair(
          headSlice(c.q, T, Hq, D, g * r, r), headSlice(c.k, T, Hkv, D, g, 1), headSlice(c.v, T, Hkv, D, g, 1), T, r, 1, D, sparseOpts,
        );
        groups.push({
          group: g, heads: Array.from({ length: r }, (_, i) => g * r + i), sparsity: res.stats.sparsity,
          relL1: relL1(res.sparse, res.dense), stats: res.stats,
        });
      }
    }
    return {
      layer: c.layer, tokens: T, sparsity: all.stats.sparsity, relL1: relL1(all.sparse, all.dense),
      denseVsModel: relL1(all.dense, c.out), stats: all.stats, groups,
    };
  });
}

// ---- files ----

export interface AttentionDumpManifest {
  format: 'quantmoe-attention-dump';
  version: 1;
  model: string;
  architecture: string;
  /** Row-major little-endian float32; q/out [tokens, heads, headDim], k/v [tokens, kvHeads, headDim]. */
  dtype: 'f32';
  ropeApplied: true;
  causal: true;
  scale: number;
  tokens: number[];
  layers: Array<{
    layer: number;
    shape: AttentionShape;
    files: { q: string; k: string; v: string; out: string };
  }>;
}

/** Writes layer<L>.{q,k,v,out}.f32 and manifest.json into `dir` (created if missing). */
export async function writeAttentionDump(capture: AttentionCapture, dir: string, model = ''): Promise<AttentionDumpManifest> {
  const manifest: AttentionDumpManifest = {
    format: 'quantmoe-attention-dump', version: 1, model, architecture: capture.architecture, dtype: 'f32', ropeApplied: true,
    causal: true, scale: capture.scale, tokens: capture.tokens, layers: [],
  };
  try {
    await fs.promises.mkdir(dir, { recursive: true });
    for (const c of capture.layers) {
      const files = { q: `layer${c.layer}.q.f32`, k: `layer${c.layer}.k.f32`, v: `layer${c.layer}.v.f32`, out: `layer${c.layer}.out.f32` };
      for (const key of ['q', 'k', 'v', 'out'] as const) {
        const a = c[key];
        await fs.promises.writeFile(path.join(dir, files[key]), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      }
      manifest.layers.push({ layer: c.layer, shape: c.shape, files });
    }
    // indented, with the token ids on one line
    const json = JSON.stringify({ ...manifest, tokens: '@tokens' }, null, 2).replace('"@tokens"', JSON.stringify(manifest.tokens));
    await fs.promises.writeFile(path.join(dir, 'manifest.json'), `${json}\n`);
  } catch (e) {
    throw new QuantMoeError('E_IO', `cannot write the attention dump to '${dir}': ${(e as Error).message}`);
  }
  return manifest;
}
