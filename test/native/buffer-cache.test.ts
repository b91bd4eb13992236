// Freed tensor buffers are kept per thread for reuse by an allocation of the same size; those of
// 64 KB and more are mappings of their own (native/buffer_cache.h). What must hold: a reused buffer
// never shows through where zeros are promised, data written is data read, and the cache gives
// memory back (bounded in bytes, and by age once allocations move on).
import * as fs from 'fs';

import { native } from '../../lib/native';
import { Rng } from '../helpers/random';

const rss = (): number => Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
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

  it('gives freed buffers back: at most 32 MB cached, none once later allocations move on', () => {
    const n = MB / 4;
    const fill = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7));
    const live = Array.from({ length: 64 }, () => native().tensorFromData('f32', [n], fill));  // 64 MB written
    const before = rss();
    for (const t of live) t.dispose();
    const afterDispose = rss();
    // 64 MB freed, at most 32 MB of it kept (and no 1 MB buffer held by malloc's arena)
    expect(before - afterDispose).toBeGreaterThan(30 * MB);
    // thousands of small allocations later, the cached 1 MB buffers are old: unmapped
    for (let i = 0; i < 5000; i++) native().tensorEmpty('f32', [4]).dispose();
    const aged = rss();
    expect(afterDispose - aged).toBeGreaterThan(20 * MB);  // 32 MB unmapped, less what 5000 small tensors cost (JS heap; ASan)
  });
});
