// Reference quantizers / dequantizers of the GGUF block types (native/cpu/quants*.cc), checked
// against independent TypeScript ports of llama.cpp (./ggml-ref.ts) and against error bounds
// derived from each format.
import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import type { QuantType } from '../../lib/native-ops/qgemm';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { Rng, testSeed } from '../helpers/random';
import { BLOCK, decodeBlocks, refQuantizeQ4_0, refQuantizeQ8_0 } from './ggml-ref';
import type { BlockType } from './ggml-ref';

const q = native();
const bytesOf = (t: Tensor) => new Uint8Array(t.toArrayBuffer());

const LEGACY = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q8_1'] as const;
const KQUANTS = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q8_k'] as const;
const ALL_BLOCK: BlockType[] = [...LEGACY, ...KQUANTS];

// Worst-case |x − x̂| per element as a function of the 32-element block's values (fp16 scales have
// relative error ≤ 2^-11; rounding to nearest is ≤ half a step; Q4_0 / Q5_0 clamp the level opposite
// to the max, which costs up to one full step):
//   q8_0, q8_1: step d = amax/127:          d/2 + 127·d·2^-11
//   q4_0: step |d| = amax/8:                |d| + 8·|d|·2^-11
//   q5_0: step |d| = amax/16:               |d| + 16·|d|·2^-11
//   q4_1: step d = (max−min)/15:            d/2 + 15·d·2^-11 + |min|·2^-11
//   q5_1: step d = (max−min)/31:            d/2 + 31·d·2^-11 + |min|·2^-11
// K-quants (256-element super-blocks, sub-block scales quantized to 4/6/8 bits, so no per-element
// closed form): at most two steps of a b-bit grid spanning ±amax of the super-block, 4·amax/(2^b−1)
// (q8_k: the float scale amax/127 is not rounded, so amax/254).
function legacyBound(t: (typeof LEGACY)[number], blk: Float32Array): number {
  let amax = 0, mn = Infinity, mx = -Infinity;
  for (const v of blk) {
    amax = Math.max(amax, Math.abs(v));
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  const e = 2 ** -11;
  const slack = 1e-6 * amax; // float32 arithmetic inside the quantizer
  switch (t) {
    case 'q8_0': case 'q8_1': { const d = amax / 127; return d / 2 + 127 * d * e + slack; }
    case 'q4_0': { const d = amax / 8; return d + 8 * d * e + slack; }
    case 'q5_0': { const d = amax / 16; return d + 16 * d * e + slack; }
    case 'q4_1': { const d = (mx - mn) / 15; return d / 2 + 15 * d * e + Math.abs(mn) * e + slack; }
    case 'q5_1': { const d = (mx - mn) / 31; return d / 2 + 31 * d * e + Math.abs(mn) * e + slack; }
  }
}
const KBITS: Record<(typeof KQUANTS)[number], number> = { q2_k: 2, q3_k: 3, q4_k: 4, q5_k: 5, q6_k: 6, q8_k: 8 };

// RMS of (x − x̂) / RMS(x) on N(0,1) rows: regression bounds, about 1.2× what llama.cpp's own
// reference quantizers reach on such data (their published quality: q8_0 0.5%, q6_k 1.8%,
// q5_k 3.6%, q5_1 3.8%, q5_0 4.3%, q4_k 7.1%, q4_1 7.8%, q4_0 8.6%, q3_k 15%, q2_k 30%).
const RMS_BOUND: Record<string, number> = {
  f16: 3e-4, bf16: 2.2e-3, q8_0: 0.0066, q8_1: 0.0066, q8_k: 0.0085, q6_k: 0.022, q5_k: 0.044, q5_1: 0.046,
  q5_0: 0.052, q4_k: 0.086, q4_1: 0.094, q4_0: 0.104, q3_k: 0.182, q2_k: 0.36,
};

function expectCode(fn: () => unknown, code: string, msg?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(QuantMoeError);
  expect((err as QuantMoeError).code).toBe(code);
  if (msg) expect((err as QuantMoeError).message).toMatch(msg);
}

describe('GGUF block types: reference quantizers and dequantizers', () => {
  const seed = testSeed();

  it(`q4_0 and q8_0 quantize byte-identically to llama.cpp's quantize_row_*_ref (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const rows = 48, K = 256;
    const x = rng.floats(rows * K);
    // Special blocks: all zero, one non-zero, negative max, values on the rounding grid, tiny.
    x.fill(0, 0, 32);
    x.fill(0, 32, 64);
    x[40] = -3.25;
    for (let j = 64; j < 96; j++) x[j] = (j - 80) * 0.5;
    for (let j = 96; j < 128; j++) x[j] = (j - 100) * 1e-3;
    for (let j = 128; j < 160; j++) x[j] = -Math.abs(x[j]) * 1e3;
    const xt = tensorFromArray(x, [rows, K]);
    for (const [dt, ref] of [['q4_0', refQuantizeQ4_0], ['q8_0', refQuantizeQ8_0]] as const) {
      const got = bytesOf(q.quantize(dt, xt));
      const want = ref(x);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        if (got[i] !== want[i]) throw new Error(`${dt}: byte ${i} (block ${Math.floor(i / BLOCK[dt][1])}) is ${got[i]}, llama.cpp gives ${want[i]} (seed ${seed})`);
      }
    }
  });

  it(`dequantize matches llama.cpp's dequantize_row_* (TypeScript port) for every block type (seed ${seed})`, () => {
    const rng = new Rng(seed + 1);
    for (const dt of ALL_BLOCK) {
      const K = BLOCK[dt][0] === 256 ? 512 : 96;
      const x = rng.floats(5 * K, 0.7);
      const w = q.quantize(dt, tensorFromArray(x, [5, K]));
      expect(w.dtype).toBe(dt);
      expect(w.shape).toEqual([5, K]);
      expect(w.byteSize).toBe((5 * K / BLOCK[dt][0]) * BLOCK[dt][1]);
      const ours = tensorToFloat32(q.dequantize(w));
      const theirs = decodeBlocks(dt, bytesOf(w), 5 * K);
      for (let i = 0; i < ours.length; i++) {
        if (ours[i] !== theirs[i]) throw new Error(`${dt}: element ${i}: ${ours[i]} vs llama.cpp ${theirs[i]} (seed ${seed})`);
      }
      // Random bytes are valid blocks too (as long as the half scales are finite): decode must agree.
      const raw = new Uint8Array(w.byteSize);
      for (let i = 0; i < raw.length; i++) raw[i] = rng.int(0, 256);
      const [qk, bs] = BLOCK[dt];
      for (let b = 0; b < raw.length / bs; b++) {
        // keep fp16 / f32 scale fields finite and small: clear the exponent's top bits
        const scaleOffsets: Record<BlockType, number[]> = {
          q4_0: [1], q4_1: [1, 3], q5_0: [1], q5_1: [1, 3], q8_0: [1], q8_1: [1, 3], q2_k: [81, 83], q3_k: [109],
          q4_k: [1, 3], q5_k: [1, 3], q6_k: [209], q8_k: [3],
        };
        for (const o of scaleOffsets[dt]) raw[b * bs + o] &= 0x3b;
      }
      const wr = q.tensorFromData(dt, [raw.length / bs * qk / K, K], raw);
      const a = tensorToFloat32(q.dequantize(wr));
      const b = decodeBlocks(dt, raw, a.length);
      for (let i = 0; i < a.length; i++) {
        if (!(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) throw new Error(`${dt} random bytes: element ${i}: ${a[i]} vs ${b[i]}`);
      }
    }
  });

  it(`round trip error is within each format's bound (seed ${seed})`, () => {
    const rng = new Rng(seed + 2);
    const rows = 16, K = 1024;
    for (const dt of ['f16', 'bf16', ...ALL_BLOCK] as QuantType[]) {
      const x = rng.floats(rows * K);
      const xt = tensorFromArray(x, [rows, K]);
      const y = tensorToFloat32(q.dequantize(q.quantize(dt, xt)));
      let e2 = 0, s2 = 0;
      for (let i = 0; i < x.length; i++) {
        e2 += (y[i] - x[i]) ** 2;
        s2 += x[i] ** 2;
      }
      const rms = Math.sqrt(e2 / s2);
      if (!(rms < RMS_BOUND[dt])) throw new Error(`${dt}: rms rel error ${rms} above ${RMS_BOUND[dt]} (seed ${seed})`);
      if ((LEGACY as readonly string[]).includes(dt)) {
        const t = dt as (typeof LEGACY)[number];
        for (let b = 0; b < x.length / 32; b++) {
          const blk = x.subarray(b * 32, b * 32 + 32);
          const bound = legacyBound(t, blk);
          for (let j = 0; j < 32; j++) {
            const err = Math.abs(y[b * 32 + j] - blk[j]);
            if (!(err <= bound)) throw new Error(`${dt}: block ${b} element ${j}: |err| ${err} > bound ${bound} (seed ${seed})`);
          }
        }
      } else if ((KQUANTS as readonly string[]).includes(dt)) {
        const bits = KBITS[dt as (typeof KQUANTS)[number]];
        for (let b = 0; b < x.length / 256; b++) {
          let amax = 0;
          for (let j = 0; j < 256; j++) amax = Math.max(amax, Math.abs(x[b * 256 + j]));
          const bound = dt === 'q8_k' ? amax / 254 * (1 + 1e-6) : (4 * amax) / (2 ** bits - 1);
          for (let j = 0; j < 256; j++) {
            const err = Math.abs(y[b * 256 + j] - x[b * 256 + j]);
            if (!(err <= bound)) throw new Error(`${dt}: super-block ${b} element ${j}: |err| ${err} > ${bound} (seed ${seed})`);
          }
        }
      }
    }
  });

  it('quantizes degenerate blocks (zeros, constants, one outlier, tiny values) without NaN', () => {
    for (const dt of ['f16', 'bf16', ...ALL_BLOCK] as QuantType[]) {
      const K = 256;
      const x = new Float32Array(4 * K);
      x.fill(0, 0, K); // zeros
      x.fill(0.75, K, 2 * K); // constant
      x[2 * K + 17] = 100; // one outlier in zeros
      for (let i = 3 * K; i < 4 * K; i++) x[i] = (i % 7) * 1e-30; // tiny values (subnormal fp16 scales)
      const y = tensorToFloat32(q.dequantize(q.quantize(dt, tensorFromArray(x, [4, K]))));
      for (let i = 0; i < K; i++) if (y[i] !== 0) throw new Error(`${dt}: zero block decodes to ${y[i]}`);
      for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i])) throw new Error(`${dt}: element ${i} is ${y[i]}`);
      // the outlier keeps its value closely (it sets the scale)
      expect(Math.abs(y[2 * K + 17] - 100)).toBeLessThan(dt === 'q2_k' || dt === 'q3_k' ? 20 : 2);
    }
  });

  it('quantize works on any leading shape and 1-D rows; dequantize keeps the shape', () => {
    const rng = new Rng(seed + 3);
    const x = rng.floats(2 * 3 * 64);
    const w = q.quantize('q8_0', tensorFromArray(x, [2, 3, 64]));
    expect(w.shape).toEqual([2, 3, 64]);
    expect(q.dequantize(w).shape).toEqual([2, 3, 64]);
    const v = q.quantize('q4_k', tensorFromArray(rng.floats(256), [256]));
    expect(v.shape).toEqual([256]);
    expect(q.dequantize(v, { threads: 1 }).shape).toEqual([256]);
    // threads do not change the bytes
    const big = tensorFromArray(rng.floats(64 * 512), [64, 512]);
    for (const dt of ['q4_k', 'q3_k', 'q4_0'] as const) {
      expect(Buffer.from(bytesOf(q.quantize(dt, big, { threads: 1 })))).toEqual(Buffer.from(bytesOf(q.quantize(dt, big, { threads: 2 }))));
    }
  });

  describe('getRows', () => {
    it(`returns dequantized rows for every type, ids as Tensor or Int32Array (seed ${seed})`, () => {
      const rng = new Rng(seed + 4);
      const V = 37;
      for (const dt of ['f32', 'f16', 'bf16', ...ALL_BLOCK] as QuantType[]) {
        const K = dt.endsWith('_k') ? 256 : 64;
        const w = q.quantize(dt, tensorFromArray(rng.floats(V * K), [V, K]));
        const full = tensorToFloat32(q.dequantize(w));
        const ids = Int32Array.from({ length: 9 }, () => rng.int(0, V));
        ids[0] = 0;
        ids[1] = V - 1;
        const a = tensorToFloat32(q.getRows(w, ids));
        const b = tensorToFloat32(q.getRows(w, q.tensorFromData('i32', [ids.length], ids)));
        for (let t = 0; t < ids.length; t++)
          for (let k = 0; k < K; k++) {
            const want = full[ids[t] * K + k];
            if (a[t * K + k] !== want || b[t * K + k] !== want) throw new Error(`${dt}: getRows row ${t} (id ${ids[t]}) element ${k}`);
          }
      }
    });
    it('writes into out and accepts zero ids', () => {
      const w = q.quantize('q8_0', tensorFromArray(new Float32Array(4 * 32).fill(0.5), [4, 32]));
      const out = q.tensorEmpty('f32', [2, 32]);
      expect(q.getRows(w, new Int32Array([3, 1]), { out })).toBe(out);
      expect(q.getRows(w, new Int32Array(0)).shape).toEqual([0, 32]);
    });
    it('rejects ids out of range, naming the id', () => {
      const w = q.quantize('q4_0', tensorFromArray(new Float32Array(5 * 32).fill(1), [5, 32]));
      expectCode(() => q.getRows(w, new Int32Array([0, 5])), 'E_TOKEN_RANGE', /id 5\b/);
      expectCode(() => q.getRows(w, new Int32Array([-1])), 'E_TOKEN_RANGE', /id -1\b/);
      expectCode(() => q.getRows(w, new Float32Array([1]) as never), 'E_DTYPE');
      expectCode(() => q.getRows(w, q.tensorEmpty('f32', [2])), 'E_DTYPE');
      expectCode(() => q.getRows(w, q.tensorEmpty('i32', [2, 1])), 'E_SHAPE');
      expectCode(() => q.getRows(w, new Int32Array([1]), { out: q.tensorEmpty('f32', [2, 32]) }), 'E_SHAPE');
      expectCode(() => q.getRows(q.tensorEmpty('i32', [5, 32]), new Int32Array([1])), 'E_DTYPE');
    });
  });

  describe('bad input gives typed errors', () => {
    const x = tensorFromArray(new Float32Array(2 * 64).fill(1), [2, 64]);
    it('row length not a multiple of the block size', () => {
      expectCode(() => q.quantize('q4_0', tensorFromArray(new Float32Array(2 * 48), [2, 48])), 'E_SHAPE', /block size 32/);
      expectCode(() => q.quantize('q4_k', x), 'E_SHAPE', /block size 256/);
      expectCode(() => q.quantize('q6_k', tensorFromArray(new Float32Array(1408), [1408])), 'E_SHAPE');
      expectCode(() => q.quantize('q8_0', q.tensorEmpty('f32', [])), 'E_SHAPE');
    });
    it('wrong dtypes and arguments', () => {
      expectCode(() => q.quantize('q9_9' as never, x), 'E_DTYPE');
      expectCode(() => q.quantize('i32' as never, x), 'E_DTYPE');
      expectCode(() => q.quantize('q4_0', q.tensorEmpty('f16', [2, 64])), 'E_DTYPE');
      expectCode(() => q.quantize(5 as never, x), 'E_DTYPE');
      expectCode(() => q.quantize({} as never, x), 'E_ARGUMENT');
      expectCode(() => q.quantize('q4_0', 'x' as never), 'E_ARGUMENT');
      expectCode(() => q.quantize('q4_0', x, { threads: 0 }), 'E_ARGUMENT');
      expectCode(() => q.dequantize(q.tensorEmpty('i32', [2, 64])), 'E_DTYPE');
      expectCode(() => q.dequantize(undefined as never), 'E_ARGUMENT');
    });
    it('non-finite values are refused for block types', () => {
      const bad = new Float32Array(64).fill(1);
      bad[33] = NaN;
      expectCode(() => q.quantize('q4_0', tensorFromArray(bad, [64])), 'E_ARGUMENT', /row 0, column 33/);
      bad[33] = Infinity;
      expectCode(() => q.quantize('q8_0', tensorFromArray(bad, [2, 32])), 'E_ARGUMENT', /row 1, column 1/);
      // plain float types keep them
      expect(Number.isNaN(tensorToFloat32(q.dequantize(q.quantize('f16', tensorFromArray(new Float32Array([NaN]), [1]))))[0])).toBe(true);
    });
    it('disposed tensors', () => {
      const d = tensorFromArray(new Float32Array(64).fill(1), [64]);
      const w = q.quantize('q8_0', d);
      d.dispose();
      w.dispose();
      expectCode(() => q.quantize('q8_0', d), 'E_DISPOSED');
      expectCode(() => q.dequantize(w), 'E_DISPOSED');
      expectCode(() => q.getRows(w, new Int32Array([0])), 'E_DISPOSED');
    });
  });
});
