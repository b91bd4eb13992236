// Builders for MoE tests and benchmarks: random expert weights in any weight type, their float64
// (dequantized) values, and the float64 reference layer output.
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { MoeActivation, MoeExperts, MoeSharedExpert } from '../../lib/native-ops/moe';
import { f16ToF32, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import type { Rng } from '../helpers/random';
import { refFfnRow } from './moe-ref';
import type { ActRow, RefFfn, RefRoute } from './moe-ref';

/** The qgemm op family (quantize, dequantize, quantizeActivations, qmatmul). */
export const qg = native;

/**
 * n uniform values in [-√3, √3)·scale (unit variance at scale 1), never zero, seeded from rng:
 * an inline xorshift, much faster than per-element calls for the large weight arrays.
 */
export function fastFloats(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = rng.int(1, 0x7fffffff) | 0;
  const m = (Math.sqrt(3) * scale) / 2147483648;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = (s + 0.5) * m;
  }
  return a;
}

export type WType = 'f32' | 'f16' | 'bf16' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k';

/** Reads the f16 at byte `off` of each `blockBytes`-sized block (Q4_1/Q5_1 min m, Q8_1 sum s). */
function blockHalves(t: Tensor, blockBytes: number, off: number): Float64Array {
  const b = new Uint8Array(t.toArrayBuffer());
  const n = b.length / blockBytes;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f16ToF32(b[i * blockBytes + off] | (b[i * blockBytes + off + 1] << 8));
  return out;
}

const MIN_BLOCK: Partial<Record<WType, number>> = { q4_1: 20, q5_1: 24 };

/**
 * A weight tensor of the given type from f32 values, the values the kernel actually sees, and for
 * Q4_1/Q5_1 the per-block minimum (see RefFfn.mins).
 */
export function makeWeight(values: Float32Array, shape: number[], dtype: WType): { t: Tensor; v: Float64Array; mins?: Float64Array } {
  if (dtype === 'f32') return { t: tensorFromArray(values, shape), v: Float64Array.from(values) };
  let t: Tensor;
  if (dtype === 'f16' || dtype === 'bf16') t = tensorFromArray(values, shape, dtype);
  else {
    const f = tensorFromArray(values, shape);
    t = qg().quantize(dtype, f, { threads: 1 });
    f.dispose();
  }
  const dq = qg().dequantize(t);
  const v = Float64Array.from(tensorToFloat32(dq));
  dq.dispose();
  const mb = MIN_BLOCK[dtype];
  return { t, v, mins: mb ? blockHalves(t, mb, 2) : undefined };
}

export interface BuiltExperts {
  experts: MoeExperts;
  ref: RefFfn[];
  types: Array<{ gate: WType; up: WType; down: WType }>;
}

/**
 * E experts [F, D] / [D, F]. `types`: one type for all (stacked tensors) or per expert and matrix
 * (arrays of per-expert tensors).
 */
export function makeExperts(
  rng: Rng, E: number, F: number, D: number,
  types: WType | Array<{ gate: WType; up: WType; down: WType }>,
  opts: { stacked?: boolean } = {},
): BuiltExperts {
  const scaleIn = 1 / Math.sqrt(D);
  const scaleOut = 1 / Math.sqrt(F);
  const per = typeof types === 'string' ? Array.from({ length: E }, () => ({ gate: types, up: types, down: types })) : types;
  const stacked = typeof types === 'string' && opts.stacked !== false;
  const ref: RefFfn[] = [];
  if (stacked) {
    const dt = types as WType;
    const g = makeWeight(fastFloats(rng, E * F * D, scaleIn), [E, F, D], dt);
    const u = makeWeight(fastFloats(rng, E * F * D, scaleIn), [E, F, D], dt);
    const d = makeWeight(fastFloats(rng, E * D * F, scaleOut), [E, D, F], dt);
    const nb = (F * D) / 32;
    const sl = (m: Float64Array | undefined, e: number) => m?.subarray(e * nb, (e + 1) * nb);
    for (let e = 0; e < E; e++)
      ref.push({
        gate: g.v.subarray(e * F * D, (e + 1) * F * D),
        up: u.v.subarray(e * F * D, (e + 1) * F * D),
        down: d.v.subarray(e * D * F, (e + 1) * D * F),
        F,
        mins: { gate: sl(g.mins, e), up: sl(u.mins, e), down: sl(d.mins, e) },
      });
    return { experts: { gate: g.t, up: u.t, down: d.t }, ref, types: per };
  }
  const gate: Tensor[] = [];
  const up: Tensor[] = [];
  const down: Tensor[] = [];
  for (let e = 0; e < E; e++) {
    const g = makeWeight(fastFloats(rng, F * D, scaleIn), [F, D], per[e].gate);
    const u = makeWeight(fastFloats(rng, F * D, scaleIn), [F, D], per[e].up);
    const d = makeWeight(fastFloats(rng, D * F, scaleOut), [D, F], per[e].down);
    gate.push(g.t);
    up.push(u.t);
    down.push(d.t);
    ref.push({ gate: g.v, up: u.v, down: d.v, F, mins: { gate: g.mins, up: u.mins, down: d.mins } });
  }
  return { experts: { gate, up, down }, ref, types: per };
}

export interface BuiltShared {
  shared: MoeSharedExpert;
  ref: RefFfn;
  gateRef?: Float64Array;
  types: { gate: WType; up: WType; down: WType; gateWeight?: WType };
}

export function makeShared(rng: Rng, Fs: number, D: number, dtype: WType, withGate: boolean): BuiltShared {
  const g = makeWeight(fastFloats(rng, Fs * D, 1 / Math.sqrt(D)), [Fs, D], dtype);
  const u = makeWeight(fastFloats(rng, Fs * D, 1 / Math.sqrt(D)), [Fs, D], dtype);
  const d = makeWeight(fastFloats(rng, D * Fs, 1 / Math.sqrt(Fs)), [D, Fs], dtype);
  const shared: MoeSharedExpert = { gate: g.t, up: u.t, down: d.t };
  let gateRef: Float64Array | undefined;
  if (withGate) {
    const gw = makeWeight(fastFloats(rng, D, 1 / Math.sqrt(D)), [1, D], 'f32');
    shared.gateWeight = gw.t;
    gateRef = gw.v;
  }
  return { shared, ref: { gate: g.v, up: u.v, down: d.v, F: Fs, mins: { gate: g.mins, up: u.mins, down: d.mins } }, gateRef, types: { gate: dtype, up: dtype, down: dtype, gateWeight: withGate ? 'f32' : undefined } };
}

/**
 * Rows of x [rows, K] rounded through the activation quantization qgemm applies for weight type
 * wtype (dequantized back), plus the stored Q8_1 block sums where the activation type is Q8_1.
 */
export function roundAct(wtype: WType, x: Float32Array | Float64Array, K: number): ActRow {
  if (wtype === 'f32' || wtype === 'f16' || wtype === 'bf16') return { v: Float64Array.from(x) };
  const rows = x.length / K;
  const xt = tensorFromArray(Float32Array.from(x), [rows, K]);
  const q = qg().quantizeActivations(wtype, xt);
  const dq = qg().dequantize(q);
  const r: ActRow = { v: Float64Array.from(tensorToFloat32(dq)) };
  if (q.dtype === 'q8_1') r.s = blockHalves(q, 36, 2);
  xt.dispose();
  q.dispose();
  dq.dispose();
  return r;
}

const rowOf = (a: ActRow, t: number, K: number): ActRow => ({
  v: (a.v as Float64Array).subarray(t * K, (t + 1) * K),
  s: a.s ? (a.s as Float64Array).subarray((t * K) / 32, ((t + 1) * K) / 32) : undefined,
});

/**
 * float64 reference MoE output [T, D]: Σ_slot w·ffn_e(x) + shared (gate-scaled when given), using
 * the routing `route` (ids, weights). actRound: round x and h through the activation quantization
 * of each matrix's weight type (the "tight" reference); otherwise plain float64 activations.
 */
export function refMoe(
  x: Float32Array, T: number, D: number, route: RefRoute, k: number, built: BuiltExperts,
  act: MoeActivation, shared: BuiltShared[], actRound: boolean,
): Float64Array {
  const y = new Float64Array(T * D);
  const cache = new Map<string, ActRow>();
  const xr = (wtype: WType, t: number): ActRow => {
    if (!actRound) return { v: x.subarray(t * D, (t + 1) * D) };
    let all = cache.get(wtype);
    if (!all) {
      all = roundAct(wtype, x, D);
      cache.set(wtype, all);
    }
    return rowOf(all, t, D);
  };
  const ffn = (ref: RefFfn, ty: { gate: WType; up: WType; down: WType }, t: number): Float64Array =>
    refFfnRow(xr(ty.gate, t), xr(ty.up, t), D, ref, act, actRound ? (h) => roundAct(ty.down, h, h.length) : undefined);
  for (let t = 0; t < T; t++) {
    const acc = new Float64Array(D);
    const xt = x.subarray(t * D, (t + 1) * D);
    for (let s = 0; s < k; s++) {
      const e = route.ids[t * k + s];
      const o = ffn(built.ref[e], built.types[e], t);
      const w = route.weights[t * k + s];
      for (let d = 0; d < D; d++) acc[d] += w * o[d];
    }
    for (const sh of shared) {
      const o = ffn(sh.ref, sh.types, t);
      let g = 1;
      if (sh.gateRef) {
        let z = 0;
        for (let d = 0; d < D; d++) z += xt[d] * sh.gateRef[d];
        g = 1 / (1 + Math.exp(-z));
      }
      for (let d = 0; d < D; d++) acc[d] += g * o[d];
    }
    y.set(acc, t * D);
  }
  return y;
}
