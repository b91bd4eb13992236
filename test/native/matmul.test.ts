import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import { bf16ToF32, f16ToF32, matmul, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, relError, testSeed } from '../helpers/random';

// float64 reference: y[t,n] = Σ_k x[t,k]·w[n,k], with w given as the exact values the kernel sees.
function refMatmul(x: Float32Array, w: Float64Array, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[t * K + k] * w[n * K + k];
      y[t * N + n] = s;
    }
  return y;
}

function rounded(w: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float64Array {
  const out = new Float64Array(w.length);
  const tmp = tensorFromArray(w, [w.length], dtype);
  const bytes = new Uint8Array(tmp.toArrayBuffer());
  tmp.dispose();
  for (let i = 0; i < w.length; i++) {
    if (dtype === 'f32') out[i] = w[i];
    else {
      const bits = bytes[2 * i] | (bytes[2 * i + 1] << 8);
      out[i] = dtype === 'f16' ? f16ToF32(bits) : bf16ToF32(bits);
    }
  }
  return out;
}

describe('matmul (f32 activations, f32/f16/bf16 weights)', () => {
  const seed = testSeed();
  beforeAll(() => reportSkippedIsas());
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1], [1, 7, 3], [3, 17, 5], [5, 64, 33], [9, 129, 31], [1, 2048, 64], [13, 300, 70],
  ];
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    it(`${dtype}: matches a float64 reference on random shapes (seed ${seed})`, () => {
      const rng = new Rng(seed);
      forEachIsa((isa) => {
        for (const [T, K, N] of shapes) {
          const x = rng.floats(T * K);
          const wv = rng.floats(N * K, 0.5);
          const xt = tensorFromArray(x, [T, K]);
          const wt = tensorFromArray(wv, [N, K], dtype);
          for (const threads of [1, 2]) {
            const y = tensorToFloat32(matmul(xt, wt, { threads }));
            const ref = refMatmul(x, rounded(wv, dtype), T, K, N);
            // f32 accumulation of K products: relative error ~ sqrt(K)·2^-24; 1e-5 is generous.
            const err = relError(y, ref);
            if (!(err < 1e-5)) throw new Error(`${isa} ${dtype} T=${T} K=${K} N=${N} threads=${threads}: rel err ${err} (seed ${seed})`);
          }
        }
      });
    });
  }

  it(`is batch-invariant: a token's row is bit-identical alone or in a batch (seed ${seed})`, () => {
    const rng = new Rng(seed + 1);
    forEachIsa((isa) => {
      for (const dtype of ['f32', 'f16', 'bf16'] as const) {
        const T = 11, K = 203, N = 19;
        const x = rng.floats(T * K);
        const w = tensorFromArray(rng.floats(N * K), [N, K], dtype);
        const all = tensorToFloat32(matmul(tensorFromArray(x, [T, K]), w, { threads: 2 }));
        for (const t of [0, 4, 10]) {
          const one = tensorToFloat32(matmul(tensorFromArray(x.slice(t * K, (t + 1) * K), [1, K]), w, { threads: 1 }));
          for (let n = 0; n < N; n++) {
            if (one[n] !== all[t * N + n]) throw new Error(`${isa} ${dtype}: token ${t} col ${n}: ${one[n]} vs ${all[t * N + n]}`);
          }
        }
      }
    });
  });

  it('accepts a 1-D activation and writes into `out`', () => {
    const rng = new Rng(seed + 2);
    const x = rng.floats(8);
    const w = rng.floats(3 * 8);
    const out = native().tensorEmpty('f32', [3]);
    const r = matmul(tensorFromArray(x, [8]), tensorFromArray(w, [3, 8]), { out });
    expect(r).toBe(out);
    const ref = refMatmul(x, Float64Array.from(w), 1, 8, 3);
    expect(relError(tensorToFloat32(out), ref)).toBeLessThan(1e-6);
  });

  it('propagates NaN instead of crashing', () => {
    const x = new Float32Array([1, NaN, 3, 4]);
    const y = tensorToFloat32(matmul(tensorFromArray(x, [1, 4]), tensorFromArray(new Float32Array([1, 1, 1, 1, 1, 0, 0, 0]), [2, 4])));
    expect(Number.isNaN(y[0])).toBe(true);
  });

  describe('bad input gives typed errors', () => {
    const x = tensorFromArray(new Float32Array(6).fill(1), [2, 3]);
    const w = tensorFromArray(new Float32Array(12).fill(1), [4, 3]);
    const expectCode = (fn: () => unknown, code: string) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QuantMoeError);
      expect((err as QuantMoeError).code).toBe(code);
    };
    it('wrong argument types', () => {
      expectCode(() => native().matmul({} as never, w), 'E_ARGUMENT');
      expectCode(() => native().matmul(x, 5 as never), 'E_ARGUMENT');
      expectCode(() => native().matmul(x, w, { threads: -1 }), 'E_ARGUMENT');
      expectCode(() => native().matmul(x, w, { threads: 'two' as never }), 'E_ARGUMENT');
      expectCode(() => native().matmul(x, w, { device: 'tpu' as never }), 'E_ARGUMENT');
    });
    it('mismatched shapes and dtypes', () => {
      expectCode(() => native().matmul(x, tensorFromArray(new Float32Array(8), [2, 4])), 'E_SHAPE');
      expectCode(() => native().matmul(x, tensorFromArray(new Float32Array(12), [12])), 'E_SHAPE');
      expectCode(() => native().matmul(native().tensorEmpty('i32', [2, 3]), w), 'E_DTYPE');
      expectCode(() => native().matmul(x, native().tensorEmpty('q8_0', [4, 32])), 'E_DTYPE');
      expectCode(() => native().matmul(x, w, { out: native().tensorEmpty('f32', [2, 5]) }), 'E_SHAPE');
      expectCode(() => native().matmul(x, w, { out: x }), 'E_SHAPE');
    });
    it('disposed tensors', () => {
      const d = tensorFromArray(new Float32Array(12).fill(1), [4, 3]);
      d.dispose();
      d.dispose(); // idempotent
      expect(d.disposed).toBe(true);
      expectCode(() => native().matmul(x, d), 'E_DISPOSED');
      expectCode(() => d.toArrayBuffer(), 'E_DISPOSED');
    });
    it('cuda requested where none is usable', () => {
      const b = native().backends();
      if (b.cuda.devices.length > 0) return; // covered by the GPU suite
      expectCode(() => native().matmul(x, w, { device: 'cuda' }), 'E_BACKEND_UNAVAILABLE');
    });
  });
});
