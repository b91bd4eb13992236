import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { QuantMoeError } from '../../lib/errors';
import { backends, native, resolveDevice } from '../../lib/native';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuantMoeError);
    return (e as QuantMoeError).code;
  }
  return undefined;
}

describe('Tensor handles', () => {
  it('carries dtype, shape, device, byte size; copies data in and out', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = native().tensorFromData('f32', [2, 3], data);
    expect(t.dtype).toBe('f32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.device).toBe('cpu');
    expect(t.byteSize).toBe(24);
    expect(t.owned).toBe(true);
    data[0] = 100; // a copy, not a view
    expect(Array.from(new Float32Array(t.toArrayBuffer()))).toEqual([1, 2, 3, 4, 5, 6]);
    t.write(new Float32Array([6, 5, 4, 3, 2, 1]));
    expect(Array.from(new Float32Array(t.toArrayBuffer()))).toEqual([6, 5, 4, 3, 2, 1]);
    t.dispose();
    expect(t.disposed).toBe(true);
  });

  it('knows GGUF block sizes', () => {
    expect(native().tensorEmpty('q4_0', [3, 64]).byteSize).toBe(3 * 2 * 18);
    expect(native().tensorEmpty('q8_0', [1, 32]).byteSize).toBe(34);
    expect(native().tensorEmpty('q4_k', [2, 256]).byteSize).toBe(2 * 144);
    expect(native().tensorEmpty('q6_k', [1, 512]).byteSize).toBe(2 * 210);
    expect(native().tensorEmpty('bf16', [5]).byteSize).toBe(10);
    expect(code(() => native().tensorEmpty('q4_k', [2, 100]))).toBe('E_SHAPE');
  });

  it('rejects bad arguments with typed errors', () => {
    expect(code(() => native().tensorFromData('f32', [2, 3], new Float32Array(5)))).toBe('E_SHAPE');
    expect(code(() => native().tensorFromData('nope' as never, [2], new Float32Array(2)))).toBe('E_DTYPE');
    expect(code(() => native().tensorFromData('f32', [-1] as never, new Float32Array(0)))).toBe('E_SHAPE');
    expect(code(() => native().tensorFromData('f32', [1.5], new Float32Array(1)))).toBe('E_SHAPE');
    expect(code(() => native().tensorFromData('f32', 'x' as never, new Float32Array(1)))).toBe('E_ARGUMENT');
    expect(code(() => native().tensorFromData('f32', [2], 'data' as never))).toBe('E_ARGUMENT');
    expect(code(() => native().tensorEmpty('f32', [2 ** 40, 2 ** 20]))).toBe('E_SHAPE');
    const t = native().tensorEmpty('f32', [2]);
    expect(code(() => t.write(new Float32Array(3)))).toBe('E_SHAPE');
    const Ctor = (native() as unknown as { Tensor: new (x?: unknown) => unknown }).Tensor;
    expect(() => new Ctor()).toThrow(/cannot be constructed directly/);
  });

  describe('memory-mapped files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-map-'));
    const file = path.join(dir, 'w.bin');
    const values = new Float32Array([0.5, -1.5, 2.25, 3, 4, 5, 6, 7]);
    fs.writeFileSync(file, Buffer.concat([Buffer.from('HEADER!!'), Buffer.from(values.buffer)]));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('borrows tensors from the mapping without copying', () => {
      const m = native().mapFile(file);
      expect(m.byteLength).toBe(8 + 32);
      expect(m.read(0, 8).toString()).toBe('HEADER!!');
      const t = native().tensorFromMapped(m, 8, 'f32', [2, 4]);
      expect(t.owned).toBe(false);
      m.dispose(); // the tensor keeps the pages mapped
      expect(Array.from(new Float32Array(t.toArrayBuffer()))).toEqual(Array.from(values));
      expect(code(() => t.write(new Float32Array(8)))).toBe('E_ARGUMENT');
      expect(code(() => native().tensorFromMapped(m, 8, 'f32', [2, 4]))).toBe('E_DISPOSED');
    });

    it('copies the file into memory with fill(), and tensors borrow the copy', () => {
      const m = native().mapFile(file, { inMemory: true });
      expect(m.inMemory).toBe(true);
      expect(m.byteLength).toBe(8 + 32);
      m.fill(0, 20, { threads: 2 }); // two slices, as loadWeights fills in pieces
      m.fill(20, 20);
      expect(m.read(0, 8).toString()).toBe('HEADER!!');
      const t = native().tensorFromMapped(m, 8, 'f32', [2, 4]);
      expect(t.owned).toBe(false); // read-only like a mapping
      m.dispose();
      expect(Array.from(new Float32Array(t.toArrayBuffer()))).toEqual(Array.from(values));
      expect(code(() => t.write(new Float32Array(8)))).toBe('E_ARGUMENT');
      expect(native().mapFile(file).inMemory).toBe(false);
    });

    it('fill() rejects bad ranges, mapped handles, and a file truncated since it was opened', () => {
      const m = native().mapFile(file, { inMemory: true });
      expect(code(() => m.fill(30, 100))).toBe('E_ARGUMENT');
      expect(code(() => m.fill(-1, 4))).toBe('E_ARGUMENT');
      expect(code(() => m.fill(0.5, 4))).toBe('E_ARGUMENT');
      expect(code(() => native().mapFile(file).fill(0, 8))).toBe('E_ARGUMENT');
      expect(code(() => native().mapFile(file, { inMemory: 'yes' as unknown as boolean }))).toBe('E_ARGUMENT');
      const cut = path.join(dir, 'cut.bin');
      fs.copyFileSync(file, cut);
      const c = native().mapFile(cut, { inMemory: true });
      fs.truncateSync(cut, 10);
      expect(code(() => c.fill(0, 40))).toBe('E_IO');
      c.dispose();
      m.dispose();
      expect(code(() => m.fill(0, 8))).toBe('E_DISPOSED');
    });

    it('rejects ranges outside the file and missing files', () => {
      const m = native().mapFile(file);
      expect(code(() => native().tensorFromMapped(m, 12, 'f32', [2, 4]))).toBe('E_FORMAT');
      expect(code(() => native().tensorFromMapped(m, -4, 'f32', [1]))).toBe('E_FORMAT');
      expect(code(() => m.read(30, 100))).toBe('E_FORMAT');
      expect(code(() => native().mapFile(path.join(dir, 'missing.bin')))).toBe('E_IO');
      expect(code(() => native().mapFile(dir))).toBe('E_IO');
    });
  });
});

describe('backends()', () => {
  it('reports CPU features and the CUDA state', () => {
    const b = backends();
    expect(b.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(b.cpu.compiledIsas).toContain('scalar');
    expect(['scalar', 'avx2', 'avx512']).toContain(b.cpu.isa);
    expect(typeof b.cuda.compiled).toBe('boolean');
    expect(Array.isArray(b.cuda.devices)).toBe(true);
    if (b.cuda.devices.length === 0) expect(b.cuda.unavailableReason).toMatch(/./);
    if (process.arch === 'x64' && b.cpu.features.includes('avx2')) expect(b.cpu.compiledIsas).toContain('avx2');
  });

  it("device 'auto' falls back to the CPU; 'cuda' fails clearly when unusable", () => {
    const b = backends();
    if (b.cuda.devices.length === 0) {
      expect(resolveDevice('auto')).toBe('cpu');
      expect(code(() => resolveDevice('cuda'))).toBe('E_BACKEND_UNAVAILABLE');
    } else {
      expect(resolveDevice('auto')).toBe('cuda');
    }
    expect(resolveDevice('cpu')).toBe('cpu');
    expect(code(() => resolveDevice('tpu' as never))).toBe('E_ARGUMENT');
  });

  it('setIsa refuses instruction sets the CPU lacks', () => {
    const b = backends();
    if (!b.cpu.features.includes('avx512f')) expect(code(() => native().setIsa('avx512'))).toBe('E_UNSUPPORTED');
    expect(code(() => native().setIsa('sse9' as never))).toBe('E_ARGUMENT');
    native().setIsa('best');
  });
});

describe('worker threads', () => {
  it('loads the addon in several workers at once and computes there', async () => {
    const { Worker } = await import('worker_threads');
    const loader = path.resolve(__dirname, '../../scripts/load-addon.js');
    const src = `
      const { parentPort } = require('worker_threads');
      const b = require(${JSON.stringify(loader)}).load();
      const x = b.tensorFromData('f32', [1, 4], new Float32Array([1, 2, 3, 4]));
      const w = b.tensorFromData('f32', [2, 4], new Float32Array([1, 1, 1, 1, 0, 1, 0, 1]));
      parentPort.postMessage(Array.from(new Float32Array(b.matmul(x, w, { threads: 2 }).toArrayBuffer())));
    `;
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<number[]>((resolve, reject) => {
            const wk = new Worker(src, { eval: true });
            wk.once('message', (m: number[]) => resolve(m));
            wk.once('error', reject);
          }),
      ),
    );
    for (const r of results) expect(r).toEqual([10, 6]);
  });
});
