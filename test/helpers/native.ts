// Shared test helpers around the native addon.
import { native } from '../../lib/native';
import type { IsaName } from '../../lib/native';

/** The CPU instruction sets this machine can run (scalar always): every kernel test loops over them. */
export function runnableIsas(): IsaName[] {
  const b = native().backends();
  const order: IsaName[] = ['scalar', 'avx2', 'avx512'];
  const best = order.indexOf(b.cpu.bestIsa);
  return order.filter((i, k) => k <= best && b.cpu.compiledIsas.includes(i));
}

/** Runs fn once per runnable ISA, restoring the best ISA afterwards. */
export function forEachIsa(fn: (isa: IsaName) => void): void {
  try {
    for (const isa of runnableIsas()) {
      native().setIsa(isa);
      fn(isa);
    }
  } finally {
    native().setIsa('best');
  }
}

let reported = false;
/** Prints once which ISAs the kernel tests could not run here (visible, not silent). */
export function reportSkippedIsas(): void {
  if (reported) return;
  reported = true;
  const runnable = runnableIsas();
  const missing = (['avx2', 'avx512'] as IsaName[]).filter((i) => !runnable.includes(i));
  if (missing.length) console.log(`kernel tests: skipped ISA paths not supported by this CPU: ${missing.join(', ')}`);
}
