import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import { evaluateSparseAttention } from '../../lib/ops/sparse-eval';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { structuredAttentionInputs } from '../helpers/attention-inputs';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';
import { refAttention } from './reference';

const N = () => native();

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

function relL1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let x = 0, y = 0;
  for (let i = 0; i < b.length; i++) {
    x += Math.abs(a[i] - b[i]);
    y += Math.abs(b[i]);
  }
  return x / y;
}

const keepAll = { simThreshold: -1, cdfThreshold: 1, pvThreshold: Infinity };

describe('sparseAttention', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());

  it(`τ=1, θ=−1 keeps every block and equals dense (f32 Q·K: rounding; INT8 Q·K: stated tolerance; seed ${seed})`, () => {
    const rng = new Rng(seed);
    const cases: Array<[number, number, number, number, boolean, number, number]> = [
      // T, Hq, Hkv, D, causal, blockQ, blockK
      [1, 2, 2, 64, true, 128, 64],
      [7, 4, 2, 80, true, 128, 64],
      [200, 8, 2, 128, true, 128, 64],
      [200, 4, 1, 64, false, 100, 48],
      [129, 6, 3, 96, true, 32, 16],
    ];
    for (const [T, Hq, Hkv, D, causal, blockQ, blockK] of cases) {
      const q = rng.floats(T * Hq * D), k = rng.floats(T * Hkv * D), v = rng.floats(T * Hkv * D);
      const ref = refAttention(q, k, v, T, T, Hq, Hkv, D, { causal, startPos: 0 });
      const qt = tensorFromArray(q, [T, Hq, D]), kt = tensorFromArray(k, [T, Hkv, D]), vt = tensorFromArray(v, [T, Hkv, D]);
      forEachIsa((isa) => {
        const dense = tensorToFloat32(N().attentionDense(qt, kt, vt, { causal, startPos: 0 }));
        const f = N().sparseAttention(qt, kt, vt, { ...keepAll, causal, blockQ, blockK, int8Qk: false, threads: 2 });
        expect(f.stats.blocksSkippedStage1).toBe(0);
        expect(f.stats.sparsity).toBe(0);
        const of = tensorToFloat32(f.out);
        // same f32 arithmetic as the dense kernel: float rounding only
        const e1 = relError(of, ref);
        if (!(e1 < 2e-5)) throw new Error(`${isa} f32 T=${T} Hq=${Hq} D=${D}: ${e1} (seed ${seed})`);
        expect(relError(of, dense)).toBeLessThan(2e-5);
        const i8 = N().sparseAttention(qt, kt, vt, { ...keepAll, causal, blockQ, blockK, threads: 1 });
        // INT8 Q·K with per-block scales on N(0,1) inputs: logit error ≈ 2·(max/127/√12)·|x|/√D ≈ 0.015,
        // so outputs move by ~1% (relative L1); 0.03 bounds it with margin.
        const e2 = relL1(tensorToFloat32(i8.out), ref);
        if (!(e2 < 0.03)) throw new Error(`${isa} int8 T=${T} Hq=${Hq} D=${D}: relL1 ${e2} (seed ${seed})`);
      });
    }
  });

  it(`structured inputs: default parameters skip blocks with relative L1 < 0.05 (seed ${seed})`, () => {
    const rng = new Rng(seed + 1);
    const T = 2048, Hq = 8, Hkv = 2, D = 128;
    const { q, k, v } = structuredAttentionInputs(rng, { T, Hq, Hkv, D });
    const qt = tensorFromArray(q, [T, Hq, D]), kt = tensorFromArray(k, [T, Hkv, D]), vt = tensorFromArray(v, [T, Hkv, D]);
    const r = evaluateSparseAttention(qt, kt, vt, { threads: 1 });
    expect(r.stats.blocksSkippedStage1).toBeGreaterThan(0);
    if (!(r.sparsity > 0.3 && r.relL1 < 0.05))
      throw new Error(`sparsity ${r.sparsity}, relL1 ${r.relL1} (seed ${seed}): ${JSON.stringify(r.stats)}`);
    expect(r.denseMs).toBeGreaterThan(0);
    expect(r.sparseMs).toBeGreaterThan(0);
  });

  it(`predictBlockMask: causal, sink column, diagonal; a user blockMask is honoured exactly (seed ${seed})`, () => {
    const rng = new Rng(seed + 2);
    const T = 300, Hq = 4, Hkv = 2, D = 64, BQ = 64, BK = 32;
    const nqb = Math.ceil(T / BQ), nkb = Math.ceil(T / BK);
    const q = rng.floats(T * Hq * D), k = rng.floats(T * Hkv * D), v = rng.floats(T * Hkv * D);
    const qt = tensorFromArray(q, [T, Hq, D]), kt = tensorFromArray(k, [T, Hkv, D]), vt = tensorFromArray(v, [T, Hkv, D]);
    const m = N().predictBlockMask(qt, kt, { blockQ: BQ, blockK: BK, simThreshold: -1, cdfThreshold: 0.5 });
    expect(m.length).toBe(Hq * nqb * nkb);
    for (let h = 0; h < Hq; h++)
      for (let bq = 0; bq < nqb; bq++) {
        expect(m[(h * nqb + bq) * nkb]).toBe(1); // sink
        for (let bk = 0; bk < nkb; bk++) {
          const visible = bk * BK < Math.min(T, (bq + 1) * BQ);
          if (!visible) expect(m[(h * nqb + bq) * nkb + bk]).toBe(0);
          if (visible && (bk + 1) * BK > bq * BQ) expect(m[(h * nqb + bq) * nkb + bk]).toBe(1); // diagonal
        }
      }
    // random user mask vs a float64 reference restricted to the same blocks
    const user = Uint8Array.from({ length: Hq * nqb * nkb }, () => (rng.next() < 0.5 ? 1 : 0));
    for (let h = 0; h < Hq; h++) for (let bq = 0; bq < nqb; bq++) user[(h * nqb + bq) * nkb] = 1;
    const ref = refAttention(q, k, v, T, T, Hq, Hkv, D, {
      startPos: 0, keep: (h, t, j) => user[(h * nqb + Math.floor(t / BQ)) * nkb + Math.floor(j / BK)] === 1,
    });
    forEachIsa((isa) => {
      const r = N().sparseAttention(qt, kt, vt, { blockQ: BQ, blockK: BK, blockMask: user, int8Qk: false, pvThreshold: Infinity });
      const e = relError(tensorToFloat32(r.out), ref);
      if (!(e < 2e-5)) throw new Error(`${isa} user mask: ${e} (seed ${seed})`);
      expect(r.stats.blocksSkippedStage1).toBeGreaterThan(0);
    });
  });

  it('stage 2 skips P·V of negligible blocks; NaN input propagates without a crash', () => {
    const rng = new Rng(seed + 3);
    const T = 512, Hq = 2, Hkv = 1, D = 64;
    const { q, k, v } = structuredAttentionInputs(rng, { T, Hq, Hkv, D, localLogit: 30, sinkLogit: 2, spikes: 0 });
    const qt = tensorFromArray(q, [T, Hq, D]), kt = tensorFromArray(k, [T, Hkv, D]), vt = tensorFromArray(v, [T, Hkv, D]);
    const dense = tensorToFloat32(N().attentionDense(qt, kt, vt));
    const r = N().sparseAttention(qt, kt, vt, { simThreshold: -1, cdfThreshold: 1, pvThreshold: 5, int8Qk: false });
    expect(r.stats.blocksSkippedStage2).toBeGreaterThan(0);
    expect(r.stats.sparsity).toBeGreaterThan(0);
    // each skipped row-block carries < 64·e^-5 of the row's mass
    expect(relL1(tensorToFloat32(r.out), dense)).toBeLessThan(0.05);
    const qn = q.slice();
    qn[5] = NaN;
    const kn = k.slice();
    kn[D * 300 + 1] = NaN;
    for (const int8Qk of [true, false]) {
      const y = tensorToFloat32(N().sparseAttention(tensorFromArray(qn, [T, Hq, D]), tensorFromArray(kn, [T, Hkv, D]), vt, { int8Qk }).out);
      expect(y.some(Number.isNaN)).toBe(true);
    }
  });

  it('bad input gives typed errors', () => {
    const t = (T: number, H: number, D = 16) => tensorFromArray(new Float32Array(T * H * D).fill(0.25), [T, H, D]);
    const q = t(8, 4), k = t(8, 2), v = t(8, 2);
    expectCode(() => N().sparseAttention(q, t(8, 3), t(8, 3)), 'E_SHAPE');
    expectCode(() => N().sparseAttention(q, t(7, 2), t(7, 2)), 'E_SHAPE');
    expectCode(() => N().sparseAttention(q, k, t(8, 1)), 'E_SHAPE');
    expectCode(() => N().sparseAttention(q, t(8, 2, 8), t(8, 2, 8)), 'E_SHAPE');
    expectCode(() => N().sparseAttention(q, k, v, { blockMask: new Uint8Array(3) }), 'E_SHAPE');
    expectCode(() => N().sparseAttention(q, k, v, { blockMask: new Int32Array(4) as never }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { cdfThreshold: 1.5 }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { simThreshold: -2 }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { topk: 2 }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { blockQ: 0 }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { pvThreshold: -1 }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(q, k, v, { out: q }), 'E_ARGUMENT');
    expectCode(() => N().sparseAttention(N().tensorEmpty('f16', [8, 4, 16]), k, v), 'E_DTYPE');
    expectCode(() => N().predictBlockMask(q, t(8, 3)), 'E_SHAPE');
    expectCode(() => N().selectDecodeBlocks(t(2, 4), k), 'E_SHAPE');
    expectCode(() => N().selectDecodeBlocks(tensorFromArray(new Float32Array(4 * 16), [4, 16]), t(8, 3)), 'E_SHAPE');
    const cache = N().kvCacheCreate({ layers: 1, maxSeqs: 1, capacity: 8, kvHeads: 2, headDim: 16 });
    expectCode(() => N().selectDecodeBlocks(tensorFromArray(new Float32Array(4 * 16), [4, 16]), cache), 'E_ARGUMENT');
    expectCode(() => N().selectDecodeBlocks(tensorFromArray(new Float32Array(4 * 16), [4, 16]), cache, { length: 9 }), 'E_CONTEXT_OVERFLOW');
    const q1 = tensorFromArray(new Float32Array(4 * 16), [1, 4, 16]);
    expectCode(() => N().attention(q1, cache, 0, 0, { kvBlocks: { blockK: 4, blocks: [Int32Array.of(0)] } }), 'E_ARGUMENT');
    expectCode(() => N().attention(q1, cache, 0, 0, { kvBlocks: { blockK: 4, blocks: [0, 1, 2, 3].map(() => Int32Array.of(1, 0)) } }), 'E_ARGUMENT');
    expectCode(() => N().attention(q1, cache, 0, 0, { kvBlocks: { blockK: 4, blocks: [0, 1, 2, 3].map(() => Int32Array.of(5)) } }), 'E_ARGUMENT');
  });
});

describe('decode block selection', () => {
  const seed = testSeed();

  it(`finds a planted needle block, from k and from an f16 cache; kvBlocks attention matches the reference (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const S = 1024, Hq = 8, Hkv = 2, D = 128, BK = 64;
    const k = rng.floats(S * Hkv * D, 0.5);
    const v = rng.floats(S * Hkv * D);
    const needleBlock = rng.int(2, S / BK - 2);
    const w = rng.floats(D);
    const wn = Math.hypot(...w);
    // a 40-key passage inside the needle block carries direction w in every KV head
    for (let j = needleBlock * BK + 10; j < needleBlock * BK + 50; j++)
      for (let h = 0; h < Hkv; h++) for (let i = 0; i < D; i++) k[(j * Hkv + h) * D + i] += (6 * w[i]) / wn;
    // the query looks for w (plus noise)
    const q = rng.floats(Hq * D, 0.3);
    for (let h = 0; h < Hq; h++) for (let i = 0; i < D; i++) q[h * D + i] += (20 * w[i]) / wn;
    const qt = tensorFromArray(q, [Hq, D]);
    const kt = tensorFromArray(k, [S, Hkv, D]);
    const lists = N().selectDecodeBlocks(qt, kt, { blockK: BK });
    expect(lists.length).toBe(Hq);
    for (const l of lists) {
      expect(Array.from(l)).toContain(needleBlock);
      expect(l[0]).toBe(0); // sink
      expect(l[l.length - 1]).toBe(S / BK - 1); // most recent block
      expect(l.length).toBeLessThan(S / BK / 2);
    }
    const cache = N().kvCacheCreate({ layers: 2, maxSeqs: 2, capacity: S, kvHeads: Hkv, headDim: D, dtype: 'f16' });
    N().kvCacheWrite(cache, 1, 1, 0, kt, tensorFromArray(v, [S, Hkv, D]));
    const lc = N().selectDecodeBlocks(qt, cache, { blockK: BK, layer: 1, seq: 1, length: S });
    for (const l of lc) expect(Array.from(l)).toContain(needleBlock);
    const top = N().selectDecodeBlocks(qt, kt, { blockK: BK, topk: 0.05, keepSinkBlock: false, keepLastBlock: false });
    for (const l of top) {
      expect(l.length).toBe(Math.ceil(0.05 * (S / BK)));
      expect(Array.from(l)).toContain(needleBlock);
    }
    // attention reading only the selected blocks (position S−1) vs float64 restricted to them
    const ref = refAttention(q, k, v, 1, S, Hq, Hkv, D, {
      startPos: S - 1, keep: (h, _t, j) => Array.from(lists[h]).includes(Math.floor(j / BK)),
    });
    const cf = N().kvCacheCreate({ layers: 1, maxSeqs: 1, capacity: S, kvHeads: Hkv, headDim: D, dtype: 'f32' });
    N().kvCacheWrite(cf, 0, 0, 0, kt, tensorFromArray(v, [S, Hkv, D]));
    forEachIsa((isa) => {
      const y = N().attention(tensorFromArray(q, [1, Hq, D]), cf, 0, 0, { startPos: S - 1, kvBlocks: { blockK: BK, blocks: lists } });
      const e = relError(tensorToFloat32(y), ref);
      if (!(e < 2e-5)) throw new Error(`${isa} kvBlocks attention: ${e} (seed ${seed})`);
    });
  });
});
