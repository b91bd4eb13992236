import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { RoutingOptions } from '../../lib/native-ops/routing';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { Rng, testSeed } from '../helpers/random';
import { refRoute } from './moe-ref';
import type { RefRouteOptions } from './moe-ref';

const ints = (t: Tensor): Int32Array => new Int32Array(t.toArrayBuffer());

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

/** Runs the native router and compares with the float64 reference: ids exactly, weights to f32 rounding. */
function check(logits: Float32Array, T: number, E: number, o: RefRouteOptions, label: string, threads = 2): void {
  const bias = o.bias ? tensorFromArray(o.bias, [E]) : undefined;
  const opts: RoutingOptions & { threads: number } = {
    topK: o.topK, func: o.func, normTopk: o.normTopk, correctionBias: bias, nGroup: o.nGroup,
    topkGroup: o.topkGroup, groupScore: o.groupScore, routedScalingFactor: o.routedScalingFactor, threads,
  };
  const r = native().route(tensorFromArray(logits, [T, E]), opts);
  const ref = refRoute(logits, T, E, o);
  expect(r.ids.dtype).toBe('i32');
  expect(r.ids.shape).toEqual([T, o.topK]);
  expect(r.weights.shape).toEqual([T, o.topK]);
  const ids = ints(r.ids);
  const w = tensorToFloat32(r.weights);
  for (let i = 0; i < T * o.topK; i++) {
    if (ids[i] !== ref.ids[i]) throw new Error(`${label}: token ${Math.floor(i / o.topK)} slot ${i % o.topK}: id ${ids[i]} vs ref ${ref.ids[i]}`);
    // computed in double, rounded once to f32: relative error <= 2^-24 (+ slack for exp/log differences).
    const tol = 2e-7 * Math.abs(ref.weights[i]) + 1e-30;
    if (!(Math.abs(w[i] - ref.weights[i]) <= tol) && !(Number.isNaN(w[i]) && Number.isNaN(ref.weights[i])))
      throw new Error(`${label}: weight ${i}: ${w[i]} vs ref ${ref.weights[i]}`);
  }
  expect(Array.from(r.counts)).toEqual(Array.from(ref.counts));
}

describe('route (expert top-k gating)', () => {
  const seed = testSeed();

  it(`softmax / topk_softmax / sigmoid match a float64 reference on random logits (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const shapes: Array<[number, number, number]> = [[1, 8, 2], [7, 16, 4], [512, 64, 8], [5, 60, 4], [3, 4, 4], [9, 128, 1]];
    for (const func of ['softmax', 'topk_softmax', 'sigmoid'] as const)
      for (const normTopk of [false, true])
        for (const [T, E, k] of shapes) {
          const logits = rng.floats(T * E, 2);
          const routedScalingFactor = rng.next() < 0.5 ? 1 : 2.5;
          check(logits, T, E, { topK: k, func, normTopk, routedScalingFactor }, `${func} norm=${normTopk} T=${T} E=${E} k=${k} (seed ${seed})`);
        }
  });

  it('renormalised weights sum to the scaling factor; topk_softmax weights sum to 1', () => {
    const rng = new Rng(seed + 1);
    const T = 7, E = 16, k = 4;
    const lt = tensorFromArray(rng.floats(T * E), [T, E]);
    for (const [o, target] of [
      [{ topK: k, normTopk: true }, 1],
      [{ topK: k, func: 'sigmoid', normTopk: true, routedScalingFactor: 2.5 }, 2.5],
      [{ topK: k, func: 'topk_softmax' }, 1],
    ] as Array<[RoutingOptions, number]>) {
      const w = tensorToFloat32(native().route(lt, o).weights);
      for (let t = 0; t < T; t++) {
        const s = w.subarray(t * k, (t + 1) * k).reduce((a, b) => a + b, 0);
        expect(Math.abs(s - target)).toBeLessThan(1e-6 * target);
      }
    }
  });

  it('breaks ties toward the lower expert id, deterministically', () => {
    // All-equal logits: experts 0..k-1 in order, equal weights.
    for (const func of ['softmax', 'topk_softmax', 'sigmoid'] as const) {
      const r = native().route(tensorFromArray(new Float32Array(2 * 8).fill(0.5), [2, 8]), { topK: 3, func });
      expect(Array.from(ints(r.ids))).toEqual([0, 1, 2, 0, 1, 2]);
    }
    // Partial ties: [1, 3, 3, 2, 3, 0] top-3 -> 1, 2, 4 (equal 3s in id order); top-4 adds 3.
    const l = new Float32Array([1, 3, 3, 2, 3, 0]);
    expect(Array.from(ints(native().route(tensorFromArray(l, [1, 6]), { topK: 4 }).ids))).toEqual([1, 2, 4, 3]);
    // Random logits drawn from a tiny set (many ties) agree with the reference for every function.
    const rng = new Rng(seed + 2);
    const T = 64, E = 16;
    const tied = new Float32Array(T * E).map(() => rng.int(0, 3));
    for (const func of ['softmax', 'topk_softmax', 'sigmoid'] as const) check(tied, T, E, { topK: 5, func }, `ties ${func} (seed ${seed})`);
    // Group ties: equal group scores go to the lower group id.
    const g = new Float32Array(8).fill(1);
    const rg = native().route(tensorFromArray(g, [1, 8]), { topK: 2, func: 'sigmoid', nGroup: 4, topkGroup: 1 });
    expect(Array.from(ints(rg.ids))).toEqual([0, 1]);
  });

  it(`sigmoid with correction bias and group-limited top-k (DeepSeek-V3) matches the reference (seed ${seed})`, () => {
    const rng = new Rng(seed + 3);
    for (const [T, E, G, TG, k] of [[1, 16, 4, 2, 4], [7, 64, 8, 4, 8], [64, 32, 8, 3, 6], [33, 24, 6, 6, 5]]) {
      const logits = rng.floats(T * E, 1.5);
      const bias = rng.floats(E, 0.5);
      for (const groupScore of ['top2sum', 'max'] as const)
        for (const normTopk of [false, true])
          check(logits, T, E, { topK: k, func: 'sigmoid', bias, nGroup: G, topkGroup: TG, groupScore, normTopk, routedScalingFactor: 2.5 },
            `sigmoid group T=${T} E=${E} G=${G}/${TG} k=${k} ${groupScore} norm=${normTopk} (seed ${seed})`);
      // softmax with group limit (DeepSeek-V2 style) and bias on the other functions too
      check(logits, T, E, { topK: k, func: 'softmax', nGroup: G, topkGroup: TG, groupScore: 'max' }, `softmax group (seed ${seed})`);
      check(logits, T, E, { topK: k, func: 'topk_softmax', bias }, `topk_softmax bias (seed ${seed})`);
    }
  });

  it('uses the correction bias only for choosing, not for the weights', () => {
    const logits = new Float32Array([2, 1, 0, -1, -2, 0.5, 0.2, -0.3]);
    const bias = new Float32Array([0, 0, 0, 0, 5, 0, 0, 0]); // pushes expert 4 to the top
    const r = native().route(tensorFromArray(logits, [1, 8]), { topK: 2, func: 'sigmoid', correctionBias: tensorFromArray(bias, [8]) });
    expect(Array.from(ints(r.ids))).toEqual([4, 0]);
    const w = tensorToFloat32(r.weights);
    expect(w[0]).toBeCloseTo(1 / (1 + Math.exp(2)), 6); // sigmoid(-2), unbiased
    expect(w[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
  });

  it('group limit changes the choice exactly as DeepSeek-V3 prescribes (top-2 sum vs max)', () => {
    // group 0: one strong expert (3) + weak; group 1: two good experts (1.5, 1.5).
    const logits = new Float32Array([3, -4, 1.5, 1.5]);
    const lt = tensorFromArray(logits, [1, 4]);
    const top2 = native().route(lt, { topK: 1, func: 'sigmoid', nGroup: 2, topkGroup: 1 });
    expect(Array.from(ints(top2.ids))).toEqual([2]); // sigmoid(1.5)*2 > sigmoid(3)+sigmoid(-4)
    const mx = native().route(lt, { topK: 1, func: 'sigmoid', nGroup: 2, topkGroup: 1, groupScore: 'max' });
    expect(Array.from(ints(mx.ids))).toEqual([0]);
  });

  it('is bit-identical for 1 and 2 threads and for a token alone vs in a batch', () => {
    const rng = new Rng(seed + 4);
    const T = 700, E = 64;
    const logits = rng.floats(T * E);
    const o: RoutingOptions = { topK: 6, func: 'softmax', normTopk: true };
    const a = native().route(tensorFromArray(logits, [T, E]), { ...o, threads: 1 });
    const b = native().route(tensorFromArray(logits, [T, E]), { ...o, threads: 2 });
    expect(Buffer.from(a.ids.toArrayBuffer()).equals(Buffer.from(b.ids.toArrayBuffer()))).toBe(true);
    expect(Buffer.from(a.weights.toArrayBuffer()).equals(Buffer.from(b.weights.toArrayBuffer()))).toBe(true);
    const one = native().route(tensorFromArray(logits.slice(300 * E, 301 * E), [1, E]), o);
    expect(Array.from(tensorToFloat32(one.weights))).toEqual(Array.from(tensorToFloat32(a.weights).subarray(300 * 6, 301 * 6)));
  });

  it('zero tokens give empty outputs', () => {
    const r = native().route(native().tensorEmpty('f32', [0, 8]), { topK: 2 });
    expect(r.ids.shape).toEqual([0, 2]);
    expect(r.weights.shape).toEqual([0, 2]);
    expect(Array.from(r.counts)).toEqual(new Array(8).fill(0));
  });

  it('NaN logits: valid distinct ids, NaN ranks last, weights propagate NaN', () => {
    const nan = NaN;
    const logits = new Float32Array([
      0.1, nan, 2, 0.5, // token 0: NaN not chosen (k=2 -> 2, 3)
      nan, nan, nan, nan, // token 1: all NaN -> ids 0, 1
      -Infinity, 1, -Infinity, 0, // token 2: -inf logits
    ]);
    for (const func of ['softmax', 'topk_softmax', 'sigmoid'] as const) {
      const r = native().route(tensorFromArray(logits, [3, 4]), { topK: 2, func, normTopk: true });
      const ids = ints(r.ids);
      expect(Array.from(ids)).toEqual([2, 3, 0, 1, 1, 3]);
      const w = tensorToFloat32(r.weights);
      expect(Number.isNaN(w[2]) && Number.isNaN(w[3])).toBe(true);
      if (func === 'softmax') expect(Number.isNaN(w[0])).toBe(true); // the row's softmax is NaN
      else expect(Number.isFinite(w[0]) && Number.isFinite(w[1])).toBe(true); // NaN expert not chosen
      expect(Number.isFinite(w[4]) && Number.isFinite(w[5])).toBe(true);
      check(logits, 3, 4, { topK: 2, func, normTopk: true }, `NaN ${func}`);
    }
  });

  describe('bad input gives typed errors', () => {
    const lt = tensorFromArray(new Float32Array(16).fill(0.5), [2, 8]);
    it('options', () => {
      expectCode(() => native().route(lt, { topK: 9 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 0 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, {} as never), 'E_ARGUMENT');
      expectCode(() => native().route(lt, undefined as never), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, func: 'relu' as never }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, nGroup: 3 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, nGroup: 4, topkGroup: 5 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 5, nGroup: 4, topkGroup: 2 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, topkGroup: 2 }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, nGroup: 4, groupScore: 'mean' as never }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, routedScalingFactor: NaN }), 'E_ARGUMENT');
      expectCode(() => native().route(lt, { topK: 2, threads: 0 }), 'E_ARGUMENT');
    });
    it('shapes, dtypes, disposed tensors', () => {
      expectCode(() => native().route({} as never, { topK: 1 }), 'E_ARGUMENT');
      expectCode(() => native().route(tensorFromArray(new Float32Array(8), [8]), { topK: 1 }), 'E_SHAPE');
      expectCode(() => native().route(native().tensorEmpty('f32', [2, 0]), { topK: 1 }), 'E_SHAPE');
      expectCode(() => native().route(native().tensorEmpty('i32', [2, 8]), { topK: 1 }), 'E_DTYPE');
      expectCode(() => native().route(tensorFromArray(new Float32Array(16), [2, 8], 'f16'), { topK: 1 }), 'E_DTYPE');
      expectCode(() => native().route(lt, { topK: 2, correctionBias: tensorFromArray(new Float32Array(7), [7]) }), 'E_SHAPE');
      expectCode(() => native().route(lt, { topK: 2, correctionBias: native().tensorEmpty('f16', [8]) }), 'E_DTYPE');
      expectCode(() => native().route(lt, { topK: 2, correctionBias: 3 as never }), 'E_ARGUMENT');
      const d = tensorFromArray(new Float32Array(16), [2, 8]);
      d.dispose();
      expectCode(() => native().route(d, { topK: 1 }), 'E_DISPOSED');
    });
  });
});
