// GPU suite: runs only where a CUDA device is usable; otherwise one visible skip line.
import { backends, native } from '../../lib/native';
import { matmul, tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { Rng, relError, testSeed } from '../helpers/random';

const b = backends();
const usable = b.cuda.compiled && b.cuda.devices.length > 0;
if (!usable) console.log(`skipped: no CUDA device (${b.cuda.unavailableReason ?? 'unknown'})`);
const maybe = usable ? describe : describe.skip;

maybe('CUDA matmul', () => {
  it('matches the CPU kernel for f32/f16/bf16 weights', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      for (const [T, K, N] of [[1, 33, 7], [7, 256, 65], [64, 1024, 300]]) {
        const x = tensorFromArray(rng.floats(T * K), [T, K]);
        const w = tensorFromArray(rng.floats(N * K), [N, K], dtype);
        const cpu = tensorToFloat32(matmul(x, w));
        const gpu = tensorToFloat32(native().matmul(x, w, { device: 'cuda' }));
        expect(relError(gpu, cpu)).toBeLessThan(1e-5);
      }
    }
  });
});
