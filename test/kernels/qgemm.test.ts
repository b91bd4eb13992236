// Quantized GEMM (native/cpu/qgemm*.cc): qmatmul against float64 references built from the
// dequantized weights (decoded by the TypeScript port of llama.cpp in ./ggml-ref.ts), on every
// runnable instruction set; batch invariance and thread invariance bit for bit; NaN propagation;
// typed errors.
import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { QgemmWeightType } from '../../lib/native-ops/qgemm';
import { bf16ToF32, f16ToF32, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas, runnableIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';
import { blockMins, decodeBlocks, q81Sums } from './ggml-ref';
import type { BlockType } from './ggml-ref';

const q = native();
const bytesOf = (t: Tensor) => new Uint8Array(t.toArrayBuffer());

const TYPES: QgemmWeightType[] = ['f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];
const isK = (t: string) => t.endsWith('_k');

/** The weight values the kernel sees, decoded independently of the native dequantizer. */
function weightValues(w: Tensor): Float64Array {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const b = bytesOf(w);
  if (w.dtype === 'f32') return Float64Array.from(new Float32Array(b.buffer, b.byteOffset, n));
  if (w.dtype === 'f16' || w.dtype === 'bf16') {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const bits = b[2 * i] | (b[2 * i + 1] << 8);
      out[i] = w.dtype === 'f16' ? f16ToF32(bits) : bf16ToF32(bits);
    }
    return out;
  }
  return decodeBlocks(w.dtype as BlockType, b, n);
}

/**
 * float64 reference of what qmatmul computes: y[t,n] = Σ_k W[n,k]·X̂[t,k] with W the dequantized
 * weights and X̂ the dequantized activation rows (quantizeActivations). For Q4_1 / Q5_1 the Q8_1
 * block's stored s (= d·Σq rounded to half, as llama.cpp defines it) replaces Σ_k X̂ in the
 * m·Σx term: + Σ_blocks m·(s − Σ_block X̂).
 */
function tightReference(x: Tensor, w: Tensor, T: number, K: number, N: number): Float64Array {
  return tightReferenceWithScale(x, w, T, K, N).y;
}

/**
 * tightReference plus, per output, the sum of the magnitudes of its terms (Σ_k |W·X̂| and the
 * Q8_1 min terms): the float chain's rounding error is relative to that, not to |y| (a single
 * output can cancel to near zero).
 */
function tightReferenceWithScale(x: Tensor, w: Tensor, T: number, K: number, N: number): { y: Float64Array; scale: Float64Array } {
  const W = weightValues(w);
  const xa = q.quantizeActivations(w.dtype as QgemmWeightType, x);
  const at = q.qgemmActType(w.dtype as QgemmWeightType);
  expect(xa.dtype).toBe(at);
  const X = at === 'f32' ? Float64Array.from(tensorToFloat32(xa)) : decodeBlocks(at as BlockType, bytesOf(xa), T * K);
  const y = new Float64Array(T * N);
  const scale = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        s += W[n * K + k] * X[t * K + k];
        a += Math.abs(W[n * K + k] * X[t * K + k]);
      }
      y[t * N + n] = s;
      scale[t * N + n] = a;
    }
  if (w.dtype === 'q4_1' || w.dtype === 'q5_1') {
    const m = blockMins(w.dtype, bytesOf(w), N * K);
    const sx = q81Sums(bytesOf(xa), T * K);
    for (let t = 0; t < T; t++)
      for (let b = 0; b < K / 32; b++) {
        let xs = 0;
        for (let k = 0; k < 32; k++) xs += X[t * K + b * 32 + k];
        for (let n = 0; n < N; n++) {
          y[t * N + n] += m[n * (K / 32) + b] * (sx[t * (K / 32) + b] - xs);
          scale[t * N + n] += Math.abs(m[n * (K / 32) + b] * sx[t * (K / 32) + b]);
        }
      }
  }
  return { y, scale };
}

/** float64 reference with the original (unquantized) activations. */
function looseReference(x: Float32Array, W: Float64Array, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += W[n * K + k] * x[t * K + k];
      y[t * N + n] = s;
    }
  return y;
}

/** Per-output bound on |qmatmul − Σ W·x| coming from activation quantization (see the test). */
function looseBounds(w: Tensor, xt: Tensor, x: Float32Array, W: Float64Array, T: number, K: number, N: number): Float64Array {
  const at = q.qgemmActType(w.dtype as QgemmWeightType);
  const bs = at === 'q8_k' ? 256 : 32;
  // e[t,k]: worst-case |x − x̂| of the element's block
  const e = new Float64Array(T * K);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < K / bs; b++) {
      let amax = 0;
      for (let k = b * bs; k < (b + 1) * bs; k++) amax = Math.max(amax, Math.abs(x[t * K + k]));
      const v = at === 'f32' ? 0 : at === 'q8_k' ? (amax / 254) * (1 + 1e-6) : (amax / 127) * (0.5 + 127 * 2 ** -11);
      e.fill(v, t * K + b * bs, t * K + (b + 1) * bs);
    }
  const out = new Float64Array(T * N);
  const sums = w.dtype === 'q4_1' || w.dtype === 'q5_1' ? q81Sums(bytesOf(q.quantizeActivations(w.dtype, xt)), T * K) : undefined;
  const mins = w.dtype === 'q4_1' || w.dtype === 'q5_1' ? blockMins(w.dtype, bytesOf(w), N * K) : undefined;
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let bound = 0, mag = 0;
      for (let k = 0; k < K; k++) {
        const wk = Math.abs(W[n * K + k]);
        bound += wk * e[t * K + k];
        mag += wk * Math.abs(x[t * K + k]);
      }
      if (sums && mins)
        for (let b = 0; b < K / 32; b++) bound += Math.abs(mins[n * (K / 32) + b]) * Math.abs(sums[t * (K / 32) + b]) * 2 ** -11;
      out[t * N + n] = bound * (1 + 1e-6) + 1e-5 * (mag + bound);
    }
  return out;
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

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (ua.length !== ub.length) return false;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

describe('qmatmul: quantized GEMM over the GGUF block types', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());

  it('pairs each weight type with llama.cpp\'s activation type', () => {
    const want: Record<string, string> = {
      f32: 'f32', f16: 'f32', bf16: 'f32', q4_0: 'q8_0', q5_0: 'q8_0', q8_0: 'q8_0', q4_1: 'q8_1', q5_1: 'q8_1',
      q2_k: 'q8_k', q3_k: 'q8_k', q4_k: 'q8_k', q5_k: 'q8_k', q6_k: 'q8_k',
    };
    for (const t of TYPES) expect(q.qgemmActType(t)).toBe(want[t]);
    expectCode(() => q.qgemmActType('q8_k' as never), 'E_DTYPE');
    expectCode(() => q.qgemmActType('i32' as never), 'E_DTYPE');
  });

  for (const wt of TYPES) {
    it(`${wt}: matches float64 references on every ISA (seed ${seed})`, () => {
      const rng = new Rng(seed ^ wt.length * 7919 ^ wt.charCodeAt(1) * 31);
      // [T, K, N]: one token, a few tokens, a prefill-sized batch (two types only, to keep time).
      const shapes: Array<[number, number, number]> = isK(wt)
        ? [[1, 256, 1], [1, 512, 33], [7, 768, 5], [7, 256, 13]]
        : [[1, 32, 1], [1, 96, 33], [7, 64, 5], [7, 1024, 13], [3, 32, 7]];
      if (wt === 'q4_0') shapes.push([512, 256, 9]);
      if (wt === 'q4_k') shapes.push([512, 256, 7]);
      const cases = shapes.map(([T, K, N]) => {
        const x = rng.floats(T * K);
        const wv = rng.floats(N * K, 0.3);
        const xt = tensorFromArray(x, [T, K]);
        const w = q.quantize(wt, tensorFromArray(wv, [N, K]));
        return { T, K, N, x, xt, w, W: weightValues(w) };
      });
      forEachIsa((isa) => {
        for (const { T, K, N, x, xt, w, W } of cases) {
          const { y: tight, scale } = tightReferenceWithScale(xt, w, T, K, N); // activation quantization is deterministic per ISA
          const loose = looseReference(x, W, T, K, N);
          const bounds = looseBounds(w, xt, x, W, T, K, N);
          for (const threads of [1, 2]) {
            const y = tensorToFloat32(q.qmatmul(xt, w, { threads }));
            // Exact integer block sums, then one float32 FMA per block: error ~ (K/block)·2^-24
            // relative to the terms; 1e-5 is generous.
            // (measured against the terms' magnitude: a lone output can cancel to near zero)
            let e1 = 0;
            for (let i = 0; i < y.length; i++) e1 = Math.max(e1, Math.abs(y[i] - tight[i]) / Math.max(scale[i], 1e-30));
            if (!(e1 < 1e-5)) throw new Error(`${isa} ${wt} T=${T} K=${K} N=${N} threads=${threads}: error vs dequantized ref ${e1} of the terms' magnitude (seed ${seed})`);
            // Against the original activations the only difference is activation quantization,
            // bounded element by element: |y − Σ W·x| ≤ Σ_k |W[n,k]|·e_k with e_k half a step of x's
            // block (amax/127/2 plus the half scale's 2^-11 rounding over 127 levels; q8_k keeps a
            // float scale: amax/254), plus |m|·|s|·2^-11 per block for the Q8_1 sums, plus float
            // slack. Float weights see x unchanged.
            for (let t = 0; t < T; t++)
              for (let n = 0; n < N; n++) {
                const b = bounds[t * N + n];
                const d = Math.abs(y[t * N + n] - loose[t * N + n]);
                if (!(d <= b)) throw new Error(`${isa} ${wt} T=${T} K=${K} N=${N}: y[${t},${n}] differs from float64 with original x by ${d} > bound ${b} (seed ${seed})`);
              }
          }
        }
      });
    });
  }

  it(`is batch- and thread-invariant bit for bit on every ISA (seed ${seed})`, () => {
    const rng = new Rng(seed + 11);
    forEachIsa((isa) => {
      for (const wt of TYPES) {
        const K = isK(wt) ? 512 : 96;
        const T = 45, N = 23; // crosses the 32-token tile and the 4-token / 4-row micro-tiles
        const x = rng.floats(T * K);
        const w = q.quantize(wt, tensorFromArray(rng.floats(N * K, 0.5), [N, K]));
        const all = tensorToFloat32(q.qmatmul(tensorFromArray(x, [T, K]), w, { threads: 2 }));
        const fail = (what: string) => { throw new Error(`${isa} ${wt}: ${what} differs from the batched result (seed ${seed})`); };
        for (const threads of [1, 3]) {
          if (!sameBits(all, tensorToFloat32(q.qmatmul(tensorFromArray(x, [T, K]), w, { threads })))) fail(`threads=${threads}`);
        }
        for (const t of [0, 13, 44]) {
          const one = tensorToFloat32(q.qmatmul(tensorFromArray(x.slice(t * K, (t + 1) * K), [K]), w, { threads: 1 }));
          if (!sameBits(one, all.subarray(t * N, (t + 1) * N))) fail(`token ${t} alone`);
        }
        // a slice of 7 tokens, and the batch in reverse order
        const s = tensorToFloat32(q.qmatmul(tensorFromArray(x.slice(30 * K, 37 * K), [7, K]), w, { threads: 2 }));
        if (!sameBits(s, all.subarray(30 * N, 37 * N))) fail('tokens 30..36 as a batch of 7');
        const rev = new Float32Array(T * K);
        for (let t = 0; t < T; t++) rev.set(x.subarray(t * K, (t + 1) * K), (T - 1 - t) * K);
        const yr = tensorToFloat32(q.qmatmul(tensorFromArray(rev, [T, K]), w, { threads: 2 }));
        for (let t = 0; t < T; t++) if (!sameBits(yr.subarray((T - 1 - t) * N, (T - t) * N), all.subarray(t * N, (t + 1) * N))) fail(`token ${t} in reversed batch`);
        // a large N (several row chunks per thread, different splits for 1 and 2 threads)
      }
      const K = 256, N = 301, T = 9;
      const x = tensorFromArray(rng.floats(T * K), [T, K]);
      for (const wt of ['q4_0', 'q6_k'] as const) {
        const w = q.quantize(wt, tensorFromArray(rng.floats(N * K), [N, K]));
        const a = tensorToFloat32(q.qmatmul(x, w, { threads: 1 }));
        const b = tensorToFloat32(q.qmatmul(x, w, { threads: 2 }));
        if (!sameBits(a, b)) throw new Error(`${isa} ${wt}: N=${N} threads 1 vs 2 differ`);
      }
    });
  });

  it(`splits tokens between the many-token and the one-token kernels without changing a bit (seed ${seed})`, () => {
    // The AVX2 path runs groups of 8 tokens (a last group of >= 5 padded) in one kernel and the rest
    // in the GEMV kernel; AVX-512 first runs groups of 16 tokens, then those. T = 4, 11, 12, 13, 16,
    // 21, 29, 37 cover every split. Each token must equal its T=1 result.
    const rng = new Rng(seed + 14);
    forEachIsa((isa) => {
      for (const wt of TYPES) {
        const K = isK(wt) ? 256 : 64, N = 11;
        const w = q.quantize(wt, tensorFromArray(rng.floats(N * K, 0.5), [N, K]));
        const x = rng.floats(37 * K);
        const single: Float32Array[] = [];
        for (let t = 0; t < 37; t++) single.push(tensorToFloat32(q.qmatmul(tensorFromArray(x.slice(t * K, (t + 1) * K), [K]), w, { threads: 1 })));
        for (const T of [4, 11, 12, 13, 16, 21, 29, 37]) {
          const y = tensorToFloat32(q.qmatmul(tensorFromArray(x.slice(0, T * K), [T, K]), w, { threads: 2 }));
          for (let t = 0; t < T; t++)
            if (!sameBits(y.subarray(t * N, (t + 1) * N), single[t])) throw new Error(`${isa} ${wt}: token ${t} of T=${T} differs from T=1 (seed ${seed})`);
        }
      }
    });
  });

  // Needs a CPU that runs both; elsewhere jest reports it as skipped (and beforeAll names the ISA).
  const simdIsas = runnableIsas().filter((i) => i !== 'scalar');
  (simdIsas.length >= 2 ? it : it.skip)(`gives the same bits on AVX2 and AVX-512 for every block type (seed ${seed})`, () => {
    // Both follow one arithmetic contract (native/cpu/qgemm_avx2.h): exact integer block sums, then
    // one fixed float chain per output; so a model gives the same tokens on either kind of CPU.
    const isas = simdIsas;
    const rng = new Rng(seed + 16);
    try {
      for (const wt of TYPES.filter((t) => !['f32', 'f16', 'bf16'].includes(t))) {
        const K = isK(wt) ? 512 : 320, N = 37;
        const w = q.quantize(wt, tensorFromArray(rng.floats(N * K, 0.5), [N, K]));
        for (const T of [1, 3, 8, 16, 21, 40]) {
          const x = tensorFromArray(rng.floats(T * K), [T, K]);
          const ys = isas.map((isa) => {
            native().setIsa(isa);
            return tensorToFloat32(q.qmatmul(x, w, { threads: 2 }));
          });
          for (let i = 1; i < ys.length; i++)
            if (!sameBits(ys[i], ys[0])) throw new Error(`${wt} T=${T}: ${isas[i]} differs from ${isas[0]} (seed ${seed})`);
        }
      }
    } finally {
      native().setIsa('best');
    }
  });

  it(`quantizes activations to the same bytes on every ISA, ties and tiny values included (seed ${seed})`, () => {
    const rng = new Rng(seed + 15);
    const K = 512;
    const rows: Float32Array[] = [];
    rows.push(rng.floats(K));
    // exact halves after scaling (amax = 127 makes d = 1): round-half-away ties
    const ties = new Float32Array(K);
    for (let i = 0; i < K; i++) ties[i] = (Math.round(rng.floats(1)[0] * 80) + 0.5) * (i % 2 ? 1 : -1);
    ties[3] = 127;
    rows.push(ties);
    rows.push(rng.floats(K, 1e-40)); // subnormal: 1/d overflows to inf
    rows.push(rng.floats(K, 1e30));
    rows.push(new Float32Array(K)); // zeros
    const nan = rng.floats(K);
    nan[40] = NaN;
    nan[300] = -Infinity;
    rows.push(nan);
    const all = new Float32Array(rows.length * K);
    rows.forEach((r, i) => all.set(r, i * K));
    const xt = tensorFromArray(all, [rows.length, K]);
    for (const wt of ['q4_0', 'q4_1', 'q4_k'] as const) {
      const ref: Uint8Array[] = [];
      forEachIsa(() => ref.push(bytesOf(q.quantizeActivations(wt, xt))));
      for (let i = 1; i < ref.length; i++) expect(Buffer.compare(Buffer.from(ref[i]), Buffer.from(ref[0]))).toBe(0);
    }
  });

  it('propagates NaN and Inf in x to that row only, without crashing', () => {
    const rng = new Rng(seed + 12);
    forEachIsa((isa) => {
      for (const wt of TYPES) {
        const K = isK(wt) ? 256 : 64, T = 5, N = 6;
        const x = rng.floats(T * K);
        const w = q.quantize(wt, tensorFromArray(rng.floats(N * K), [N, K]));
        const clean = tensorToFloat32(q.qmatmul(tensorFromArray(x, [T, K]), w, { threads: 2 }));
        x[2 * K + 5] = NaN;
        x[4 * K + K - 1] = Infinity;
        const y = tensorToFloat32(q.qmatmul(tensorFromArray(x, [T, K]), w, { threads: 2 }));
        for (let n = 0; n < N; n++) {
          if (!Number.isNaN(y[2 * N + n])) throw new Error(`${isa} ${wt}: NaN row gave ${y[2 * N + n]}`);
          if (Number.isFinite(y[4 * N + n])) throw new Error(`${isa} ${wt}: Inf row gave ${y[4 * N + n]}`);
          for (const t of [0, 1, 3]) expect(y[t * N + n]).toBe(clean[t * N + n]);
        }
      }
    });
  });

  it('accepts a 1-D x, an empty batch, and writes into out', () => {
    const rng = new Rng(seed + 13);
    const w = q.quantize('q4_k', tensorFromArray(rng.floats(3 * 256), [3, 256]));
    const x = rng.floats(256);
    const y1 = q.qmatmul(tensorFromArray(x, [256]), w);
    expect(y1.shape).toEqual([3]);
    const out = q.tensorEmpty('f32', [1, 3]);
    expect(q.qmatmul(tensorFromArray(x, [1, 256]), w, { out })).toBe(out);
    expect(sameBits(tensorToFloat32(out), tensorToFloat32(y1))).toBe(true);
    expect(q.qmatmul(q.tensorEmpty('f32', [0, 256]), w).shape).toEqual([0, 3]);
    const xa = q.quantizeActivations('q4_k', tensorFromArray(x, [256]));
    expect(xa.dtype).toBe('q8_k');
    expect(xa.shape).toEqual([256]);
    expect(xa.byteSize).toBe(292);
  });

  describe('bad input gives typed errors', () => {
    const x = tensorFromArray(new Float32Array(2 * 64).fill(1), [2, 64]);
    const w = q.quantize('q8_0', tensorFromArray(new Float32Array(3 * 64).fill(1), [3, 64]));
    it('mismatched shapes', () => {
      expectCode(() => q.qmatmul(tensorFromArray(new Float32Array(2 * 32), [2, 32]), w), 'E_SHAPE');
      expectCode(() => q.qmatmul(q.tensorEmpty('f32', [1, 2, 64]), w), 'E_SHAPE');
      expectCode(() => q.qmatmul(x, q.quantize('q8_0', tensorFromArray(new Float32Array(64), [64]))), 'E_SHAPE');
      expectCode(() => q.qmatmul(x, w, { out: q.tensorEmpty('f32', [2, 4]) }), 'E_SHAPE');
      expectCode(() => q.qmatmul(x, w, { out: x }), 'E_SHAPE');
      expectCode(() => q.qmatmul(x, w, { out: q.tensorEmpty('f16', [2, 3]) }), 'E_SHAPE');
    });
    it('K not a multiple of the block size', () => {
      expectCode(() => q.quantizeActivations('q4_k', x), 'E_SHAPE');
      expectCode(() => q.quantizeActivations('q4_0', tensorFromArray(new Float32Array(40), [40])), 'E_SHAPE');
      // f32 weights take any K
      expect(q.qmatmul(tensorFromArray(new Float32Array(5).fill(1), [5]), tensorFromArray(new Float32Array(10).fill(2), [2, 5])).shape).toEqual([2]);
    });
    it('wrong dtypes and arguments', () => {
      expectCode(() => q.qmatmul(q.tensorEmpty('f16', [2, 64]), w), 'E_DTYPE');
      expectCode(() => q.qmatmul(x, q.tensorEmpty('i32', [3, 64])), 'E_DTYPE');
      expectCode(() => q.qmatmul(x, q.quantize('q8_1', tensorFromArray(new Float32Array(3 * 64), [3, 64]))), 'E_DTYPE');
      expectCode(() => q.qmatmul(x, q.tensorEmpty('q8_k', [3, 256])), 'E_DTYPE');
      expectCode(() => q.qmatmul(x, 'w' as never), 'E_ARGUMENT');
      expectCode(() => q.qmatmul(x, w, { threads: 0 }), 'E_ARGUMENT');
      expectCode(() => q.qmatmul(x, w, 3 as never), 'E_ARGUMENT');
      expectCode(() => q.quantizeActivations('i8' as never, x), 'E_DTYPE');
    });
    it('disposed tensors', () => {
      const xd = tensorFromArray(new Float32Array(64).fill(1), [1, 64]);
      const wd = q.quantize('q4_0', tensorFromArray(new Float32Array(64).fill(1), [1, 64]));
      const od = q.tensorEmpty('f32', [1, 1]);
      od.dispose();
      expectCode(() => q.qmatmul(xd, wd, { out: od }), 'E_DISPOSED');
      xd.dispose();
      expectCode(() => q.qmatmul(xd, wd), 'E_DISPOSED');
      wd.dispose();
      expectCode(() => q.qmatmul(x, wd), 'E_DISPOSED');
    });
  });
});
