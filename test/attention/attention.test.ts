import * as fs from 'fs';
import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import { f16ToF32, f32ToF16, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas, runnableIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';
import { refAttention } from './reference';
import type { RefAttnOptions } from './reference';

const N = () => native();
const f16round = (a: Float32Array) => Float32Array.from(a, (x) => f16ToF32(f32ToF16(x)));

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

// f32 dot products of length D and an online softmax in f32 with a polynomial exp (rel. error
// ~2e-7): relative L2 error ~ a few 1e-7; 2e-5 leaves margin for long rows.
const TOL = 2e-5;

describe('attentionDense', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());

  it(`matches float64 over GQA 1/2/4, D 64/80/128, masks, sinks, softcap (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const cases: Array<[number, number, number, number, number, RefAttnOptions & { name: string }]> = [
      // T, S, Hq, Hkv, D, options
      [1, 1, 4, 4, 64, { name: 'single' }],
      [7, 7, 4, 2, 80, { name: 'causal gqa2' }],
      [100, 100, 8, 2, 128, { name: 'causal gqa4' }],
      [33, 33, 2, 2, 64, { name: 'non-causal', causal: false }],
      [70, 70, 4, 1, 64, { name: 'window 16 mqa', window: 16 }],
      [40, 100, 4, 2, 80, { name: 'startPos 60', startPos: 60 }],
      [20, 90, 8, 2, 128, { name: 'sinks', sinks: rng.floats(8, 2) }],
      [25, 25, 4, 4, 64, { name: 'softcap', softcap: 5, scale: 0.5 }],
      [9, 130, 8, 2, 96, { name: 'window+sinks+startPos', window: 50, startPos: 121, sinks: rng.floats(8) }],
      [5, 5, 3, 1, 37, { name: 'odd D' }],
    ];
    for (const [T, S, Hq, Hkv, D, o] of cases) {
      const q = rng.floats(T * Hq * D);
      const k = rng.floats(S * Hkv * D);
      const v = rng.floats(S * Hkv * D);
      for (const kvType of ['f32', 'f16'] as const) {
        const kk = kvType === 'f16' ? f16round(k) : k;
        const vv = kvType === 'f16' ? f16round(v) : v;
        const ref = refAttention(q, kk, vv, T, S, Hq, Hkv, D, o);
        forEachIsa((isa) => {
          for (const threads of [1, 2]) {
            const y = N().attentionDense(tensorFromArray(q, [T, Hq, D]), tensorFromArray(k, [S, Hkv, D], kvType),
              tensorFromArray(v, [S, Hkv, D], kvType), {
                startPos: o.startPos, causal: o.causal, slidingWindow: o.window, softcap: o.softcap, scale: o.scale,
                sinks: o.sinks ? tensorFromArray(o.sinks, [Hq]) : undefined, threads,
              });
            const e = relError(tensorToFloat32(y), ref);
            if (!(e < TOL)) throw new Error(`${isa} ${o.name} ${kvType} T=${T} S=${S} Hq=${Hq} Hkv=${Hkv} D=${D} thr=${threads}: ${e} (seed ${seed})`);
          }
        });
      }
    }
  });

  it('a row that sees no key gives zeros; NaN in q propagates to its own rows only', () => {
    const rng = new Rng(seed + 1);
    const T = 4, S = 4, H = 2, D = 16;
    const q = rng.floats(T * H * D);
    const k = tensorFromArray(rng.floats(S * H * D), [S, H, D]);
    const v = tensorFromArray(rng.floats(S * H * D), [S, H, D]);
    // window 1 with startPos beyond S: no visible key
    const z = tensorToFloat32(N().attentionDense(tensorFromArray(q, [T, H, D]), k, v, { startPos: 10, slidingWindow: 1 }));
    expect(z.every((x) => x === 0)).toBe(true);
    forEachIsa(() => {
      const qn = q.slice();
      qn[(2 * H + 1) * D + 3] = NaN; // token 2, head 1
      const y = tensorToFloat32(N().attentionDense(tensorFromArray(qn, [T, H, D]), k, v));
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++) {
          const row = y.slice((t * H + h) * D, (t * H + h + 1) * D);
          expect(row.every(Number.isNaN)).toBe(t === 2 && h === 1);
        }
      const kn = tensorFromArray(Float32Array.from(tensorToFloat32(k), (x, i) => (i === 5 ? Infinity : x)), [S, H, D]);
      N().attentionDense(tensorFromArray(q, [T, H, D]), kn, v); // no crash, no hang
    });
  });
});

describe('KV cache attention', () => {
  const seed = testSeed();

  function makeCache(L: number, seqs: number, cap: number, Hkv: number, D: number, dtype: 'f32' | 'f16'): Tensor {
    return N().kvCacheCreate({ layers: L, maxSeqs: seqs, capacity: cap, kvHeads: Hkv, headDim: D, dtype });
  }

  it(`prefill via the cache equals attentionDense; chunked prefill equals one-shot (seed ${seed})`, () => {
    const rng = new Rng(seed);
    // (Hq = Hkv with f16: the 1-token chunk runs the one-row decode path; D = 136 and 48: a head
    // longer than 128 with a 16-lane tail, and a short one)
    for (const [Hq, Hkv, D, dtype] of [[8, 2, 128, 'f16'], [4, 4, 64, 'f32'], [6, 3, 80, 'f32'], [4, 4, 136, 'f16'], [2, 2, 48, 'f16']] as const) {
      const T = 77, cap = 100;
      const q = rng.floats(T * Hq * D), k = rng.floats(T * Hkv * D), v = rng.floats(T * Hkv * D);
      const ref = refAttention(q, dtype === 'f16' ? f16round(k) : k, dtype === 'f16' ? f16round(v) : v, T, T, Hq, Hkv, D);
      forEachIsa((isa) => {
        const cache = makeCache(2, 3, cap, Hkv, D, dtype);
        const qt = tensorFromArray(q, [T, Hq, D]);
        N().kvCacheWrite(cache, 1, 2, 0, tensorFromArray(k, [T, Hkv, D]), tensorFromArray(v, [T, Hkv, D]));
        const oneShot = tensorToFloat32(N().attention(qt, cache, 1, 2, { startPos: 0, threads: 2 }));
        const e = relError(oneShot, ref);
        if (!(e < TOL)) throw new Error(`${isa} cache ${dtype} Hq=${Hq} Hkv=${Hkv} D=${D}: ${e} (seed ${seed})`);
        // chunks of 30, 1, 46 tokens into another sequence, attending as they go
        const chunked = new Float32Array(T * Hq * D);
        let p = 0;
        for (const n of [30, 1, 46]) {
          const sl = (a: Float32Array, H: number) => a.slice(p * H * D, (p + n) * H * D);
          N().kvCacheWrite(cache, 1, 0, p, tensorFromArray(sl(k, Hkv), [n, Hkv, D]), tensorFromArray(sl(v, Hkv), [n, Hkv, D]));
          const y = tensorToFloat32(N().attention(tensorFromArray(sl(q, Hq), [n, Hq, D]), cache, 1, 0, { startPos: p, threads: 2 }));
          chunked.set(y, p * Hq * D);
          p += n;
        }
        // Same per-row arithmetic (key pieces aligned at 0 for causal attention): bit-identical.
        for (let i = 0; i < chunked.length; i++)
          if (chunked[i] !== oneShot[i]) throw new Error(`${isa} chunked differs at ${i}: ${chunked[i]} vs ${oneShot[i]}`);
      });
    }
  });

  it(`batched decode equals per-sequence decode (sliding window, sinks; seed ${seed})`, () => {
    const rng = new Rng(seed + 1);
    forEachIsa((isa) => {
      const Hq = 8, Hkv = 2, D = 64, cap = 300, seqsN = 4;
      for (const dtype of ['f32', 'f16'] as const) {
        const cache = makeCache(1, seqsN, cap, Hkv, D, dtype);
        const lens = [1, 65, 200, 299];
        const ks: Float32Array[] = [], vs: Float32Array[] = [];
        for (let s = 0; s < seqsN; s++) {
          ks.push(rng.floats(lens[s] * Hkv * D));
          vs.push(rng.floats(lens[s] * Hkv * D));
          N().kvCacheWrite(cache, 0, s, 0, tensorFromArray(ks[s], [lens[s], Hkv, D]), tensorFromArray(vs[s], [lens[s], Hkv, D]));
        }
        const sinks = rng.floats(Hq);
        for (const o of [{}, { slidingWindow: 64, sinks: tensorFromArray(sinks, [Hq]) }]) {
          const order = [2, 0, 3, 1, 2];
          const B = order.length;
          const q = rng.floats(B * Hq * D);
          const seqs = Int32Array.from(order);
          const positions = Int32Array.from(order, (s) => lens[s] - 1);
          const y = tensorToFloat32(N().attentionDecodeBatch(tensorFromArray(q, [B, Hq, D]), cache, 0, seqs, positions, { ...o, threads: 2 }));
          for (let b = 0; b < B; b++) {
            const s = order[b];
            const qb = q.slice(b * Hq * D, (b + 1) * Hq * D);
            const one = tensorToFloat32(N().attention(tensorFromArray(qb, [1, Hq, D]), cache, 0, s, { ...o, startPos: lens[s] - 1, threads: 1 }));
            for (let i = 0; i < one.length; i++)
              if (one[i] !== y[b * Hq * D + i]) throw new Error(`${isa} ${dtype} row ${b} differs at ${i}`);
            if (isa !== runnableIsas()[runnableIsas().length - 1] && b > 0) continue; // reference: cheap subset
            const kk = dtype === 'f16' ? f16round(ks[s]) : ks[s];
            const vv = dtype === 'f16' ? f16round(vs[s]) : vs[s];
            const ref = refAttention(qb, kk, vv, 1, lens[s], Hq, Hkv, D, {
              window: 'slidingWindow' in o ? 64 : 0, sinks: 'sinks' in o ? sinks : null,
            });
            const e = relError(one, ref);
            if (!(e < TOL)) throw new Error(`${isa} ${dtype} decode seq ${s}: ${e} (seed ${seed})`);
          }
        }
        // positions given as an i32 tensor work too
        const q1 = tensorFromArray(rng.floats(Hq * D), [1, Hq, D]);
        N().attentionDecodeBatch(q1, cache, 0, N().tensorFromData('i32', [1], Int32Array.of(3)), N().tensorFromData('i32', [1], Int32Array.of(298)));
      }
    });
  });

  it('kvCacheClear zeroes a sequence; kvCacheCopy shares a prefix', () => {
    const rng = new Rng(seed + 2);
    const Hq = 4, Hkv = 2, D = 32, T = 10;
    const cache = makeCache(2, 2, 16, Hkv, D, 'f32');
    const k = rng.floats(T * Hkv * D), v = rng.floats(T * Hkv * D);
    for (let l = 0; l < 2; l++) N().kvCacheWrite(cache, l, 0, 0, tensorFromArray(k, [T, Hkv, D]), tensorFromArray(v, [T, Hkv, D]));
    N().kvCacheCopy(cache, 0, 1, T);
    const q = tensorFromArray(rng.floats(T * Hq * D), [T, Hq, D]);
    const a = tensorToFloat32(N().attention(q, cache, 1, 0));
    const b = tensorToFloat32(N().attention(q, cache, 1, 1));
    expect(Array.from(b)).toEqual(Array.from(a));
    N().kvCacheClear(cache, 0);
    const bytes = new Float32Array(cache.toArrayBuffer());
    const perSeq = 2 * Hkv * 16 * D;
    for (let l = 0; l < 2; l++) {
      expect(bytes.subarray((l * 2 + 0) * perSeq, (l * 2 + 1) * perSeq).every((x) => x === 0)).toBe(true);
      expect(bytes.subarray((l * 2 + 1) * perSeq, (l * 2 + 2) * perSeq).some((x) => x !== 0)).toBe(true);
    }
  });

  it('kvCacheClear gives a long sequence\'s memory back to the system', () => {
    if (!fs.existsSync('/proc/self/statm')) {
      console.log('skipped: no /proc/self/statm on this system (RSS not measurable)');
      return;
    }
    const rss = () => Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
    const rng = new Rng(seed + 3);
    const Hkv = 8, D = 128, C = 4096; // one sequence: 2 · 8 · 4096 · 128 · 4 B = 32 MiB
    const cache = makeCache(1, 2, C, Hkv, D, 'f32');
    const k = tensorFromArray(rng.floats(C * Hkv * D), [C, Hkv, D]);
    const v = tensorFromArray(rng.floats(C * Hkv * D), [C, Hkv, D]);
    N().kvCacheWrite(cache, 0, 1, 0, k, v); // every position: the sequence's 32 MiB are resident
    // (RSS right around the call only: elsewhere the GC and, under ASan, its allocator move it)
    const written = rss();
    N().kvCacheClear(cache, 1);
    const cleared = rss();
    expect(written - cleared).toBeGreaterThan(0.9 * 32 * 2 ** 20);
    const bytes = new Float32Array(cache.toArrayBuffer());
    expect(bytes.every((x) => x === 0)).toBe(true);
    // and the slot works as before
    N().kvCacheWrite(cache, 0, 1, 0, tensorFromArray(rng.floats(3 * Hkv * D), [3, Hkv, D]), tensorFromArray(rng.floats(3 * Hkv * D), [3, Hkv, D]));
    expect(tensorToFloat32(N().attention(tensorFromArray(rng.floats(Hkv * D), [1, Hkv, D]), cache, 0, 1, { startPos: 2 })).every(Number.isFinite)).toBe(true);
    cache.dispose();
  });

  it('bad input gives typed errors', () => {
    const Hkv = 2, D = 16;
    const cache = makeCache(2, 2, 8, Hkv, D, 'f16');
    const kv = (T: number, H = Hkv, d = D) => tensorFromArray(new Float32Array(T * H * d).fill(0.5), [T, H, d]);
    const q = tensorFromArray(new Float32Array(3 * 4 * D).fill(0.1), [3, 4, D]);
    // positions beyond the cache
    expectCode(() => N().kvCacheWrite(cache, 0, 0, 6, kv(3), kv(3)), 'E_CONTEXT_OVERFLOW');
    expectCode(() => N().attention(q, cache, 0, 0, { startPos: 6 }), 'E_CONTEXT_OVERFLOW');
    expectCode(() => N().attentionDecodeBatch(tensorFromArray(new Float32Array(4 * D), [1, 4, D]), cache, 0, Int32Array.of(0), Int32Array.of(8)), 'E_CONTEXT_OVERFLOW');
    expectCode(() => N().kvCacheCopy(cache, 0, 1, 9), 'E_CONTEXT_OVERFLOW');
    // indices
    expectCode(() => N().kvCacheWrite(cache, 2, 0, 0, kv(1), kv(1)), 'E_ARGUMENT');
    expectCode(() => N().kvCacheWrite(cache, 0, -1, 0, kv(1), kv(1)), 'E_ARGUMENT');
    expectCode(() => N().kvCacheWrite(cache, 0, 0, 1.5, kv(1), kv(1)), 'E_ARGUMENT');
    expectCode(() => N().attention(q, cache, 0, 5), 'E_ARGUMENT');
    expectCode(() => N().attentionDecodeBatch(tensorFromArray(new Float32Array(4 * D), [1, 4, D]), cache, 0, Int32Array.of(2), Int32Array.of(0)), 'E_ARGUMENT');
    expectCode(() => N().attentionDecodeBatch(tensorFromArray(new Float32Array(4 * D), [1, 4, D]), cache, 0, Int32Array.of(0), Int32Array.of(-1)), 'E_ARGUMENT');
    expectCode(() => N().attentionDecodeBatch(tensorFromArray(new Float32Array(4 * D), [1, 4, D]), cache, 0, Int32Array.of(0, 1), Int32Array.of(0, 1)), 'E_SHAPE');
    expectCode(() => N().attentionDecodeBatch(tensorFromArray(new Float32Array(4 * D), [1, 4, D]), cache, 0, [0] as never, Int32Array.of(0)), 'E_ARGUMENT');
    // shapes and dtypes
    expectCode(() => N().kvCacheWrite(cache, 0, 0, 0, kv(2, 3), kv(2, 3)), 'E_SHAPE');
    expectCode(() => N().kvCacheWrite(cache, 0, 0, 0, kv(2), kv(3)), 'E_SHAPE');
    expectCode(() => N().attention(tensorFromArray(new Float32Array(3 * 3 * D), [3, 3, D]), cache, 0, 0), 'E_SHAPE'); // 3 % 2
    expectCode(() => N().attention(tensorFromArray(new Float32Array(4 * 8), [1, 4, 8]), cache, 0, 0), 'E_SHAPE');
    expectCode(() => N().attention(q, tensorFromArray(new Float32Array(16), [16]), 0, 0), 'E_SHAPE');
    expectCode(() => N().attention(q, N().tensorEmpty('i32', [1, 1, 2, 1, 1, 1]), 0, 0), 'E_DTYPE');
    expectCode(() => N().attention(N().tensorEmpty('f16', [3, 4, D]), cache, 0, 0), 'E_DTYPE');
    expectCode(() => N().attentionDense(q, kv(3, 3), kv(3, 3)), 'E_SHAPE');
    expectCode(() => N().attentionDense(q, kv(3), kv(4)), 'E_SHAPE');
    expectCode(() => N().attentionDense(q, kv(3), kv(3), { sinks: tensorFromArray(new Float32Array(3), [3]) }), 'E_SHAPE');
    expectCode(() => N().attentionDense(q, kv(3), kv(3), { slidingWindow: -2 }), 'E_ARGUMENT');
    expectCode(() => N().attentionDense(q, kv(3), kv(3), { softcap: -1 }), 'E_ARGUMENT');
    expectCode(() => N().attentionDense(q, kv(2), kv(2)), 'E_ARGUMENT'); // default startPos = S − T < 0
    expectCode(() => N().attentionDense(q, kv(3), kv(3), { out: q }), 'E_ARGUMENT');
    expectCode(() => N().attentionDense(q, kv(3), kv(3), { out: N().tensorEmpty('f32', [3, 4, 8]) }), 'E_SHAPE');
    expectCode(() => N().kvCacheCreate({ layers: 1, maxSeqs: 1, capacity: 0, kvHeads: 1, headDim: 8 }), 'E_ARGUMENT');
    expectCode(() => N().kvCacheCreate({ layers: 1, maxSeqs: 1, capacity: 4, kvHeads: 1, headDim: 8, dtype: 'q8_0' as never }), 'E_DTYPE');
    expectCode(() => N().kvCacheCreate({ layers: 1, maxSeqs: 1, capacity: 4, kvHeads: 1 } as never), 'E_ARGUMENT');
    const d = kv(3);
    d.dispose();
    expectCode(() => N().attentionDense(q, d, kv(3)), 'E_DISPOSED');
  });
});
