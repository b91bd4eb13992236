// Kernel benchmarks. Build with `npx tsc`, run with `node dist/bench/kernels.js [--quick]`.
// Prints one table per op family; each measures medians of several runs.
import { benchQgemm } from './qgemm';

function main(): void {
  const quick = process.argv.includes('--quick');
  const t0 = Date.now();
  benchQgemm({
    threads: [1, 2],
    gemmTokens: 64,
    runs: quick ? 3 : 5,
    bandwidthBytes: quick ? 256 * 2 ** 20 : 2 ** 30,
    coldBytes: 2 ** 30, // more than any last-level cache (some server CPUs have 260 MB of L3)
    types: quick
      ? ['q4_0', 'q8_0', 'q4_k', 'q6_k']
      : ['f32', 'f16', 'bf16', 'q8_0', 'q6_k', 'q5_k', 'q5_1', 'q5_0', 'q4_k', 'q4_1', 'q4_0', 'q3_k', 'q2_k'],
    log: (line) => console.log(line),
  });
  console.log(`(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

main();
