// Perplexity of a model on a text, in the manner of llama.cpp's `perplexity`.
//
// Windows and scoring. The text is tokenized once and cut into windows of `context` tokens; each
// window is one stateless model.logits call, and only the targets in the window's last part are
// scored, so that every scored token has plenty of context (llama.cpp scores the second half of
// each window for the same reason). llama.cpp's windows do not overlap, so it leaves the first
// half of every window unscored; ours slide by `stride` (default context/2) and score the last
// `stride` targets of each, so every token after the first context − stride is scored exactly
// once, with context − stride .. context − 1 tokens before it: the same per-token conditions as
// llama.cpp at twice the tokens scored per text. stride = context gives plain non-overlapping
// chunks scored almost in full. Numbers are comparable to llama.cpp's, not bit-identical (we also
// do not overwrite each window's first token with BOS as llama.cpp does for BOS models).
//
// NLL is −log softmax(logits)[target] in float64; perplexity = exp(mean NLL). The uncertainty is
// llama.cpp's: the standard error of the mean NLL, sqrt((E[nll²] − E[nll]²) / (N − 1)), and for
// perplexity the delta-method ppl · stderr(NLL).
import { QuantMoeError } from '../errors';
import type { Model } from '../runtime/model';
import { checkContext, checkFits, evalTokens, forEachWindow, meanAndStderr, planWindows, tokenNll } from './common';
import type { EvalOptions, EvalProgress, EvalText, ScoreWindow } from './common';

/** Progress with the running perplexity (of the evaluated model; for compareModels, `other`). */
export interface PerplexityProgress extends EvalProgress {
  tokens: number;
  perplexity: number;
}

export interface PerplexityOptions extends EvalOptions<PerplexityProgress> {
  /** Tokens between window starts, default floor(context / 2); 1..context. */
  stride?: number;
  /** Score at most this many windows (llama.cpp's --chunks). */
  maxChunks?: number;
}

export interface PerplexityResult {
  /** exp(nll). */
  perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  nll: number;
  /** Standard error of the mean NLL (NaN with one scored token). */
  stderr: number;
  /** Standard error of the perplexity, perplexity · stderr (what llama.cpp prints after ±). */
  perplexityStderr: number;
  /** Tokens scored. */
  tokens: number;
  /** Windows evaluated (model.logits calls). */
  chunks: number;
  context: number;
  stride: number;
}

export interface ResolvedWindows {
  tokens: number[];
  windows: ScoreWindow[];
  context: number;
  stride: number;
}

/** Tokenizes and plans the scoring windows shared by perplexity() and compareModels(). */
export function resolveScoring(models: Model[], text: EvalText, opts: PerplexityOptions, what: string): ResolvedWindows {
  const context = opts.context ?? 512;
  checkContext(context, what);
  const stride = opts.stride ?? Math.floor(context / 2);
  if (!Number.isInteger(stride) || stride < 1 || stride > context) {
    throw new QuantMoeError('E_ARGUMENT', `${what}: stride must be an integer in [1, context = ${context}], got ${stride}`);
  }
  const maxChunks = opts.maxChunks ?? Infinity;
  if (maxChunks !== Infinity && (!Number.isInteger(maxChunks) || maxChunks < 1)) {
    throw new QuantMoeError('E_ARGUMENT', `${what}: maxChunks must be a positive integer, got ${maxChunks}`);
  }
  const tokens = evalTokens(models[0], text, what);
  const windows = planWindows(tokens.length, context, stride, maxChunks);
  for (const m of models) checkFits(m, windows[0].length, what);
  return { tokens, windows, context, stride };
}

export async function perplexity(model: Model, text: EvalText, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const what = 'perplexity';
  const { tokens, windows, context, stride } = resolveScoring([model], text, options, what);
  const V = model.info().vocabSize;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  await forEachWindow(
    windows,
    (w) => model.logits(tokens.slice(w.start, w.start + w.length)),
    (w, logits) => {
      for (let j = w.scoreFrom; j < w.length; j++) {
        const nll = tokenNll(logits.subarray((j - 1) * V, j * V), tokens[w.start + j]);
        sum += nll;
        sumSq += nll * nll;
        n++;
      }
    },
    {
      signal: options.signal, what,
      onProgress: options.onProgress && ((p) => options.onProgress!({ ...p, tokens: n, perplexity: Math.exp(sum / n) })),
    },
  );
  const { mean, stderr } = meanAndStderr(sum, sumSq, n);
  const ppl = Math.exp(mean);
  return { perplexity: ppl, nll: mean, stderr, perplexityStderr: ppl * stderr, tokens: n, chunks: windows.length, context, stride };
}
