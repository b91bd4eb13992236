// Shared CLI plumbing: the default model, progress bars, one-line errors.
import * as fs from 'fs';
import * as path from 'path';

import { SingleBar } from 'cli-progress';

import { QuantMoeError } from '../errors';

/** The trained model shipped with the package (models/kjv-moe), used when no --model is given. */
export function defaultModelPath(): string {
  for (const up of ['..', '../..', '../../..']) {
    const p = path.resolve(__dirname, up, 'models', 'kjv-moe');
    if (fs.existsSync(path.join(p, 'config.json'))) return p;
  }
  throw new QuantMoeError('E_IO', 'the shipped model models/kjv-moe was not found; pass --model <path>');
}

/** A progress bar on stderr when it is a terminal (or forced); a no-op otherwise. */
export function progressBar(label: string, enabled: boolean): { update(fraction: number): void; stop(): void } {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {eta_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    noTTYOutput: true,
  });
  bar.start(1000, 0);
  return {
    update: (f) => bar.update(Math.round(Math.max(0, Math.min(1, f)) * 1000)),
    stop: () => bar.stop(),
  };
}

/** Runs a command action: typed errors become one line on stderr and exit code 1 (2 for usage). */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const verbose = process.argv.includes('--verbose');
      if (e instanceof QuantMoeError) {
        process.stderr.write(`quantmoe: ${e.message} (${e.code})\n`);
        process.exitCode = e.code === 'E_ARGUMENT' ? 2 : 1;
      } else {
        process.stderr.write(`quantmoe: ${(e as Error).message ?? String(e)}\n`);
        process.exitCode = 1;
      }
      if (verbose && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    }
  };
}

export function parseIntOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new QuantMoeError('E_ARGUMENT', `--${name} must be an integer, got '${v}'`);
    return n;
  };
}

export function parseFloatOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new QuantMoeError('E_ARGUMENT', `--${name} must be a number, got '${v}'`);
    return n;
  };
}
