// perplexity() and compareModels() on tiny random models: the result equals exp(mean NLL)
// recomputed here from model.logits on the same windows; the windows cover every token once;
// KL of a model against itself is 0, against another model > 0; typed errors for bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { QuantMoeError } from '../../lib/errors';
import { planWindows, readTextFile } from '../../lib/eval/common';
import { compareModels, quantile } from '../../lib/eval/compare';
import { perplexity } from '../../lib/eval/perplexity';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { loadModel } from '../../lib/runtime/model';
import type { Model } from '../../lib/runtime/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-eval-ppl-'));
let model: Model;
let other: Model;
const TEXT = 'In the beginning God created the heaven and the earth. And the earth was without form, and void; '
  + 'and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. '
  + 'And God said, Let there be light: and there was light. And God saw the light, that it was good.';

beforeAll(async () => {
  await writeRandomHFModel(path.join(tmp, 'a'), { arch: 'qwen2_moe', seed: 3, layers: 2, hidden: 64, contextLength: 256 });
  await writeRandomHFModel(path.join(tmp, 'b'), { arch: 'qwen2_moe', seed: 4, layers: 2, hidden: 64, contextLength: 256 });
  model = await loadModel(path.join(tmp, 'a'), { threads: 1, contextSize: 128, parallel: 2 });
  other = await loadModel(path.join(tmp, 'b'), { threads: 1, contextSize: 128, parallel: 2 });
});
afterAll(async () => {
  await model?.dispose();
  await other?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(QuantMoeError);
    return (e as QuantMoeError).code;
  }
  return undefined;
}

/** float64 log-softmax, written independently of lib/eval. */
function logProbs(logits: Float32Array, row: number, V: number): number[] {
  const r = Array.from(logits.subarray(row * V, (row + 1) * V), Number);
  const m = Math.max(...r);
  const lse = m + Math.log(r.reduce((a, x) => a + Math.exp(x - m), 0));
  return r.map((x) => x - lse);
}

describe('planWindows', () => {
  it.each([[300, 64, 32], [300, 64, 1], [257, 64, 20], [64, 64, 32], [40, 64, 32], [2, 512, 256], [129, 64, 63]])(
    'n=%d context=%d stride=%d: every target from context−stride on is scored once, with ≥ context−stride tokens before it',
    (n, context, stride) => {
      const ws = planWindows(n, context, stride);
      const seen = new Array<number>(n).fill(0);
      for (const w of ws) {
        expect(w.length).toBe(Math.min(n, context));
        expect(w.start + w.length).toBeLessThanOrEqual(n);
        expect(w.scoreFrom).toBeGreaterThanOrEqual(1);
        for (let j = w.scoreFrom; j < w.length; j++) seen[w.start + j]++;
        if (n > context) expect(w.scoreFrom).toBeGreaterThanOrEqual(Math.max(1, context - stride));
      }
      const first = seen.indexOf(1);
      expect(first).toBeGreaterThanOrEqual(1);
      if (n > context) expect(first).toBe(Math.max(1, context - stride));
      for (let i = 0; i < n; i++) expect(seen[i]).toBe(i < first ? 0 : 1);
    },
  );
  it('stride = context: non-overlapping windows, each scoring all but its first token', () => {
    const ws = planWindows(300, 64, 64);
    const seen = new Array<number>(300).fill(0);
    for (const w of ws) for (let j = w.scoreFrom; j < w.length; j++) seen[w.start + j]++;
    for (let i = 0; i < 300; i++) expect(seen[i]).toBe(i % 64 === 0 && i < 256 ? 0 : 1);
  });
});

describe('perplexity', () => {
  it('equals exp(mean NLL) recomputed from model.logits on the same windows', async () => {
    const tokens = model.tokenize(TEXT);
    const context = 64;
    const stride = 32;
    expect(tokens.length).toBeGreaterThan(3 * context);
    const progress: number[] = [];
    const r = await perplexity(model, TEXT, { context, stride, onProgress: (p) => progress.push(p.fraction) });

    // windows as documented: starts 0, stride, ... while they fit; then one ending at the last token
    const V = model.info().vocabSize;
    const nlls: number[] = [];
    let s = 0;
    let scoredTo = 0;
    const score = async (start: number, from: number) => {
      const ids = tokens.slice(start, start + context);
      const logits = await model.logits(ids);
      for (let j = from; j < context; j++) nlls.push(-logProbs(logits, j - 1, V)[ids[j]]);
      scoredTo = start + context;
    };
    for (; s + context <= tokens.length; s += stride) await score(s, context - stride);
    if (scoredTo < tokens.length) await score(tokens.length - context, scoredTo - (tokens.length - context));
    const mean = nlls.reduce((a, b) => a + b, 0) / nlls.length;
    const sd = Math.sqrt(nlls.reduce((a, b) => a + (b - mean) ** 2, 0) / nlls.length);

    expect(r.tokens).toBe(nlls.length);
    expect(r.tokens).toBe(tokens.length - (context - stride));
    expect(r.nll).toBeCloseTo(mean, 10);
    expect(r.perplexity).toBeCloseTo(Math.exp(mean), 6);
    expect(r.stderr).toBeCloseTo(sd / Math.sqrt(nlls.length - 1), 10);
    expect(r.perplexityStderr).toBeCloseTo(r.perplexity * r.stderr, 8);
    expect(r.chunks).toBe(progress.length);
    expect(progress[progress.length - 1]).toBe(1);
    expect(r.perplexity).toBeGreaterThan(1);
  });

  it('accepts token ids, stride = context, texts shorter than the context and maxChunks', async () => {
    const tokens = model.tokenize(TEXT);
    const a = await perplexity(model, TEXT, { context: 64, stride: 64 });
    const b = await perplexity(model, tokens, { context: 64, stride: 64 });
    expect(b).toEqual(a);
    expect(a.tokens).toBe(tokens.length - Math.floor(tokens.length / 64)); // all but the first token of each full window
    const short = await perplexity(model, tokens.slice(0, 20), { context: 64 });
    expect(short.chunks).toBe(1);
    expect(short.tokens).toBe(10); // the last half of the one window
    const two = await perplexity(model, [1, 2], { context: 64 });
    expect(two.tokens).toBe(1);
    expect(Number.isNaN(two.stderr)).toBe(true);
    const limited = await perplexity(model, TEXT, { context: 64, maxChunks: 2 });
    expect(limited.chunks).toBe(2);
    expect(limited.tokens).toBe(64);
  });

  it('typed errors: empty text, one token, bad context / stride, window larger than the KV cache, abort, missing file', async () => {
    expect(await codeOf(perplexity(model, ''))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, [5]))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, 'a'))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 1 }))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 2.5 }))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 64, stride: 0 }))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 64, stride: 65 }))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 64, maxChunks: 0 }))).toBe('E_ARGUMENT');
    expect(await codeOf(perplexity(model, TEXT, { context: 200 }))).toBe('E_CONTEXT_OVERFLOW');
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(perplexity(model, TEXT, { context: 64, signal: ac.signal }))).toBe('E_ABORTED');
    const ac2 = new AbortController();
    const p = perplexity(model, TEXT, { context: 32, onProgress: (q) => { if (q.done === 2) ac2.abort(); }, signal: ac2.signal });
    expect(await codeOf(p)).toBe('E_ABORTED');
    expect(await codeOf(() => readTextFile(path.join(tmp, 'missing.txt')))).toBe('E_IO');
    // the model still works after an aborted evaluation
    expect((await perplexity(model, TEXT, { context: 64 })).tokens).toBeGreaterThan(0);
  });
});

describe('compareModels', () => {
  it('a model against itself: KL 0, same top-1 everywhere, both perplexities = perplexity()', async () => {
    const r = await compareModels(model, model, TEXT, { context: 64 });
    const p = await perplexity(model, TEXT, { context: 64 });
    expect(r.meanKL).toBe(0);
    expect(r.p99KL).toBe(0);
    expect(r.maxKL).toBe(0);
    expect(r.sameTop1).toBe(1);
    expect(r.tokens).toBe(p.tokens);
    expect(r.perplexityBase).toBeCloseTo(p.perplexity, 8);
    expect(r.perplexityOther).toBeCloseTo(p.perplexity, 8);
  });

  it('against a different random model: KL > 0, matching an independent computation', async () => {
    const r = await compareModels(model, other, TEXT, { context: 64, stride: 32 });
    expect(r.meanKL).toBeGreaterThan(0);
    expect(r.p99KL).toBeGreaterThanOrEqual(r.medianKL);
    expect(r.maxKL).toBeGreaterThanOrEqual(r.p99KL);
    expect(r.sameTop1).toBeLessThan(1);
    expect(r.perplexityOther).toBeCloseTo((await perplexity(other, TEXT, { context: 64, stride: 32 })).perplexity, 6);

    // independent: the same windows, KL(P_base ‖ P_other) per scored position
    const tokens = model.tokenize(TEXT);
    const V = model.info().vocabSize;
    const kls: number[] = [];
    let same = 0;
    for (const w of planWindows(tokens.length, 64, 32)) {
      const ids = tokens.slice(w.start, w.start + w.length);
      const [la, lb] = [await model.logits(ids), await other.logits(ids)];
      for (let j = w.scoreFrom; j < w.length; j++) {
        const p = logProbs(la, j - 1, V);
        const q = logProbs(lb, j - 1, V);
        kls.push(p.reduce((a, lp, v) => a + Math.exp(lp) * (lp - q[v]), 0));
        if (p.indexOf(Math.max(...p)) === q.indexOf(Math.max(...q))) same++;
      }
    }
    expect(r.tokens).toBe(kls.length);
    expect(r.meanKL).toBeCloseTo(kls.reduce((a, b) => a + b, 0) / kls.length, 9);
    expect(r.sameTop1).toBeCloseTo(same / kls.length, 12);
    expect(r.p99KL).toBeCloseTo(quantile(Float64Array.from(kls).sort(), 0.99), 9);
  });

  it('models with different vocabularies: E_ARGUMENT', async () => {
    const dir = path.join(tmp, 'c');
    await writeRandomHFModel(dir, { arch: 'qwen2_moe', seed: 5, layers: 1, hidden: 32, vocabSize: 400, contextLength: 128 });
    const c = await loadModel(dir, { threads: 1, contextSize: 64, parallel: 1 });
    try {
      expect(await codeOf(compareModels(model, c, TEXT, { context: 32 }))).toBe('E_ARGUMENT');
    } finally {
      await c.dispose();
    }
  });

  it('quantile interpolates between order statistics', () => {
    const v = Float64Array.from([0, 1, 2, 3, 4]);
    expect(quantile(v, 0.5)).toBe(2);
    expect(quantile(v, 0.99)).toBeCloseTo(3.96, 12);
    expect(quantile(v, 1)).toBe(4);
  });
});
