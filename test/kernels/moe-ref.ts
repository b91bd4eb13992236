// float64 references for expert routing and the MoE layer (shared by routing*.test.ts and moe*.test.ts).
// Written from the HF transformers conventions (modeling_mixtral, modeling_qwen2_moe,
// modeling_granitemoe, modeling_deepseek_v3), independent of the native code.
import type { RouteFunc } from '../../lib/native-ops/routing';

export interface RefRouteOptions {
  topK: number;
  func?: RouteFunc;
  normTopk?: boolean;
  bias?: Float32Array;
  nGroup?: number;
  topkGroup?: number;
  groupScore?: 'top2sum' | 'max';
  routedScalingFactor?: number;
}

export interface RefRoute {
  ids: Int32Array; // [T, k]
  weights: Float64Array; // [T, k]
  counts: Int32Array; // [E]
}

const key = (v: number): number => (Number.isNaN(v) ? -Infinity : v);

/** Reference router: the k chosen experts per token (descending score, ties to the lower id) and their weights. */
export function refRoute(logits: Float32Array, T: number, E: number, o: RefRouteOptions): RefRoute {
  const k = o.topK;
  const func = o.func ?? 'softmax';
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  const counts = new Int32Array(E);
  for (let t = 0; t < T; t++) {
    const lg = Array.from(logits.subarray(t * E, (t + 1) * E));
    const hasNaN = lg.some((v) => Number.isNaN(v));
    let probs: number[];
    if (func === 'softmax') {
      const finite = lg.filter((v) => !Number.isNaN(v));
      const m = Math.max(...finite);
      const ex = lg.map((v) => Math.exp(v - m));
      const s = ex.filter((v) => !Number.isNaN(v)).reduce((a, b) => a + b, 0);
      probs = ex.map((v) => v / s);
    } else if (func === 'sigmoid') {
      probs = lg.map((v) => 1 / (1 + Math.exp(-v)));
    } else {
      probs = lg.slice();
    }
    const sel = probs.map((p, e) => (Number.isNaN(lg[e]) ? -Infinity : key(p + (o.bias ? o.bias[e] : 0))));
    const allowed = new Array<boolean>(E).fill(true);
    const G = o.nGroup ?? 1;
    if (G > 1) {
      const gs = E / G;
      const gscore: number[] = [];
      for (let g = 0; g < G; g++) {
        const v = sel.slice(g * gs, (g + 1) * gs).sort((a, b) => b - a);
        gscore.push(key((o.groupScore ?? 'top2sum') === 'max' || gs < 2 ? v[0] : v[0] + v[1]));
      }
      const gorder = gscore.map((_, g) => g).sort((a, b) => (gscore[a] !== gscore[b] ? gscore[b] - gscore[a] : a - b));
      allowed.fill(false);
      for (let j = 0; j < (o.topkGroup ?? G); j++) for (let i = 0; i < gs; i++) allowed[gorder[j] * gs + i] = true;
    }
    const order = sel.map((_, e) => e).sort((a, b) => {
      if (allowed[a] !== allowed[b]) return allowed[a] ? -1 : 1;
      if (sel[a] !== sel[b]) return sel[a] > sel[b] ? -1 : 1;
      return a - b;
    });
    const chosen = order.slice(0, k);
    let w = chosen.map((e) => (func === 'softmax' && hasNaN ? NaN : probs[e]));
    if (func === 'topk_softmax') {
      const finite = w.filter((v) => !Number.isNaN(v));
      const m = finite.length ? Math.max(...finite) : -Infinity;
      const ex = w.map((v) => Math.exp(v - m));
      const s = w.some((v) => Number.isNaN(v)) ? NaN : ex.reduce((a, b) => a + b, 0);
      w = ex.map((v) => v / s);
    }
    if (o.normTopk) {
      const s = w.reduce((a, b) => a + b, 0) + 1e-20;
      w = w.map((v) => v / s);
    }
    const scale = o.routedScalingFactor ?? 1;
    for (let j = 0; j < k; j++) {
      ids[t * k + j] = chosen[j];
      weights[t * k + j] = w[j] * scale;
      counts[chosen[j]]++;
    }
  }
  return { ids, weights, counts };
}

export type RefActivation = 'silu' | 'gelu' | 'gelu_tanh';

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse (1.5e-7); use a series / continued fraction to ~1e-15.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series
    let sum = ax;
    let term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc continued fraction (Lentz) for |x| >= 2.5
  const tiny = 1e-300;
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = D === 0 ? tiny : 1 / D;
    C = ax + an / C;
    if (C === 0) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / f / Math.sqrt(Math.PI);
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** act(g) · u in float64. */
export function refGlu(act: RefActivation, g: number, u: number): number {
  switch (act) {
    case 'silu':
      return (g / (1 + Math.exp(-g))) * u;
    case 'gelu':
      return 0.5 * g * (1 + erf(g / Math.SQRT2)) * u;
    case 'gelu_tanh':
      return 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g))) * u;
  }
}

/** A dense FFN's weights as float64 row-major matrices: gate/up [F, D], down [D, F]. */
export interface RefFfn {
  gate: Float64Array;
  up: Float64Array;
  down: Float64Array;
  F: number;
  /**
   * Per 32-block minimum m of Q4_1 / Q5_1 weights (w = d·q + m), row-major [rows, K/32]: their
   * kernels pair with Q8_1 activations and use the block sum s = f16(d·Σq) stored in the
   * activation block, exactly as llama.cpp does, instead of Σ of the rounded activations.
   */
  mins?: { gate?: Float64Array; up?: Float64Array; down?: Float64Array };
}

/** An activation row as the kernel sees it: values, and for Q8_1 the stored per-32-block sums. */
export interface ActRow {
  v: ArrayLike<number>;
  s?: ArrayLike<number>;
}

/** Σ_i x_i·M[r, i] (+ the Q8_1 block-sum term for Q4_1/Q5_1 weights). */
function dotRow(M: Float64Array, mins: Float64Array | undefined, r: number, K: number, x: ActRow): number {
  let acc = 0;
  const off = r * K;
  for (let i = 0; i < K; i++) acc += x.v[i] * M[off + i];
  if (mins && x.s) {
    const nb = K / 32;
    for (let b = 0; b < nb; b++) {
      let sx = 0;
      for (let i = b * 32; i < b * 32 + 32; i++) sx += x.v[i];
      acc += mins[r * nb + b] * (x.s[b] - sx);
    }
  }
  return acc;
}

/**
 * act(x·gateᵀ) ⊙ (x·upᵀ) · downᵀ for one token row in float64. xg / xu: the activation row as the
 * gate / up GEMMs see it (rounded through their activation quantization for the tight reference);
 * roundH (optional) rounds the intermediate the way the down GEMM's activation quantization does.
 */
export function refFfnRow(xg: ActRow, xu: ActRow, D: number, w: RefFfn, act: RefActivation, roundH?: (h: Float64Array) => ActRow): Float64Array {
  const F = w.F;
  const h = new Float64Array(F);
  for (let f = 0; f < F; f++) h[f] = refGlu(act, dotRow(w.gate, w.mins?.gate, f, D, xg), dotRow(w.up, w.mins?.up, f, D, xu));
  const hr: ActRow = roundH ? roundH(h) : { v: h };
  const y = new Float64Array(D);
  for (let d = 0; d < D; d++) y[d] = dotRow(w.down, w.mins?.down, d, F, hr);
  return y;
}
