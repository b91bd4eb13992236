// float64 reference attention for the tests: explicit scores, max-subtracted softmax.
export interface RefAttnOptions {
  startPos?: number; // position of q's first token (default S − T)
  causal?: boolean; // default true
  window?: number; // 0 = off
  sinks?: Float32Array | null;
  softcap?: number;
  scale?: number;
  /** Optional per (head, key) mask: keep(h, t, j) false drops the key. */
  keep?: (h: number, t: number, j: number) => boolean;
}

/** q [T,Hq,D], k/v [S,Hkv,D] (as float64-exact values) → out [T,Hq,D]. */
export function refAttention(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  T: number, S: number, Hq: number, Hkv: number, D: number, o: RefAttnOptions = {},
): Float64Array {
  const start = o.startPos ?? S - T;
  const causal = o.causal ?? true;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const G = Hq / Hkv;
  const out = new Float64Array(T * Hq * D);
  const s = new Float64Array(S);
  for (let t = 0; t < T; t++) {
    const p = start + t;
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      let m = -Infinity;
      for (let j = 0; j < S; j++) {
        let visible = true;
        if (causal && j > p) visible = false;
        if (o.window && j <= p - o.window) visible = false;
        if (o.keep && !o.keep(h, t, j)) visible = false;
        if (!visible) {
          s[j] = -Infinity;
          continue;
        }
        let d = 0;
        for (let i = 0; i < D; i++) d += q[(t * Hq + h) * D + i] * k[(j * Hkv + kh) * D + i];
        d *= scale;
        if (o.softcap) d = o.softcap * Math.tanh(d / o.softcap);
        s[j] = d;
        if (d > m) m = d;
      }
      const sink = o.sinks ? o.sinks[h] : -Infinity;
      const mt = Math.max(m, sink);
      if (mt === -Infinity) continue; // no key: zeros
      let l = sink === -Infinity ? 0 : Math.exp(sink - mt);
      for (let j = 0; j < S; j++) {
        if (s[j] === -Infinity) continue;
        const e = Math.exp(s[j] - mt);
        l += e;
        for (let i = 0; i < D; i++) out[(t * Hq + h) * D + i] += e * v[(j * Hkv + kh) * D + i];
      }
      for (let i = 0; i < D; i++) out[(t * Hq + h) * D + i] /= l;
    }
  }
  return out;
}
