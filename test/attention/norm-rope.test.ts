import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { RopeOptions } from '../../lib/native-ops/norm-rope';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';

const N = () => native();

function roundTo(w: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float64Array {
  return Float64Array.from(w, (v) => (dtype === 'f32' ? v : dtype === 'f16' ? f16ToF32(f32ToF16(v)) : bf16ToF32(f32ToBf16(v))));
}

function refRms(x: Float32Array, w: Float64Array | null, n: number, eps: number, unit: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i] ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i] * inv * (w ? w[i] + (unit ? 1 : 0) : 1);
  }
  return y;
}

function refLayer(x: Float32Array, w: Float64Array | null, b: Float64Array | null, n: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[r * n + i];
    const m = s / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r * n + i] - m) ** 2;
    const inv = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = (x[r * n + i] - m) * inv * (w ? w[i] : 1) + (b ? b[i] : 0);
  }
  return y;
}

// float64 RoPE written from the formulas (ggml rope_yarn / ggml_rope_yarn_corr_dims for YaRN).
function refRope(x: Float32Array, pos: Int32Array, H: number, D: number, o: RopeOptions): Float64Array {
  const T = pos.length;
  const n = o.ropeDim ?? D;
  const base = o.theta ?? 10000;
  const half = n / 2;
  const y = Float64Array.from(x);
  const sc = o.scaling ?? { type: 'none' };
  const factor = sc.type === 'none' ? 1 : sc.factor;
  let low = 0, high = 0, mscale = 1;
  let ext = 0;
  if (sc.type === 'linear') ext = 0;
  if (sc.type === 'yarn') {
    ext = sc.extFactor ?? 1;
    mscale = sc.attnFactor ?? 1;
    const corr = (b: number) => (n * Math.log(sc.originalContextLength / (b * 2 * Math.PI))) / (2 * Math.log(base));
    low = Math.max(0, Math.floor(corr(sc.betaFast ?? 32)));
    high = Math.min(n - 1, Math.ceil(corr(sc.betaSlow ?? 1)));
    if (ext !== 0) mscale *= 1 + 0.1 * Math.log(factor);
  }
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < half; i++) {
        let freq = Math.pow(base, (-2 * i) / n);
        if (o.freqFactors instanceof Float32Array) freq /= o.freqFactors[i];
        const te = pos[t] * freq;
        let th = te;
        if (sc.type === 'linear') th = te / factor;
        if (sc.type === 'yarn') {
          const ti = te / factor;
          const ramp = 1 - Math.min(1, Math.max(0, (i - low) / Math.max(0.001, high - low)));
          const mix = ramp * ext;
          th = ti * (1 - mix) + te * mix;
        }
        const c = Math.cos(th) * mscale, s = Math.sin(th) * mscale;
        const base0 = (t * H + h) * D;
        const [a, b] = (o.style ?? 'neox') === 'neox' ? [i, i + half] : [2 * i, 2 * i + 1];
        const x0 = x[base0 + a], x1 = x[base0 + b];
        y[base0 + a] = x0 * c - x1 * s;
        y[base0 + b] = x0 * s + x1 * c;
      }
  return y;
}

function expectCode(fn: () => unknown, code: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(QuantMoeError);
  expect((err as QuantMoeError).code).toBe(code);
}

describe('norms', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());
  it(`rmsNorm / layerNorm match float64 (f32/f16/bf16 weights, odd sizes, seed ${seed})`, () => {
    const rng = new Rng(seed);
    forEachIsa((isa) => {
      for (const [T, n] of [[1, 1], [7, 13], [3, 64], [512, 96], [2, 4099]]) {
        const x = rng.floats(T * n, 3);
        for (const dt of ['f32', 'f16', 'bf16'] as const) {
          const wv = rng.floats(n);
          const bv = rng.floats(n);
          const w = tensorFromArray(wv, [n], dt);
          const b = tensorFromArray(bv, [n], dt);
          const xt = tensorFromArray(x, [T, n]);
          for (const unit of [false, true]) {
            const y = tensorToFloat32(N().rmsNorm(xt, w, { eps: 1e-5, addUnitOffset: unit, threads: 2 }));
            const e = relError(y, refRms(x, roundTo(wv, dt), n, 1e-5, unit));
            // f32 products of O(1) values: a few ulps (2^-24 ≈ 6e-8) per element.
            if (!(e < 1e-6)) throw new Error(`${isa} rms ${dt} T=${T} n=${n}: ${e} (seed ${seed})`);
          }
          const yl = tensorToFloat32(N().layerNorm(xt, w, b, { eps: 1e-5 }));
          const el = relError(yl, refLayer(x, roundTo(wv, dt), roundTo(bv, dt), n, 1e-5));
          if (!(el < 1e-6)) throw new Error(`${isa} layer ${dt} T=${T} n=${n}: ${el} (seed ${seed})`);
        }
        const y0 = tensorToFloat32(N().rmsNorm(tensorFromArray(x, [T, n]), null));
        expect(relError(y0, refRms(x, null, n, 1e-6, false))).toBeLessThan(1e-6);
        const l0 = tensorToFloat32(N().layerNorm(tensorFromArray(x, [T, n]), null, null));
        expect(relError(l0, refLayer(x, null, null, n, 1e-5))).toBeLessThan(1e-6);
      }
    });
  });

  it(`headRmsNorm: per head (weight [D]) and whole row (weight [H*D]), in place (seed ${seed})`, () => {
    const rng = new Rng(seed + 1);
    forEachIsa((isa) => {
      for (const [T, H, D] of [[1, 1, 8], [7, 4, 64], [5, 3, 80]]) {
        const x = rng.floats(T * H * D, 2);
        const wd = rng.floats(D);
        const whd = rng.floats(H * D);
        const perHead = tensorToFloat32(N().headRmsNorm(tensorFromArray(x, [T, H, D]), tensorFromArray(wd, [D])));
        const ref1 = refRms(x, Float64Array.from(wd), D, 1e-6, false);
        if (!(relError(perHead, ref1) < 1e-6)) throw new Error(`${isa} per-head T=${T} H=${H} D=${D}`);
        const xt = tensorFromArray(x, [T, H, D]);
        const row = N().headRmsNorm(xt, tensorFromArray(whd, [H * D]), { inPlace: true });
        expect(row).toBe(xt);
        const ref2 = refRms(x, Float64Array.from(whd), H * D, 1e-6, false);
        if (!(relError(tensorToFloat32(xt), ref2) < 1e-6)) throw new Error(`${isa} whole-row T=${T} H=${H} D=${D}`);
      }
    });
  });

  it('propagates NaN and rejects bad input with typed errors', () => {
    const y = tensorToFloat32(N().rmsNorm(tensorFromArray(new Float32Array([1, NaN, 2, 3, 4, 5]), [2, 3]), null));
    expect(Number.isNaN(y[0])).toBe(true);
    expect(Number.isFinite(y[3])).toBe(true);
    const x = tensorFromArray(new Float32Array(12).fill(1), [2, 6]);
    expectCode(() => N().rmsNorm(x, tensorFromArray(new Float32Array(5), [5])), 'E_SHAPE');
    expectCode(() => N().rmsNorm(x, N().tensorEmpty('q8_0', [32])), 'E_DTYPE');
    expectCode(() => N().rmsNorm(N().tensorEmpty('f16', [2, 6]), null), 'E_DTYPE');
    expectCode(() => N().rmsNorm(x, null, { eps: -1 }), 'E_ARGUMENT');
    expectCode(() => N().rmsNorm(x, null, { out: N().tensorEmpty('f32', [2, 5]) }), 'E_SHAPE');
    expectCode(() => N().rmsNorm({} as never, null), 'E_ARGUMENT');
    expectCode(() => N().layerNorm(x, null, tensorFromArray(new Float32Array(3), [3])), 'E_SHAPE');
    expectCode(() => N().headRmsNorm(x, null), 'E_SHAPE');
    expectCode(() => N().headRmsNorm(tensorFromArray(new Float32Array(12), [1, 2, 6]), tensorFromArray(new Float32Array(7), [7])), 'E_SHAPE');
    const d = tensorFromArray(new Float32Array(6), [6]);
    d.dispose();
    expectCode(() => N().rmsNorm(x, d), 'E_DISPOSED');
  });
});

describe('rope', () => {
  const seed = testSeed();
  const cases: Array<[string, RopeOptions]> = [
    ['neox', { style: 'neox', theta: 10000 }],
    ['adjacent', { style: 'adjacent', theta: 500000 }],
    ['neox partial 32/64', { style: 'neox', ropeDim: 32, theta: 10000 }],
    ['adjacent partial 24', { style: 'adjacent', ropeDim: 24, theta: 10000 }],
    ['linear x4', { style: 'neox', scaling: { type: 'linear', factor: 4 } }],
    ['yarn x4', { style: 'neox', theta: 1e6, scaling: { type: 'yarn', factor: 4, originalContextLength: 4096, betaFast: 32, betaSlow: 1 } }],
    ['yarn x32 adjacent attnFactor', { style: 'adjacent', theta: 150000, scaling: { type: 'yarn', factor: 32, originalContextLength: 4096, attnFactor: 0.9 } }],
    ['yarn ext 0', { style: 'neox', scaling: { type: 'yarn', factor: 8, originalContextLength: 2048, extFactor: 0 } }],
  ];
  it(`matches a float64 reference (both styles, partial, linear, yarn; seed ${seed})`, () => {
    const rng = new Rng(seed);
    forEachIsa((isa) => {
      for (const [name, o] of cases) {
        for (const [T, H, D] of [[1, 1, 64], [7, 3, 64], [33, 2, 128], [5, 4, 80]]) {
          const rd = o.ropeDim ?? D;
          if (rd > D) continue;
          const x = rng.floats(T * H * D);
          // positions up to 100K: double-precision angles keep the error at float rounding
          const pos = Int32Array.from({ length: T }, () => rng.int(0, 100000));
          pos[0] = 0;
          const xt = tensorFromArray(x, [T, H, D]);
          const y = tensorToFloat32(N().rope(xt, pos, { ...o, threads: 2 }));
          const ref = refRope(x, pos, H, D, o);
          // cos/sin rounded to f32 (2^-24) then one product and one sum per output.
          const e = relError(y, ref);
          if (!(e < 1e-6)) throw new Error(`${isa} ${name} T=${T} H=${H} D=${D}: ${e} (seed ${seed})`);
          // in place and via an i32 tensor gives the same bits
          const pt = N().tensorFromData('i32', [T], pos);
          const r2 = N().rope(xt, pt, { ...o, inPlace: true });
          expect(r2).toBe(xt);
          const y2 = tensorToFloat32(xt);
          for (let i = 0; i < y.length; i++) if (y2[i] !== y[i]) throw new Error(`${isa} ${name}: in-place differs at ${i}`);
        }
      }
    });
  });

  it('freqFactors divide the frequencies', () => {
    const rng = new Rng(seed + 3);
    const T = 5, H = 2, D = 16;
    const x = rng.floats(T * H * D);
    const pos = Int32Array.from([0, 1, 7, 100, 9000]);
    const ff = Float32Array.from({ length: 8 }, () => 1 + rng.next() * 8);
    const o: RopeOptions = { style: 'neox', freqFactors: ff };
    const y = tensorToFloat32(N().rope(tensorFromArray(x, [T, H, D]), pos, o));
    expect(relError(y, refRope(x, pos, H, D, o))).toBeLessThan(1e-6);
  });

  it('rejects bad input with typed errors; NaN propagates', () => {
    const x = tensorFromArray(new Float32Array(2 * 2 * 8).fill(1), [2, 2, 8]);
    const pos = Int32Array.from([0, 1]);
    expectCode(() => N().rope(x, Int32Array.from([0])), 'E_SHAPE');
    expectCode(() => N().rope(x, Float32Array.from([0, 1]) as never), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { ropeDim: 7 }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { ropeDim: 10 }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { style: 'gptj' as never }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { theta: 0 }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { scaling: { type: 'yarn', factor: 4 } as never }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, pos, { scaling: { type: 'ntk' } as never }), 'E_ARGUMENT');
    expectCode(() => N().rope(x, N().tensorEmpty('f32', [2])), 'E_DTYPE');
    expectCode(() => N().rope(tensorFromArray(new Float32Array(16), [2, 8]), pos), 'E_SHAPE');
    const xn = tensorFromArray(Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? NaN : 1)), [2, 2, 8]);
    const y = tensorToFloat32(N().rope(xn, pos));
    expect(Number.isNaN(y[0])).toBe(true);
  });
});
