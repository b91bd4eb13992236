// The fused MoE layer: batch invariance (bit for bit), routing statistics, edge cases, bad input.
import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { MoeOptions } from '../../lib/native-ops/moe';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, testSeed } from '../helpers/random';
import { fastFloats, makeExperts, makeShared, qg } from './moe-build';
import type { WType } from './moe-build';
import { refRoute } from './moe-ref';

const ints = (t: Tensor): Int32Array => new Int32Array(t.toArrayBuffer());
const rows = (x: Float32Array, D: number, idx: number[]): Float32Array => {
  const out = new Float32Array(idx.length * D);
  idx.forEach((t, i) => out.set(x.subarray(t * D, (t + 1) * D), i * D));
  return out;
};

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

describe('moe: batch invariance, statistics, edge cases', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());

  for (const dt of ['f32', 'q4_0', 'q8_0', 'q4_k'] as WType[]) {
    it(`${dt}: a token's output is bit-identical alone, in batches of 7 and 64, shuffled, with 1 or 2 threads (seed ${seed})`, () => {
      const rng = new Rng(seed ^ (dt.length * 1013 + dt.charCodeAt(1)));
      const D = 256, F = 256, E = 16, k = 4, T = 64;
      const built = makeExperts(rng, E, F, D, dt);
      const sh = makeShared(rng, 256, D, dt, true);
      const rw = qg().quantize('q8_0', tensorFromArray(fastFloats(rng, E * D, 1 / Math.sqrt(D)), [E, D]));
      const x = rng.floats(T * D);
      const base: MoeOptions = { topK: k, normTopk: true, routerWeight: rw, experts: built.experts, shared: sh.shared, returnRouting: true };
      const run = (idx: number[], threads: number): Float32Array =>
        tensorToFloat32(native().moe(tensorFromArray(rows(x, D, idx), [idx.length, D]), { ...base, threads }).y);
      const all = Array.from({ length: T }, (_, i) => i);
      forEachIsa((isa) => {
        const ref = run(all, 2);
        const same = (got: Float32Array, idx: number[], what: string) => {
          idx.forEach((t, i) => {
            for (let d = 0; d < D; d++)
              if (!Object.is(got[i * D + d], ref[t * D + d]))
                throw new Error(`${isa} ${dt} ${what}: token ${t} col ${d}: ${got[i * D + d]} vs ${ref[t * D + d]} (seed ${seed})`);
          });
        };
        same(run(all, 1), all, 'batch 64, 1 thread');
        const seven = [10, 11, 12, 13, 14, 15, 16];
        same(run(seven, 2), seven, 'batch of 7');
        same(run(seven, 1), seven, 'batch of 7, 1 thread');
        for (const t of [0, 3, 40, 63]) same(run([t], 1), [t], 'alone');
        same(run([40], 2), [40], 'alone, 2 threads');
        const shuffled = all.slice().reverse();
        for (let i = 0; i < 20; i++) {
          const a = rng.int(0, T), b = rng.int(0, T);
          [shuffled[a], shuffled[b]] = [shuffled[b], shuffled[a]];
        }
        same(run(shuffled, 2), shuffled, 'shuffled batch');
      });
    });
  }

  it('returns per-expert token counts (and the routing) matching route()', () => {
    const rng = new Rng(seed + 7);
    const D = 64, F = 32, E = 8, T = 50;
    const built = makeExperts(rng, E, F, D, 'f16');
    const logits = rng.floats(T * E, 2);
    const lt = tensorFromArray(logits, [T, E]);
    const r = native().moe(tensorFromArray(rng.floats(T * D), [T, D]), { topK: 2, func: 'topk_softmax', routerLogits: lt, experts: built.experts, returnRouting: true });
    const route = native().route(lt, { topK: 2, func: 'topk_softmax' });
    expect(Array.from(r.counts)).toEqual(Array.from(route.counts));
    expect(Array.from(r.counts).reduce((a, b) => a + b, 0)).toBe(T * 2);
    expect(Array.from(ints(r.ids!))).toEqual(Array.from(ints(route.ids)));
    expect(Array.from(tensorToFloat32(r.weights!))).toEqual(Array.from(tensorToFloat32(route.weights)));
    expect(Array.from(r.counts)).toEqual(Array.from(refRoute(logits, T, E, { topK: 2, func: 'topk_softmax' }).counts));
    // without returnRouting: no ids / weights
    const r2 = native().moe(tensorFromArray(rng.floats(D), [1, D]), { topK: 2, routerLogits: tensorFromArray(rng.floats(E), [1, E]), experts: built.experts });
    expect(r2.ids).toBeUndefined();
    expect(r2.weights).toBeUndefined();
    expect(Array.from(r2.counts).reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('writes into `out`; zero tokens give an empty output and zero counts', () => {
    const rng = new Rng(seed + 8);
    const D = 32, F = 32, E = 4;
    const built = makeExperts(rng, E, F, D, 'q8_0');
    const out = native().tensorEmpty('f32', [3, D]);
    const x = tensorFromArray(rng.floats(3 * D), [3, D]);
    const rw = tensorFromArray(rng.floats(E * D), [E, D]);
    const r = native().moe(x, { topK: 2, routerWeight: rw, experts: built.experts, out });
    expect(r.y).toBe(out);
    const fresh = native().moe(x, { topK: 2, routerWeight: rw, experts: built.experts });
    expect(Array.from(tensorToFloat32(out))).toEqual(Array.from(tensorToFloat32(fresh.y)));
    const z = native().moe(native().tensorEmpty('f32', [0, D]), { topK: 2, routerWeight: rw, experts: built.experts, returnRouting: true });
    expect(z.y.shape).toEqual([0, D]);
    expect(z.ids!.shape).toEqual([0, 2]);
    expect(Array.from(z.counts)).toEqual([0, 0, 0, 0]);
  });

  it('NaN in x: that token becomes NaN, no crash, other tokens unchanged', () => {
    const rng = new Rng(seed + 9);
    const D = 64, F = 64, E = 8, T = 5;
    for (const dt of ['f32', 'q4_0', 'q4_k'] as WType[]) {
      const Dq = dt === 'q4_k' ? 256 : D, Fq = dt === 'q4_k' ? 256 : F;
      const built = makeExperts(rng, E, Fq, Dq, dt);
      const rw = tensorFromArray(fastFloats(rng, E * Dq, 0.1), [E, Dq]);
      const x = rng.floats(T * Dq);
      const clean = tensorToFloat32(native().moe(tensorFromArray(x, [T, Dq]), { topK: 2, routerWeight: rw, experts: built.experts }).y);
      x[2 * Dq + 5] = NaN;
      const r = native().moe(tensorFromArray(x, [T, Dq]), { topK: 2, routerWeight: rw, experts: built.experts, returnRouting: true });
      const y = tensorToFloat32(r.y);
      const ids = ints(r.ids!);
      for (let i = 0; i < ids.length; i++) expect(ids[i] >= 0 && ids[i] < E).toBe(true);
      expect(ids[4]).not.toBe(ids[5]);
      for (let d = 0; d < Dq; d++) expect(Number.isNaN(y[2 * Dq + d])).toBe(true);
      for (const t of [0, 1, 3, 4]) for (let d = 0; d < Dq; d++) expect(Object.is(y[t * Dq + d], clean[t * Dq + d])).toBe(true);
    }
  });

  describe('bad input gives typed errors', () => {
    const rng = new Rng(seed + 10);
    const D = 64, F = 32, E = 4, T = 3;
    const built = makeExperts(rng, E, F, D, 'q8_0');
    const x = tensorFromArray(rng.floats(T * D), [T, D]);
    const rl = tensorFromArray(rng.floats(T * E), [T, E]);
    const ok: MoeOptions = { topK: 2, routerLogits: rl, experts: built.experts };
    const f32 = (shape: number[]) => tensorFromArray(fastFloats(rng, shape.reduce((a, b) => a * b, 1)), shape);
    it('x, router, routing options', () => {
      expect(() => native().moe(x, ok)).not.toThrow();
      expectCode(() => native().moe({} as never, ok), 'E_ARGUMENT');
      expectCode(() => native().moe(x, undefined as never), 'E_ARGUMENT');
      expectCode(() => native().moe(native().tensorEmpty('i32', [T, D]), ok), 'E_DTYPE');
      expectCode(() => native().moe(tensorFromArray(rng.floats(D), [D]), ok), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, routerLogits: undefined }), 'E_ARGUMENT'); // no router
      expectCode(() => native().moe(x, { ...ok, routerWeight: f32([E, D]) }), 'E_ARGUMENT'); // both
      expectCode(() => native().moe(x, { ...ok, routerLogits: f32([T + 1, E]) }), 'E_SHAPE'); // T mismatch
      expectCode(() => native().moe(x, { ...ok, routerLogits: f32([T, E + 1]) }), 'E_SHAPE'); // ids would exceed the experts
      expectCode(() => native().moe(x, { ...ok, routerLogits: native().tensorEmpty('f16', [T, E]) }), 'E_DTYPE');
      expectCode(() => native().moe(x, { ...ok, routerLogits: undefined, routerWeight: f32([E, D + 1]) }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, routerLogits: undefined, routerWeight: native().tensorEmpty('i32', [E, D]) }), 'E_DTYPE');
      expectCode(() => native().moe(x, { ...ok, topK: E + 1 }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, topK: undefined as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, func: 'max' as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, nGroup: 3 }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, correctionBias: f32([E + 1]) }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, activation: 'relu' as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, threads: 0 }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, returnRouting: 1 as never }), 'E_ARGUMENT');
    });
    it('experts: missing, mismatched shapes, counts, dtypes, disposed', () => {
      const g = built.experts.gate as Tensor;
      const u = built.experts.up as Tensor;
      const dn = built.experts.down as Tensor;
      const ex = (e: Partial<MoeOptions['experts']>) => ({ ...ok, experts: { gate: g, up: u, down: dn, ...e } as MoeOptions['experts'] });
      expectCode(() => native().moe(x, { ...ok, experts: undefined as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, experts: g as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, ex({ gate: undefined as never })), 'E_ARGUMENT');
      expectCode(() => native().moe(x, ex({ up: 7 as never })), 'E_ARGUMENT');
      expectCode(() => native().moe(x, ex({ gate: f32([E + 1, F, D]) })), 'E_SHAPE'); // wrong E
      expectCode(() => native().moe(x, ex({ gate: f32([F, D]) })), 'E_SHAPE'); // not stacked
      expectCode(() => native().moe(x, ex({ up: f32([E, F + 1, D]) })), 'E_SHAPE'); // F mismatch
      expectCode(() => native().moe(x, ex({ gate: f32([E, F, D + 1]), up: f32([E, F, D + 1]) })), 'E_SHAPE');
      expectCode(() => native().moe(x, ex({ down: f32([E, F, D]) })), 'E_SHAPE'); // down transposed
      expectCode(() => native().moe(x, ex({ down: f32([E, D, F + 32]) })), 'E_SHAPE');
      expectCode(() => native().moe(x, ex({ gate: [f32([F, D]), f32([F, D])] })), 'E_SHAPE'); // 2 tensors for 4 experts
      expectCode(() => native().moe(x, ex({ gate: [f32([F, D]), f32([F, D]), f32([F, D]), f32([F + 1, D])] })), 'E_SHAPE');
      expectCode(() => native().moe(x, ex({ gate: [f32([F, D]), f32([F, D]), f32([F, D]), 'w' as never] })), 'E_ARGUMENT');
      expectCode(() => native().moe(x, ex({ gate: native().tensorEmpty('i32', [E, F, D]) })), 'E_DTYPE');
      expectCode(() => native().moe(x, ex({ gate: native().tensorEmpty('q8_k', [E, F, 256]) })), 'E_DTYPE');
      // rows of 256 where x has D=64
      expectCode(() => native().moe(x, ex({ gate: native().tensorEmpty('q4_k', [E, F, 256]) })), 'E_SHAPE');
      const d = f32([E, F, D]);
      d.dispose();
      expectCode(() => native().moe(x, ex({ up: d })), 'E_DISPOSED');
      const dl = [f32([F, D]), f32([F, D]), d, f32([F, D])];
      expectCode(() => native().moe(x, ex({ up: dl })), 'E_DISPOSED');
    });
    it('shared experts and out', () => {
      const s = { gate: f32([16, D]), up: f32([16, D]), down: f32([D, 16]) };
      expect(() => native().moe(x, { ...ok, shared: s })).not.toThrow();
      expect(() => native().moe(x, { ...ok, shared: [s, { ...s, gateWeight: f32([1, D]) }] })).not.toThrow();
      expectCode(() => native().moe(x, { ...ok, shared: { ...s, up: f32([17, D]) } }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, shared: { ...s, down: f32([16, D]) } }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, shared: { ...s, gateWeight: f32([2, D]) } }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, shared: { ...s, gate: undefined as never } }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, shared: 5 as never }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, shared: [s, 5 as never] }), 'E_ARGUMENT');
      expectCode(() => native().moe(x, { ...ok, out: native().tensorEmpty('f32', [T, D + 1]) }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, out: native().tensorEmpty('f16', [T, D]) }), 'E_SHAPE');
      expectCode(() => native().moe(x, { ...ok, out: x }), 'E_ARGUMENT');
    });
  });
});
