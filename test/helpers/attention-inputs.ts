// Structured attention inputs that look like a real model's, for sparse-attention tests and the
// benchmark: a local band (low-frequency rotary structure: nearby tokens score high and pool
// well), attention sinks (the first tokens), a few retrieval spikes (a span of queries that
// strongly matches a distant passage of keys), plus a per-head constant key offset (the kind
// SageAttention's K smoothing removes) and small noise. Row-major q [T,Hq,D], k/v [T,Hkv,D].
import { Rng } from './random';

export interface StructuredAttentionOptions {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Peak logit of the local band (after the 1/sqrt(D) scale), default 16. */
  localLogit?: number;
  /** Band width scale in tokens: slowest rotation period, default 512 (fastest: 64). */
  slowPeriod?: number;
  /** Number of sink tokens at the start, default 4; their logit boost, default 14. */
  sinkTokens?: number;
  sinkLogit?: number;
  /** Retrieval spikes: count (default 3), logit boost (default 14), key passage / query span lengths. */
  spikes?: number;
  spikeLogit?: number;
  passageLen?: number;
  querySpan?: number;
  /** iid noise std per element, default 0.3. */
  noise?: number;
  /** Tokens over which the rotary phases decorrelate (random-walk drift); default 0 = no drift. */
  coherence?: number;
}

export interface Needle {
  /** Query tokens [qStart, qEnd) retrieve key tokens [kStart, kEnd) (every head). */
  qStart: number;
  qEnd: number;
  kStart: number;
  kEnd: number;
}

export interface StructuredAttention {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  needles: Needle[];
}

function unitVector(rng: Rng, D: number, from: number, to: number): Float64Array {
  const u = new Float64Array(D);
  let n = 0;
  for (let i = from; i < to; i++) {
    u[i] = rng.normal();
    n += u[i] * u[i];
  }
  n = Math.sqrt(n);
  for (let i = from; i < to; i++) u[i] /= n;
  return u;
}

export function structuredAttentionInputs(rng: Rng, o: StructuredAttentionOptions): StructuredAttention {
  const { T, Hq, Hkv, D } = o;
  const G = Hq / Hkv;
  const scaleInv = Math.sqrt(D); // logit = scale · q·k with scale = 1/sqrt(D)
  const pairs = Math.max(1, Math.floor(D / 4)); // rotary pairs in dims [0, 2·pairs); static dims after
  const half = 2 * pairs;
  const slow = o.slowPeriod ?? 512;
  const omega = Float64Array.from({ length: pairs }, (_, f) => (2 * Math.PI) / (slow * Math.pow(64 / slow, f / Math.max(1, pairs - 1))));
  const amp = Math.sqrt(((o.localLogit ?? 16) * scaleInv) / pairs); // Σ_f A² = peak · sqrt(D)
  const noise = o.noise ?? 0.3;
  const sinkTokens = Math.min(T, o.sinkTokens ?? 4);
  const nSpikes = o.spikes ?? 3;
  const passageLen = o.passageLen ?? 48;
  const querySpan = o.querySpan ?? 64;

  const q = new Float32Array(T * Hq * D);
  const k = new Float32Array(T * Hkv * D);
  const v = new Float32Array(T * Hkv * D);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();

  // sink direction: every query has γ·u, sink keys δ·u; logit boost γ·δ/sqrt(D)
  const u = unitVector(rng, D, half, D);
  const gamma = 4;
  const delta = ((o.sinkLogit ?? 14) * scaleInv) / gamma;
  // needles
  const needles: Needle[] = [];
  const spikeDirs: Float64Array[] = [];
  for (let s = 0; s < nSpikes && T >= 4 * querySpan; s++) {
    const qStart = rng.int(Math.floor(T / 2), T - querySpan + 1);
    const kStart = rng.int(sinkTokens, Math.max(sinkTokens + 1, Math.floor(qStart / 2) - passageLen));
    needles.push({ qStart, qEnd: qStart + querySpan, kStart, kEnd: Math.min(T, kStart + passageLen) });
    spikeDirs.push(unitVector(rng, D, half, D));
  }
  const rhoQ = 4;
  const rhoK = ((o.spikeLogit ?? 14) * scaleInv) / rhoQ;

  // Optionally the rotary phases drift by a random walk (shared by a KV head's keys and its
  // queries), so the positional similarity decays over ~coherence tokens instead of recurring.
  const walk = o.coherence ? Math.sqrt(2 / o.coherence) : 0;
  for (let kh = 0; kh < Hkv; kh++) {
    const phase = Float64Array.from({ length: pairs }, () => rng.uniform(0, 2 * Math.PI));
    const staticK = Float64Array.from({ length: D }, (_, i) => (i >= half ? rng.normal() : 0));
    const gains = Float64Array.from({ length: G }, () => 0.8 + 0.4 * rng.next());
    const staticQ = Array.from({ length: G }, () => Float64Array.from({ length: D }, (_, i) => (i >= half ? rng.normal() : 0)));
    const cs = new Float64Array(2 * pairs);
    for (let t = 0; t < T; t++) {
      for (let f = 0; f < pairs; f++) {
        const a = omega[f] * t + phase[f];
        cs[2 * f] = Math.cos(a);
        cs[2 * f + 1] = Math.sin(a);
        if (walk > 0) phase[f] += walk * rng.normal();
      }
      const row = (t * Hkv + kh) * D;
      for (let i = 0; i < half; i++) k[row + i] = amp * cs[i];
      for (let i = half; i < D; i++) k[row + i] = staticK[i];
      if (t < sinkTokens) for (let i = half; i < D; i++) k[row + i] += delta * u[i];
      needles.forEach((n, s) => {
        if (t >= n.kStart && t < n.kEnd) for (let i = half; i < D; i++) k[row + i] += rhoK * spikeDirs[s][i];
      });
      for (let i = 0; i < D; i++) k[row + i] += noise * rng.normal();
      for (let g = 0; g < G; g++) {
        const h = kh * G + g;
        const qrow = (t * Hq + h) * D;
        for (let i = 0; i < half; i++) q[qrow + i] = gains[g] * amp * cs[i];
        for (let i = half; i < D; i++) q[qrow + i] = staticQ[g][i] + gamma * u[i];
        needles.forEach((n, s) => {
          if (t >= n.qStart && t < n.qEnd) for (let i = half; i < D; i++) q[qrow + i] += rhoQ * spikeDirs[s][i];
        });
        for (let i = 0; i < D; i++) q[qrow + i] += noise * rng.normal();
      }
    }
  }
  return { q, k, v, needles };
}
