// The fused MoE layer against a float64 reference (dense loop over tokens and their chosen experts,
// dequantized weights), for every weight type family, T in {1, 7, 64}, E=8 top-2 and E=16 top-4 with
// a gated shared expert, per-expert mixed types.
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { MoeActivation, MoeOptions } from '../../lib/native-ops/moe';
import type { RoutingOptions } from '../../lib/native-ops/routing';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';
import { makeExperts, makeShared, qg, refMoe } from './moe-build';
import type { BuiltExperts, BuiltShared, WType } from './moe-build';
import { refRoute } from './moe-ref';

const ints = (t: Tensor): Int32Array => new Int32Array(t.toArrayBuffer());

// Tolerances, as relative L2 errors ‖y−ref‖/‖ref‖:
// - float weights (f32/f16/bf16; activations stay f32): only f32 rounding in the GEMM sums over D
//   and F terms, measured ~2e-7: every token's row within 1e-5 of the float64 reference.
// - quantized weights, "tight": the reference uses the dequantized weights AND x / h rounded
//   through the same activation quantization (Q8_0 / Q8_1 with its stored block sums / Q8_K) as the
//   kernel; measured ~1e-7 per token, bound 1e-5. The one legitimate exception: an element of h
//   whose f32 (kernel) and float64 (reference) values sit on either side of an int8 rounding
//   boundary rounds one step apart, which moves that token's row by up to ~1/127 of one h element's
//   contribution (measured <= 2e-3). So at most max(1, T/8) tokens may exceed 1e-5, and only up to 1e-2.
// - quantized weights, "loose": against unrounded float64 activations, where 8-bit activation
//   rounding costs ~1-2% (measured 1.0-2.0e-2): whole output within 4e-2.
const FLOAT_TYPES = new Set<WType>(['f32', 'f16', 'bf16']);
const TOKEN_TIGHT = 1e-5;
const FLIP_BOUND = 1e-2;
const tol = (dt: WType): { tight: number; loose: number } =>
  FLOAT_TYPES.has(dt) ? { tight: 0, loose: 2e-5 } : { tight: 1, loose: 4e-2 };

interface Case {
  label: string;
  T: number;
  D: number;
  E: number;
  built: BuiltExperts;
  shared: BuiltShared[];
  routing: RoutingOptions;
  bias?: Float32Array;
  act: MoeActivation;
  /** tokens allowed above TOKEN_TIGHT (rounding flips): 0 for float weights, else max(1, T/8). */
  tight: number;
  loose: number;
}

function runCase(rng: Rng, c: Case, seed: number): { tight: number; loose: number } {
  const { T, D, E } = c;
  const x = rng.floats(T * D);
  const logits = rng.floats(T * E, 1.5);
  const xt = tensorFromArray(x, [T, D]);
  const lt = tensorFromArray(logits, [T, E]);
  const k = c.routing.topK;
  const route = refRoute(logits, T, E, {
    topK: k, func: c.routing.func, normTopk: c.routing.normTopk, bias: c.bias, nGroup: c.routing.nGroup,
    topkGroup: c.routing.topkGroup, groupScore: c.routing.groupScore, routedScalingFactor: c.routing.routedScalingFactor,
  });
  const refTight = refMoe(x, T, D, route, k, c.built, c.act, c.shared, true);
  const refLoose = refMoe(x, T, D, route, k, c.built, c.act, c.shared, false);
  const worst = { tight: 0, loose: 0 };
  forEachIsa((isa) => {
    for (const threads of [1, 2]) {
      const opts: MoeOptions = {
        ...c.routing, routerLogits: lt, experts: c.built.experts, activation: c.act, threads, returnRouting: true,
        correctionBias: c.bias ? tensorFromArray(c.bias, [E]) : undefined,
        shared: c.shared.length === 1 ? c.shared[0].shared : c.shared.length ? c.shared.map((s) => s.shared) : undefined,
      };
      const r = native().moe(xt, opts);
      expect(r.y.shape).toEqual([T, D]);
      expect(Array.from(ints(r.ids!))).toEqual(Array.from(route.ids));
      expect(Array.from(r.counts)).toEqual(Array.from(route.counts));
      const y = tensorToFloat32(r.y);
      const el = relError(y, refLoose);
      let flips = 0;
      let worstTok = 0;
      for (let t = 0; t < T; t++) {
        const e = relError(y.subarray(t * D, (t + 1) * D), refTight.subarray(t * D, (t + 1) * D));
        worstTok = Math.max(worstTok, e);
        if (!(e < TOKEN_TIGHT)) {
          flips++;
          if (!(e < FLIP_BOUND)) throw new Error(`${c.label} ${isa} threads=${threads}: token ${t} rel err ${e} vs the tight reference (seed ${seed})`);
        }
      }
      const allowed = c.tight === 0 ? 0 : Math.max(1, Math.floor(T / 8));
      worst.tight = Math.max(worst.tight, relError(y, refTight));
      worst.loose = Math.max(worst.loose, el);
      if (flips > allowed || !(el < c.loose))
        throw new Error(`${c.label} ${isa} threads=${threads}: ${flips} tokens above ${TOKEN_TIGHT} vs the tight reference (worst ${worstTok}), ` +
          `loose rel err ${el} (bound ${c.loose}) (seed ${seed})`);
      r.y.dispose();
    }
  });
  return worst;
}

describe('moe (fused MoE layer) vs a float64 reference', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());
  const errors: string[] = [];
  afterAll(() => console.log(`moe rel errors (seed ${seed}):\n${errors.join('\n')}`));

  const dtypes: WType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];
  const main = new Set<WType>(['f32', 'f16', 'q8_0', 'q4_0', 'q4_k', 'q6_k']);
  for (const dt of dtypes) {
    it(`${dt}: E=8 top-2 (softmax, renormalised) and E=16 top-4 with a gated shared expert (seed ${seed})`, () => {
      const rng = new Rng(seed ^ (dtypes.indexOf(dt) * 7919));
      const kq = dt.endsWith('_k');
      const D = kq ? 256 : FLOAT_TYPES.has(dt) ? 72 : 96;
      const F = kq ? 256 : FLOAT_TYPES.has(dt) ? 40 : 64;
      const { tight, loose } = tol(dt);
      const Ts = main.has(dt) ? [1, 7, 64] : [7];
      const a = makeExperts(rng, 8, F, D, dt);
      for (const T of Ts) {
        const w = runCase(rng, { label: `${dt} E=8 k=2 T=${T}`, T, D, E: 8, built: a, shared: [], routing: { topK: 2, normTopk: true }, act: 'silu', tight, loose }, seed);
        errors.push(`${dt} E=8 k=2 T=${T}: tight ${w.tight.toExponential(2)} loose ${w.loose.toExponential(2)}`);
      }
      const b = makeExperts(rng, 16, F, D, dt);
      const sh = makeShared(rng, kq ? 256 : 2 * F, D, dt, true);
      for (const T of main.has(dt) ? [1, 7, 64] : [7]) {
        const w = runCase(rng, {
          label: `${dt} E=16 k=4 shared T=${T}`, T, D, E: 16, built: b, shared: [sh],
          routing: { topK: 4, func: 'softmax', normTopk: false }, act: 'silu', tight, loose,
        }, seed);
        errors.push(`${dt} E=16 k=4 +shared T=${T}: tight ${w.tight.toExponential(2)} loose ${w.loose.toExponential(2)}`);
      }
    });
  }

  it(`activations gelu / gelu_tanh, routing functions, several shared experts (seed ${seed})`, () => {
    const rng = new Rng(seed + 101);
    const D = 48, F = 27, E = 16; // odd F: the vectorised activation tail
    const built = makeExperts(rng, E, F, D, 'f32');
    const sh1 = makeShared(rng, 32, D, 'f32', false); // DeepSeek: unscaled
    const sh2 = makeShared(rng, 16, D, 'f16', true);
    const bias = rng.floats(E, 0.3);
    const cases: Array<[MoeActivation, RoutingOptions, Float32Array | undefined]> = [
      ['gelu', { topK: 3, func: 'topk_softmax' }, undefined],
      ['gelu_tanh', { topK: 4, func: 'softmax', normTopk: true }, undefined],
      ['silu', { topK: 4, func: 'sigmoid', normTopk: true, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5 }, bias],
    ];
    for (const [act, routing, b] of cases)
      for (const T of [1, 13]) {
        const w = runCase(rng, { label: `${act} ${routing.func} T=${T}`, T, D, E, built, shared: [sh1, sh2], routing, bias: b, act, tight: 0, loose: 2e-5 }, seed);
        errors.push(`f32 ${act} ${routing.func} 2 shared T=${T}: ${w.tight.toExponential(2)}`);
      }
  });

  it(`per-expert mixed precision (arrays of differently typed experts, mixed within an expert) (seed ${seed})`, () => {
    const rng = new Rng(seed + 202);
    const D = 256, F = 256, E = 8;
    const cyc: WType[] = ['q4_0', 'q8_0', 'q4_k', 'q6_k', 'f16', 'f32', 'q5_0', 'q4_1'];
    const types = cyc.map((t, e) => (e === 2 ? { gate: 'q4_k' as WType, up: 'q8_0' as WType, down: 'q6_k' as WType } : { gate: t, up: t, down: t }));
    const built = makeExperts(rng, E, F, D, types);
    const sh = makeShared(rng, 256, D, 'q5_k', true);
    for (const T of [1, 7, 64]) {
      const w = runCase(rng, { label: `mixed T=${T}`, T, D, E, built, shared: [sh], routing: { topK: 3, normTopk: true }, act: 'silu', tight: 1, loose: 4e-2 }, seed);
      errors.push(`mixed per-expert types T=${T}: tight ${w.tight.toExponential(2)} loose ${w.loose.toExponential(2)}`);
    }
  });

  it(`routerWeight (quantized or f32) gives the same result as routerLogits from qmatmul (seed ${seed})`, () => {
    const rng = new Rng(seed + 303);
    const D = 256, F = 64, E = 16, T = 9;
    const built = makeExperts(rng, E, F, D, 'q8_0');
    for (const rt of ['f32', 'q8_0', 'q4_k'] as WType[]) {
      const rwv = rng.floats(E * D, 1 / Math.sqrt(D));
      const rw = rt === 'f32' ? tensorFromArray(rwv, [E, D]) : qg().quantize(rt, tensorFromArray(rwv, [E, D]));
      const xt = tensorFromArray(rng.floats(T * D), [T, D]);
      const logits = qg().qmatmul(xt, rw, { threads: 1 });
      const base: MoeOptions = { topK: 4, experts: built.experts, returnRouting: true };
      const a = native().moe(xt, { ...base, routerWeight: rw });
      const b = native().moe(xt, { ...base, routerLogits: logits });
      const ref = refRoute(tensorToFloat32(logits), T, E, { topK: 4 });
      expect(Array.from(ints(a.ids!))).toEqual(Array.from(ref.ids));
      expect(Buffer.from(a.y.toArrayBuffer()).equals(Buffer.from(b.y.toArrayBuffer()))).toBe(true);
      expect(Array.from(a.counts)).toEqual(Array.from(ref.counts));
    }
  });
});
