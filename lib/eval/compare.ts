// KL divergence of one model's next-token distributions from a base model's on the same text:
// the numbers llama.cpp's `perplexity --kl-divergence` reports (mean KLD with its standard error,
// median / 99th percentile / max KLD, "same top p" = share of positions whose argmax agrees, and
// both perplexities). Windows and scored positions are exactly those of perplexity(); the text is
// tokenized with the base model's tokenizer and both models see the same token ids.
//
// Per scored position: KL(P_base ‖ P_other) = Σ_v p_base(v) · (log p_base(v) − log p_other(v)),
// log-softmax in float64.
import { QuantMoeError } from '../errors';
import type { Model } from '../runtime/model';
import { argmax, forEachWindow, logSoftmax, meanAndStderr } from './common';
import type { EvalText } from './common';
import { resolveScoring } from './perplexity';
import type { PerplexityOptions } from './perplexity';

export type CompareOptions = PerplexityOptions;

export interface CompareResult {
  /** Mean KL(base ‖ other) per scored token (nats). */
  meanKL: number;
  /** Standard error of meanKL. */
  meanKLStderr: number;
  medianKL: number;
  /** 99th percentile of the per-token KL (linear interpolation between order statistics). */
  p99KL: number;
  maxKL: number;
  /** Share of scored positions where both models' most likely next token is the same. */
  sameTop1: number;
  perplexityBase: number;
  perplexityOther: number;
  /** Standard errors of the two perplexities (ppl · stderr of the mean NLL). */
  perplexityBaseStderr: number;
  perplexityOtherStderr: number;
  /** Tokens scored. */
  tokens: number;
  chunks: number;
  context: number;
  stride: number;
}

/** The q-quantile (0..1) of sorted values, interpolating linearly. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const p = q * (sorted.length - 1);
  const i = Math.floor(p);
  const f = p - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

export async function compareModels(base: Model, other: Model, text: EvalText, options: CompareOptions = {}): Promise<CompareResult> {
  const what = 'compareModels';
  const V = base.info().vocabSize;
  const Vo = other.info().vocabSize;
  if (V !== Vo) {
    throw new QuantMoeError('E_ARGUMENT', `${what}: the models have different vocabulary sizes (${V} vs ${Vo}); KL divergence needs the same vocabulary`);
  }
  const { tokens, windows, context, stride } = resolveScoring([base, other], text, options, what);
  const total = windows.reduce((a, w) => a + w.length - w.scoreFrom, 0);
  const kls = new Float64Array(total);
  const lp = new Float64Array(V);
  const lq = new Float64Array(V);
  let n = 0;
  let klSum = 0;
  let klSq = 0;
  let same = 0;
  const nll = { base: [0, 0], other: [0, 0] };
  await forEachWindow(
    windows,
    (w) => {
      const ids = tokens.slice(w.start, w.start + w.length);
      return Promise.all([base.logits(ids), base === other ? undefined : other.logits(ids)]);
    },
    (w, [lb, lo0]) => {
      const lo = lo0 ?? lb;
      for (let j = w.scoreFrom; j < w.length; j++) {
        const rb = lb.subarray((j - 1) * V, j * V);
        const ro = lo.subarray((j - 1) * V, j * V);
        logSoftmax(rb, lp);
        logSoftmax(ro, lq);
        let kl = 0;
        for (let v = 0; v < V; v++) {
          const d = lp[v] - lq[v];
          if (d !== 0) kl += Math.exp(lp[v]) * d;
        }
        kls[n++] = kl;
        klSum += kl;
        klSq += kl * kl;
        if (argmax(rb) === argmax(ro)) same++;
        const t = tokens[w.start + j];
        nll.base[0] -= lp[t];
        nll.base[1] += lp[t] * lp[t];
        nll.other[0] -= lq[t];
        nll.other[1] += lq[t] * lq[t];
      }
    },
    {
      signal: options.signal, what,
      onProgress: options.onProgress && ((p) => options.onProgress!({ ...p, tokens: n, perplexity: Math.exp(nll.other[0] / n) })),
    },
  );
  const kl = meanAndStderr(klSum, klSq, n);
  const pb = meanAndStderr(nll.base[0], nll.base[1], n);
  const po = meanAndStderr(nll.other[0], nll.other[1], n);
  const sorted = kls.slice(0, n).sort();
  return {
    meanKL: kl.mean, meanKLStderr: kl.stderr, medianKL: quantile(sorted, 0.5), p99KL: quantile(sorted, 0.99), maxKL: sorted[n - 1],
    sameTop1: same / n,
    perplexityBase: Math.exp(pb.mean), perplexityOther: Math.exp(po.mean),
    perplexityBaseStderr: Math.exp(pb.mean) * pb.stderr, perplexityOtherStderr: Math.exp(po.mean) * po.stderr,
    tokens: n, chunks: windows.length, context, stride,
  };
}
