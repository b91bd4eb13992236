// Sampler: each option against its definition, on synthetic logits.
import { QuantMoeError } from '../../lib/errors';
import { Sampler, argmax, makeRng } from '../../lib/runtime/sampler';
import { Rng, testSeed } from '../helpers/random';

const seed = testSeed();
const rng = new Rng(seed);
const logits = Float32Array.from({ length: 50 }, () => rng.normal() * 3);
const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);

function draws(s: Sampler, n: number, history: number[] = []): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(logits, history);
    m.set(t, (m.get(t) ?? 0) + 1);
  }
  return m;
}

describe(`Sampler (seed ${seed})`, () => {
  it('greedy = argmax, ties to the lower id, NaN never wins', () => {
    expect(new Sampler({ temperature: 0 }).sample(logits, [])).toBe(order[0]);
    expect(argmax(Float32Array.from([1, 3, 3, NaN]))).toBe(1);
  });

  it('top-k keeps exactly the k best tokens', () => {
    const seen = draws(new Sampler({ temperature: 5, topK: 3, seed: 1 }), 3000);
    expect([...seen.keys()].sort()).toEqual(order.slice(0, 3).sort());
  });

  it('top-p keeps the smallest prefix reaching mass p (at temperature 1)', () => {
    const m = Math.max(...logits);
    const p = Array.from(logits, (v) => Math.exp(v - m));
    const z = p.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = 0;
    while (cum < 0.7) cum += p[order[keep++]] / z;
    const seen = draws(new Sampler({ temperature: 1, topP: 0.7, seed: 2 }), 4000);
    expect([...seen.keys()].every((t) => order.slice(0, keep).includes(t))).toBe(true);
  });

  it('min-p drops tokens below minP times the best probability; minP=1 is greedy', () => {
    const seen = draws(new Sampler({ temperature: 1, minP: 0.2, seed: 3 }), 3000);
    const m = Math.max(...logits);
    for (const t of seen.keys()) expect(Math.exp(logits[t] - m)).toBeGreaterThanOrEqual(0.2 - 1e-6);
    expect([...draws(new Sampler({ temperature: 1, minP: 1, seed: 3 }), 50).keys()]).toEqual([order[0]]);
  });

  it('temperature sampling follows softmax(logits / T) (chi-square-ish check on the top tokens)', () => {
    const T = 1.3;
    const n = 20000;
    const seen = draws(new Sampler({ temperature: T, seed: 4 }), n);
    const m = Math.max(...logits);
    const w = Array.from(logits, (v) => Math.exp((v - m) / T));
    const z = w.reduce((a, b) => a + b, 0);
    for (const t of order.slice(0, 3)) {
      const expected = (w[t] / z) * n;
      expect(Math.abs((seen.get(t) ?? 0) - expected)).toBeLessThan(5 * Math.sqrt(expected) + 5);
    }
  });

  it('repetition, frequency and presence penalties move the greedy choice off repeated tokens', () => {
    const best = order[0];
    const history = [best, best, best];
    const gap = logits[best] - logits[order[1]];
    expect(new Sampler({ temperature: 0, presencePenalty: gap + 0.01 }).sample(logits, history)).toBe(order[1]);
    expect(new Sampler({ temperature: 0, frequencyPenalty: gap / 3 + 0.01 }).sample(logits, history)).toBe(order[1]);
    expect(new Sampler({ temperature: 0, frequencyPenalty: gap / 3 - 0.01 }).sample(logits, history)).toBe(best);
    const big = new Sampler({ temperature: 0, repeatPenalty: 1e6 }).sample(logits, history);
    expect(big).not.toBe(best);
    // tokens outside the penalty window are not penalised
    expect(new Sampler({ temperature: 0, presencePenalty: 1e3, penaltyLastN: 1 }).sample(logits, [best, order[5]])).toBe(best);
  });

  it('same seed, same draws; the PRNG is uniform-ish', () => {
    const a = Array.from({ length: 20 }, () => 0).map(((s) => () => s.sample(logits, []))(new Sampler({ temperature: 2, seed: 9 })));
    const b = Array.from({ length: 20 }, () => 0).map(((s) => () => s.sample(logits, []))(new Sampler({ temperature: 2, seed: 9 })));
    expect(a).toEqual(b);
    const r = makeRng(123);
    let sum = 0;
    for (let i = 0; i < 10000; i++) sum += r();
    expect(Math.abs(sum / 10000 - 0.5)).toBeLessThan(0.02);
  });

  it('rejects invalid options', () => {
    for (const o of [{ temperature: -1 }, { topK: 1.5 }, { topP: 0 }, { minP: 2 }, { repeatPenalty: 0 }, { seed: 0.5 }, { frequencyPenalty: NaN }]) {
      expect(() => new Sampler(o)).toThrow(QuantMoeError);
    }
  });
});
