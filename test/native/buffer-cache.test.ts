// Freed tensor buffers are kept per thread for reuse by an allocation of the same size; those of
// 64 KB and more are mappings of their own (native/buffer_cache.h). What must hold: a reused buffer
// never shows through where zeros are promised, data written is data read, and the cache gives
// memory back (bounded in bytes, and by age once allocations move on).
import * as path from 'path';
import { Worker } from 'worker_threads';

import { native } from '../../lib/native';
import { Rng } from '../helpers/random';

const MB = 1 << 20;

describe('tensor buffer cache', () => {
  it('tensorEmpty is zero even when a freed buffer of that size is cached', () => {
    const rng = new Rng(71);
    for (const n of [5, 2048, 16383, 16384, 16385, 262144]) {  // small, 8 KB, under / at / over 64 KB (mapped), 1 MB
      const data = Float32Array.from({ length: n }, () => rng.uniform(1, 2));
      const a = native().tensorFromData('f32', [n], data);
      a.dispose();
      const z = new Float32Array(native().tensorEmpty('f32', [n]).toArrayBuffer());
      expect(z.every((v) => v === 0)).toBe(true);
      // a non-zeroed allocation of that size may reuse the buffer; it holds what was written
      const other = Float32Array.from({ length: n }, () => rng.uniform(-2, -1));
      const b = native().tensorFromData('f32', [n], other);
      expect(new Float32Array(b.toArrayBuffer())).toEqual(other);
      b.dispose();
    }
  });

  it('gives freed buffers back: at most 32 MB cached, none once later allocations move on', async () => {
    // In a fresh worker thread: the cache is per thread, and this jest process's main thread has
    // run other test files before (its cache holds their buffers).
    const script = `
      const { parentPort } = require('worker_threads');
      const fs = require('fs');
      const n = require(${JSON.stringify(path.join(__dirname, '..', '..', 'scripts', 'load-addon.js'))}).load();
      const rss = () => Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
      const N = (1 << 20) / 4;
      const fill = Float32Array.from({ length: N }, (_, i) => 1 + (i % 7));
      const live = Array.from({ length: 64 }, () => n.tensorFromData('f32', [N], fill));  // 64 MB written
      const before = rss();
      for (const t of live) t.dispose();
      const afterDispose = rss();
      for (let i = 0; i < 5000; i++) n.tensorEmpty('f32', [4]).dispose();
      parentPort.postMessage({ before, afterDispose, aged: rss() });`;
    const r = await new Promise<{ before: number; afterDispose: number; aged: number }>((resolve, reject) => {
      const w = new Worker(script, { eval: true });
      w.once('message', resolve);
      w.once('error', reject);
    });
    // 64 MB freed, at most 32 MB of it kept (and no 1 MB buffer held by malloc's arena)
    expect(r.before - r.afterDispose).toBeGreaterThan(30 * MB);
    // thousands of small allocations later, the cached 1 MB buffers are old: unmapped
    expect(r.afterDispose - r.aged).toBeGreaterThan(24 * MB);  // 32 MB, less the small tensors' own cost (JS heap; ASan)
  });
});
