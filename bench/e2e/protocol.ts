// The job a runner child process gets (JSON file, argv[2]) and the result it writes (job.out).
// Both runners (bench/e2e/run-quantmoe.ts, bench/e2e/run-llama-cpp.mjs) follow it.
import type { CpuWindow } from './proc';

export type EngineName = 'quantmoe' | 'llama.cpp';

export interface RunnerJob {
  engine: EngineName;
  model: string;
  threads: number;
  /** KV cells per sequence (both engines). */
  contextSize: number;
  /** Sequences the engine is set up for (quantmoe parallel, llama.cpp context sequences). */
  parallel: number;
  kv: 'f16' | 'f32';
  /** quantmoe's LoadOptions.weights (llama.cpp ignores it). */
  weights: 'memory' | 'mapped';
  /** Untimed first generation (pages the weights in, warms caches). */
  warmup: { prompt: number[]; tokens: number };
  /** Batch 1: prefill this prompt, then decode `decodeTokens` tokens greedily. */
  prompt: number[];
  decodeTokens: number;
  /** Batch N: these prompts concurrently, `batchTokens` tokens each. */
  batchPrompts: number[][];
  batchTokens: number;
  out: string;
  /** quantmoe runner: dist/lib/index.js to load. */
  quantmoeIndex?: string;
}

export interface RunnerResult {
  engine: EngineName;
  /** Library import + model load + context/KV set-up, seconds. */
  loadS: number;
  /** Of which library import + initialisation (quantmoe require; node-llama-cpp import + getLlama). */
  initS: number;
  /** Time to the first generated token of the batch-1 prompt. */
  prefill: { tokens: number; s: number };
  /** From the first to the last generated token (tokens = generated − 1). */
  decode: { tokens: number; s: number };
  /** Steady state with every sequence decoding: see batchWindow(). */
  batch: { seqs: number; tokens: number; s: number };
  vmHWMkB: number;
  vmRSSkB: number;
  cpu: { total: CpuWindow; load: CpuWindow; warmup: CpuWindow; single: CpuWindow; batch: CpuWindow };
  /** Greedy tokens of the batch-1 run (a sanity check: both engines should mostly agree). */
  tokens: number[];
  notes?: string[];
}

/**
 * Aggregate decode throughput while all sequences are decoding: the window runs from the moment
 * the last sequence produced its first token to the moment the first sequence produced its last;
 * tokens = every token (of any sequence) stamped inside (start, end].
 */
export function batchWindow(stamps: number[][]): { tokens: number; s: number } {
  const start = Math.max(...stamps.map((s) => s[0]));
  const end = Math.min(...stamps.map((s) => s[s.length - 1]));
  let tokens = 0;
  for (const s of stamps) for (const t of s) if (t > start && t <= end) tokens++;
  return { tokens, s: Math.max(0, (end - start) / 1000) };
}
