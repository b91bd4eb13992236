// `quantmoe bench`: load time, prefill and decode speed of one model on this machine, medians of
// several runs (bench/e2e.ts compares against llama.cpp; this is the quick single-engine check).
import { loadModel } from '../runtime/model';

export interface BenchOptions {
  model: string;
  threads?: number;
  weights?: 'mapped' | 'memory';
  prompt: number;
  decode: number;
  batch: number;
  runs: number;
}

export interface BenchResult {
  loadSeconds: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  batchDecodeTokensPerSecond: number;
  batch: number;
  peakRssBytes: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchModel(o: BenchOptions): Promise<BenchResult> {
  const t0 = performance.now();
  const model = await loadModel(o.model, { threads: o.threads, weights: o.weights, contextSize: o.prompt + o.decode + 8, parallel: Math.max(1, o.batch) });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const V = model.info().vocabSize;
    const prompt = Array.from({ length: o.prompt }, (_, i) => (i * 7919 + 13) % V);
    const prefill: number[] = [];
    const decode: number[] = [];
    const batch: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      let t = performance.now();
      await model.logits(prompt);
      prefill.push(o.prompt / ((performance.now() - t) / 1000));
      // decode speed: time of (prompt of 1 + n tokens) minus nothing; one-token prompt keeps prefill out
      t = performance.now();
      await model.complete([prompt[0]], { maxTokens: o.decode, temperature: 0, ignoreEos: true });
      decode.push(o.decode / ((performance.now() - t) / 1000));
      if (o.batch > 1) {
        t = performance.now();
        await Promise.all(Array.from({ length: o.batch }, (_, i) => model.complete([prompt[i % prompt.length]], { maxTokens: o.decode, temperature: 0, ignoreEos: true })));
        batch.push((o.batch * o.decode) / ((performance.now() - t) / 1000));
      }
    }
    return {
      loadSeconds,
      prefillTokensPerSecond: median(prefill),
      decodeTokensPerSecond: median(decode),
      batchDecodeTokensPerSecond: batch.length ? median(batch) : 0,
      batch: o.batch,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await model.dispose();
  }
}
