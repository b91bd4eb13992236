// Shared plumbing of the evaluation tools: argument checks, tokenizing the evaluation text, the
// scoring windows, and float64 log-softmax over one row of logits.
import * as fs from 'fs';

import { QuantMoeError, abortError } from '../errors';
import type { Model } from '../runtime/model';

/** Evaluation text: a string (tokenized with the model's tokenizer and its BOS default) or token ids. */
export type EvalText = string | readonly number[];

/** Progress of a long evaluation, reported after each window. */
export interface EvalProgress {
  /** Windows (model.logits calls) finished. */
  done: number;
  total: number;
  fraction: number;
}

export interface EvalOptions<P extends EvalProgress = EvalProgress> {
  /** Tokens per window (one model.logits call each), default 512. */
  context?: number;
  signal?: AbortSignal;
  onProgress?: (p: P) => void;
}

export function checkContext(context: number, what: string): void {
  if (!Number.isInteger(context) || context < 2) {
    throw new QuantMoeError('E_ARGUMENT', `${what}: context must be an integer ≥ 2, got ${context}`);
  }
}

export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(what);
}

/** Tokens of the evaluation text; E_ARGUMENT for empty text or fewer than `min` tokens. */
export function evalTokens(model: Model, text: EvalText, what: string, min = 2): number[] {
  let tokens: number[];
  if (typeof text === 'string') {
    if (text.length === 0) throw new QuantMoeError('E_ARGUMENT', `${what}: the text is empty`);
    tokens = model.tokenize(text);
  } else if (Array.isArray(text)) {
    tokens = [...text];
  } else {
    throw new QuantMoeError('E_ARGUMENT', `${what}: text must be a string or an array of token ids`);
  }
  if (tokens.length < min) {
    throw new QuantMoeError('E_ARGUMENT', `${what}: the text has ${tokens.length} token${tokens.length === 1 ? '' : 's'}; at least ${min} are needed`);
  }
  return tokens;
}

/** Reads a UTF-8 text file; E_IO when it cannot be read. */
export function readTextFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new QuantMoeError('E_IO', `cannot read text file '${file}': ${(e as Error).message}`);
  }
}

/** E_CONTEXT_OVERFLOW when a window does not fit the model's KV cache. */
export function checkFits(model: Model, windowTokens: number, what: string): void {
  const cap = model.info().contextSize;
  if (windowTokens > cap) {
    throw new QuantMoeError('E_CONTEXT_OVERFLOW',
      `${what}: windows of ${windowTokens} tokens do not fit the model's context of ${cap}; load it with contextSize ≥ ${windowTokens} or use a smaller context`);
  }
}

/**
 * One scoring window: tokens [start, start + length) go through model.logits; the targets at
 * window offsets scoreFrom..length−1 are scored, each predicted by the logits row before it.
 */
export interface ScoreWindow {
  start: number;
  length: number;
  scoreFrom: number;
}

/**
 * Sliding windows of `context` tokens, `stride` apart, each scoring its last `stride` targets,
 * so every target from offset context − stride on is scored exactly once, with between
 * context − stride and context − 1 tokens before it in its window. Where the last full window
 * ends before the text does, one more window ending at the last token scores the rest. A text
 * shorter than `context` is one window whose last part (the same fraction stride/context) is
 * scored.
 */
export function planWindows(n: number, context: number, stride: number, maxWindows = Infinity): ScoreWindow[] {
  if (n < 2) throw new QuantMoeError('E_ARGUMENT', `at least 2 tokens are needed, got ${n}`);
  if (n <= context) {
    const scoreFrom = Math.min(n - 1, Math.max(1, Math.round((n * (context - stride)) / context)));
    return [{ start: 0, length: n, scoreFrom }];
  }
  const first = Math.max(1, context - stride);
  const out: ScoreWindow[] = [];
  let s = 0;
  for (; s + context <= n && out.length < maxWindows; s += stride) out.push({ start: s, length: context, scoreFrom: first });
  const last = out[out.length - 1];
  const end = last.start + last.length;
  if (end < n && out.length < maxWindows) out.push({ start: n - context, length: context, scoreFrom: end - (n - context) });
  return out;
}

/** Non-overlapping windows of at most `context` tokens covering every token once. */
export function planChunks(n: number, context: number): ScoreWindow[] {
  const out: ScoreWindow[] = [];
  for (let s = 0; s < n; s += context) out.push({ start: s, length: Math.min(context, n - s), scoreFrom: 0 });
  return out;
}

/** Writes log-softmax(row) into `out` (float64); returns out. */
export function logSoftmax(row: Float32Array, out: Float64Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

/** −log softmax(row)[target] in float64 without materialising the whole row. */
export function tokenNll(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum) - row[target];
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Mean and standard error of the mean (sample std / √n; NaN for n < 2), as llama.cpp computes them. */
export function meanAndStderr(sum: number, sumSq: number, n: number): { mean: number; stderr: number } {
  const mean = sum / n;
  const variance = sumSq / n - mean * mean;
  return { mean, stderr: n > 1 ? Math.sqrt(Math.max(0, variance) / (n - 1)) : NaN };
}

/**
 * Runs `fetch` over the windows with one window of look-ahead (the next request is in flight
 * while the current one is processed), honouring the signal between windows.
 */
export async function forEachWindow<T>(
  windows: readonly ScoreWindow[],
  fetch: (w: ScoreWindow) => Promise<T>,
  use: (w: ScoreWindow, data: T, index: number) => void,
  opts: { signal?: AbortSignal; onProgress?: (p: EvalProgress) => void; what: string },
): Promise<void> {
  const start = (i: number): Promise<T> | undefined => {
    if (i >= windows.length) return undefined;
    const p = fetch(windows[i]);
    p.catch(() => {}); // awaited below, or abandoned after an abort
    return p;
  };
  checkAborted(opts.signal, opts.what);
  let next = start(0);
  for (let i = 0; i < windows.length; i++) {
    const data = await next!;
    checkAborted(opts.signal, opts.what);
    next = start(i + 1);
    use(windows[i], data, i);
    opts.onProgress?.({ done: i + 1, total: windows.length, fraction: (i + 1) / windows.length });
  }
}
