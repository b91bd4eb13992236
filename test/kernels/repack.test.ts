// The r16 weight layouts (native/cpu/repack.h): repackR16 of Q4_0 / Q8_0 weights must change
// nothing but speed. Every op that reads a weight (qmatmul through the GEMV and many-token kernels
// and the thread splits, the fused MoE layer with stacked and per-expert weights, dequantize,
// getRows) gives the same bits on the repacked tensor as on the plain one, on every ISA (AVX-512
// reads the layout directly; the others compute on plain copies of the rows), on fresh random
// weights; bad input is a typed error; and loading a model into memory does repack on AVX-512.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { convertHFToGGUF } from '../../lib/convert/hf-to-gguf';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { native } from '../../lib/native';
import type { Tensor } from '../../lib/native';
import { fileDType, loadWeights } from '../../lib/runtime/weights';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { forEachIsa, reportSkippedIsas } from '../helpers/native';
import { Rng, testSeed } from '../helpers/random';
import { fastFloats, makeExperts } from './moe-build';

const q = native();
const seed = testSeed();
const rng = new Rng(seed);
afterAll(() => reportSkippedIsas());

const bytesOf = (t: Tensor) => new Uint8Array(t.toArrayBuffer());
/** A second, independent copy of a tensor (repackR16 consumes its input). */
const copyOf = (t: Tensor) => q.tensorFromData(t.dtype, t.shape, bytesOf(t));

function expectSameBits(a: Float32Array, b: Float32Array, what: string): void {
  expect(b.length).toBe(a.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) throw new Error(`${what}: element ${i} differs: ${a[i]} vs ${b[i]} (seed ${seed})`);
}

describe(`repackR16 (seed ${seed})`, () => {
  for (const wt of ['q4_0', 'q8_0'] as const) {
    it(`${wt}: qmatmul gives the plain layout's bits for every T, row range and thread count, on every ISA`, () => {
      // K = 1120: 35 blocks (the many-token kernel's 16-block scale gathers plus a tail); N = 80:
      // five tiles, so two threads split inside the matrix.
      const N = 80, K = 1120;
      const plain = q.quantize(wt, tensorFromArray(fastFloats(rng, N * K, 0.3), [N, K]));
      const packed = q.repackR16(copyOf(plain));
      expect(packed.dtype).toBe(`${wt}_r16`);
      expect(packed.shape).toEqual([N, K]);
      expect(packed.byteSize).toBe(plain.byteSize);
      expect(bytesOf(packed)).not.toEqual(bytesOf(plain)); // really rearranged
      forEachIsa((isa) => {
        for (const T of [1, 2, 3, 4, 5, 6, 7, 16, 19, 35, 48]) {
          const x = tensorFromArray(rng.floats(T * K), [T, K]);
          for (const threads of [1, 2]) {
            const a = tensorToFloat32(q.qmatmul(x, plain, { threads }));
            const b = tensorToFloat32(q.qmatmul(x, packed, { threads }));
            expectSameBits(a, b, `${isa} ${wt} T=${T} threads=${threads}`);
          }
        }
      });
    });

    it(`${wt}: dequantize and getRows read the r16 layout`, () => {
      const N = 48, K = 96;
      const plain = q.quantize(wt, tensorFromArray(fastFloats(rng, N * K), [N, K]));
      const packed = q.repackR16(copyOf(plain));
      expectSameBits(tensorToFloat32(q.dequantize(plain)), tensorToFloat32(q.dequantize(packed)), `${wt} dequantize`);
      const ids = new Int32Array([0, 17, 47, 5, 16, 31]);
      expectSameBits(tensorToFloat32(q.getRows(plain, ids)), tensorToFloat32(q.getRows(packed, ids)), `${wt} getRows`);
    });

    it(`${wt}: the fused MoE layer gives the same bits with r16 experts (stacked and per expert)`, () => {
      const E = 6, F = 64, D = 96, T = 9; // (F and D: rows of the down and gate / up matrices, in 16s; K in 32s)
      for (const stacked of [true, false]) {
        const built = makeExperts(rng, E, F, D, stacked ? wt : Array.from({ length: E }, () => ({ gate: wt, up: wt, down: wt })), { stacked });
        const pack = (m: Tensor | Tensor[]) => (Array.isArray(m) ? m.map((t) => q.repackR16(copyOf(t))) : q.repackR16(copyOf(m)));
        const experts = { gate: pack(built.experts.gate), up: pack(built.experts.up), down: pack(built.experts.down) };
        const router = tensorFromArray(fastFloats(rng, E * D), [E, D]);
        for (const n of [1, 3, T, 40]) {
          const x = tensorFromArray(rng.floats(n * D), [n, D]);
          for (const threads of [1, 2]) {
            const a = tensorToFloat32(q.moe(x, { topK: 2, routerWeight: router, experts: built.experts, threads }).y);
            const b = tensorToFloat32(q.moe(x, { topK: 2, routerWeight: router, experts, threads }).y);
            expectSameBits(a, b, `${wt} moe stacked=${stacked} T=${n} threads=${threads}`);
          }
        }
      }
    });
  }

  it('consumes its input and rejects what has no r16 layout with typed errors', () => {
    const w = q.quantize('q4_0', tensorFromArray(fastFloats(rng, 32 * 64), [32, 64]));
    const p = q.repackR16(w);
    expect(w.disposed).toBe(true);
    expect(() => q.qmatmul(tensorFromArray(rng.floats(64), [1, 64]), w)).toThrow(expect.objectContaining({ code: 'E_DISPOSED' }));
    expect(p.disposed).toBe(false);
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    // a type without the layout, rows not in 16s, a vector, an already repacked tensor
    expect(codeOf(() => q.repackR16(q.quantize('q4_k', tensorFromArray(fastFloats(rng, 16 * 256), [16, 256]))))).toBe('E_DTYPE');
    expect(codeOf(() => q.repackR16(q.quantize('q8_0', tensorFromArray(fastFloats(rng, 40 * 32), [40, 32]))))).toBe('E_SHAPE');
    expect(codeOf(() => q.repackR16(q.quantize('q8_0', tensorFromArray(fastFloats(rng, 3 * 16 * 32), [48 * 32]))))).toBe('E_SHAPE');
    expect(codeOf(() => q.repackR16(p))).toBe('E_DTYPE');
    expect(codeOf(() => q.repackR16(tensorFromArray(rng.floats(16 * 32), [16, 32])))).toBe('E_DTYPE');
    // r16 tensors cannot be made with rows the layout cannot hold
    expect(codeOf(() => q.tensorEmpty('q4_0_r16', [40, 32]))).toBe('E_SHAPE');
    expect(codeOf(() => q.tensorEmpty('q8_0_r16', [32]))).toBe('E_SHAPE');
    // a read-only file mapping is left alone
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-r16-'));
    try {
      const f = path.join(dir, 'w.bin');
      const src = q.quantize('q8_0', tensorFromArray(fastFloats(rng, 16 * 64), [16, 64]));
      fs.writeFileSync(f, bytesOf(src));
      const mapped = q.mapFile(f);
      const t = q.tensorFromMapped(mapped, 0, 'q8_0', [16, 64]);
      expect(codeOf(() => q.repackR16(t))).toBe('E_ARGUMENT');
      expect(t.disposed).toBe(false);
      expect(bytesOf(t)).toEqual(bytesOf(src));
      // the same bytes copied into memory can be repacked, and compute as before
      const copy = q.mapFile(f, { inMemory: true });
      copy.fill(0, copy.byteLength);
      const r = q.repackR16(q.tensorFromMapped(copy, 0, 'q8_0', [16, 64]));
      const x = tensorFromArray(rng.floats(2 * 64), [2, 64]);
      expectSameBits(tensorToFloat32(q.qmatmul(x, src)), tensorToFloat32(q.qmatmul(x, r)), 'in-memory file copy');
      r.dispose();
      t.dispose();
      mapped.dispose();
      copy.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model loading', () => {
  it("weights: 'memory' repacks Q4_0 / Q8_0 matrices on AVX-512 (rows in 16s); 'mapped' keeps the file's layout", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-r16-model-'));
    try {
      await writeRandomHFModel(path.join(dir, 'hf'), { arch: 'qwen2_moe', seed: 5, layers: 1, hidden: 64 });
      const gguf = path.join(dir, 'm.gguf');
      await convertHFToGGUF(path.join(dir, 'hf'), gguf, { type: 'Q8_0' });
      const avx512 = q.backends().cpu.isa === 'avx512';
      for (const placement of ['memory', 'mapped'] as const) {
        const w = await loadWeights(gguf, undefined, { placement });
        try {
          let repacked = 0;
          for (const [name, t] of w.weights.entries()) {
            const eligible = t.shape.length >= 2 && t.shape[t.shape.length - 2] % 16 === 0;
            if (fileDType(t.dtype) !== 'q8_0') continue;
            const want = placement === 'memory' && avx512 && eligible ? 'q8_0_r16' : 'q8_0';
            if (t.dtype !== want) throw new Error(`${placement}: ${name} ${JSON.stringify(t.shape)} is ${t.dtype}, expected ${want}`);
            if (t.dtype === 'q8_0_r16') repacked++;
          }
          if (placement === 'memory' && avx512) expect(repacked).toBeGreaterThan(0);
          if (!avx512) console.log('r16 repacking not checked: this CPU has no AVX-512 (weights stay in the plain layout)');
        } finally {
          w.weights.dispose();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
