// How a MoE model routes the tokens of a text: tokens per expert per layer, and per-layer
// summaries of how uneven the routing is.
//
// The counts come from the engine's routing statistics (model.stats()): the text goes through
// model.logits in non-overlapping windows of `context` tokens (every token routed once per layer),
// and the counts read before are subtracted from those read after, so the model's own running
// totals are left as they were (no reset). Requests running on the same model at the same time
// would be counted too: run this on a model nothing else is using.
import type { Model } from '../runtime/model';
import { checkContext, checkFits, evalTokens, forEachWindow, planChunks } from './common';
import type { EvalOptions, EvalText } from './common';

export type ExpertUsageOptions = EvalOptions;

export interface LayerUsage {
  layer: number;
  /** false for dense FFN layers (no routing; every count is 0). */
  moe: boolean;
  /** Routed (token, expert) pairs: tokens × experts-per-token for a MoE layer. */
  assignments: number;
  /** counts[e] / assignments: each expert's share of the layer's routed tokens (sums to 1; uniform = 1/E). */
  share: number[];
  maxShare: number;
  maxExpert: number;
  minShare: number;
  minExpert: number;
  /** Coefficient of variation of the counts (population std / mean; 0 = perfectly balanced). */
  cv: number;
  /** Entropy of `share` divided by log E: 1 = uniform, 0 = one expert takes everything. */
  normalizedEntropy: number;
  /** Experts that received no token. */
  unused: number;
}

export interface ExpertUsage {
  /** Tokens of the text (each routed once per MoE layer). */
  tokens: number;
  /** Windows evaluated. */
  chunks: number;
  experts: number;
  expertsPerToken: number;
  /** Tokens routed to each expert, per layer: counts[layer][expert]. */
  counts: number[][];
  layers: LayerUsage[];
}

/** Per-layer summary of one row of counts. */
export function summarizeLayer(layer: number, counts: readonly number[]): LayerUsage {
  const E = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) {
    return {
      layer, moe: false, assignments: 0, share: counts.map(() => 0), maxShare: 0, maxExpert: -1, minShare: 0, minExpert: -1,
      cv: 0, normalizedEntropy: 0, unused: E,
    };
  }
  const share = counts.map((c) => c / total);
  let maxExpert = 0;
  let minExpert = 0;
  for (let e = 1; e < E; e++) {
    if (counts[e] > counts[maxExpert]) maxExpert = e;
    if (counts[e] < counts[minExpert]) minExpert = e;
  }
  const mean = total / E;
  const variance = counts.reduce((a, c) => a + (c - mean) ** 2, 0) / E;
  const entropy = share.reduce((a, p) => (p > 0 ? a - p * Math.log(p) : a), 0);
  return {
    layer, moe: true, assignments: total, share, maxShare: share[maxExpert], maxExpert, minShare: share[minExpert], minExpert,
    cv: Math.sqrt(variance) / mean, normalizedEntropy: E > 1 ? entropy / Math.log(E) : 1, unused: counts.filter((c) => c === 0).length,
  };
}

export async function expertUsage(model: Model, text: EvalText, options: ExpertUsageOptions = {}): Promise<ExpertUsage> {
  const what = 'expertUsage';
  const context = options.context ?? 512;
  checkContext(context, what);
  const tokens = evalTokens(model, text, what, 1);
  const windows = planChunks(tokens.length, context);
  checkFits(model, windows[0].length, what);
  const info = model.info();
  const before = (await model.stats()).expertCounts;
  await forEachWindow(windows, (w) => model.logits(tokens.slice(w.start, w.start + w.length)), () => {}, {
    signal: options.signal, onProgress: options.onProgress, what,
  });
  const after = (await model.stats()).expertCounts;
  const counts = after.map((row, l) => row.map((c, e) => c - (before[l]?.[e] ?? 0)));
  return {
    tokens: tokens.length, chunks: windows.length, experts: info.experts, expertsPerToken: info.expertsPerToken,
    counts, layers: counts.map((row, l) => summarizeLayer(l, row)),
  };
}
