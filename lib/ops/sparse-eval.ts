// Measures block-sparse attention against dense attention on the same inputs: the accuracy
// (relative L1 of the outputs, SpargeAttn's metric), the sparsity achieved and both run times.
// Works on any q/k/v (synthetic, or captured from a trained model's layer).
import { performance } from 'perf_hooks';

import { QuantMoeError } from '../errors';
import { native } from '../native';
import type { Tensor } from '../native';
import type { SparseAttentionOptions, SparseAttentionStats } from '../native-ops/attention';

export interface SparseEvalOptions extends SparseAttentionOptions {
  /** Timed runs of each (the minimum is reported), default 1. */
  repeats?: number;
}

export interface SparseEvalResult {
  /** Σ|sparse − dense| / Σ|dense|. */
  relL1: number;
  sparsity: number;
  denseMs: number;
  sparseMs: number;
  stats: SparseAttentionStats;
}

function relL1(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += Math.abs(a[i] - b[i]);
    den += Math.abs(b[i]);
  }
  return den > 0 ? num / den : num;
}

/** q f32 [T, Hq, D], k/v f32 [T, Hkv, D] (one sequence, self-attention). */
export function evaluateSparseAttention(q: Tensor, k: Tensor, v: Tensor, options: SparseEvalOptions = {}): SparseEvalResult {
  const { repeats = 1, ...sparseOpts } = options;
  if (!(Number.isInteger(repeats) && repeats >= 1)) {
    throw new QuantMoeError('E_ARGUMENT', `evaluateSparseAttention: repeats must be a positive integer, got ${repeats}`);
  }
  const n = native();
  const denseOpts = { causal: sparseOpts.causal, scale: sparseOpts.scale, threads: sparseOpts.threads, startPos: 0 };
  let denseMs = Infinity;
  let dense: Tensor | undefined;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const y = n.attentionDense(q, k, v, { ...denseOpts, out: dense });
    denseMs = Math.min(denseMs, performance.now() - t0);
    dense = y;
  }
  let sparseMs = Infinity;
  let out: Tensor | undefined;
  let stats: SparseAttentionStats | undefined;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const res = n.sparseAttention(q, k, v, { ...sparseOpts, out });
    sparseMs = Math.min(sparseMs, performance.now() - t0);
    out = res.out;
    stats = res.stats;
  }
  const d = new Float32Array(dense!.toArrayBuffer());
  const s = new Float32Array(out!.toArrayBuffer());
  dense!.dispose();
  out!.dispose();
  return { relL1: relL1(s, d), sparsity: stats!.sparsity, denseMs, sparseMs, stats: stats! };
}
