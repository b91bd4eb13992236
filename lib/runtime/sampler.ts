// Token sampling, in llama.cpp's default order: penalties → top-k → top-p → min-p → temperature
// → draw. Deterministic for a given seed (own PRNG per sequence, never Math.random).
import { QuantMoeError } from '../errors';

export interface SamplingOptions {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** Divides positive / multiplies negative logits of recently seen tokens (llama.cpp repeat_penalty). */
  repeatPenalty?: number;
  /** How many recent tokens the penalties look at. Default 64. */
  penaltyLastN?: number;
  /** logit −= frequencyPenalty · count (OpenAI semantics). */
  frequencyPenalty?: number;
  /** logit −= presencePenalty when the token appeared at all. */
  presencePenalty?: number;
  seed?: number;
}

/** xorshift128+ seeded by splitmix64-like mixing of a 32-bit seed; returns floats in [0, 1). */
export function makeRng(seed: number): () => number {
  let s0 = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let s1 = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 2;
  let s2 = (Math.imul(seed ^ 0x27d4eb2f, 0x165667b1)) >>> 0 || 3;
  let s3 = (seed + 0x6a09e667) >>> 0 || 4;
  return () => {
    // xoshiro128** (Blackman & Vigna)
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
    s0 >>>= 0; s1 >>>= 0; s2 >>>= 0; s3 >>>= 0;
    return r / 4294967296;
  };
}
const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

export function validateSampling(o: SamplingOptions): void {
  const check = (name: keyof SamplingOptions, ok: (v: number) => boolean, what: string) => {
    const v = o[name];
    if (v !== undefined && (typeof v !== 'number' || !ok(v))) {
      throw new QuantMoeError('E_ARGUMENT', `sampling option '${name}' must be ${what}, got ${String(v)}`);
    }
  };
  check('temperature', (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0');
  check('topK', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('topP', (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('minP', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  check('repeatPenalty', (v) => v > 0 && Number.isFinite(v), 'a positive number');
  check('penaltyLastN', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('frequencyPenalty', (v) => Number.isFinite(v), 'a finite number');
  check('presencePenalty', (v) => Number.isFinite(v), 'a finite number');
  check('seed', (v) => Number.isInteger(v), 'an integer');
}

/** Index of the largest logit; ties go to the lower token id; NaN never wins. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bv || (best < 0 && v === bv)) {
      bv = v;
      best = i;
    }
  }
  return best < 0 ? 0 : best;
}

export class Sampler {
  private readonly rng: () => number;
  private readonly o: Required<Omit<SamplingOptions, 'seed'>>;

  constructor(options: SamplingOptions = {}) {
    validateSampling(options);
    this.o = {
      temperature: options.temperature ?? 0.8,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
      minP: options.minP ?? 0,
      repeatPenalty: options.repeatPenalty ?? 1,
      penaltyLastN: options.penaltyLastN ?? 64,
      frequencyPenalty: options.frequencyPenalty ?? 0,
      presencePenalty: options.presencePenalty ?? 0,
    };
    this.rng = makeRng(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  /** Picks the next token. `history` holds the sequence so far (prompt + generated). */
  sample(logitsIn: Float32Array, history: ArrayLike<number>): number {
    const o = this.o;
    const logits = this.applyPenalties(logitsIn, history);
    if (o.temperature === 0) return argmax(logits);
    // Candidates sorted by logit, descending (ties: lower id first). Tokens more than
    // 30·max(1, T) below the best logit carry < e^-30 of its probability at any stage of the chain
    // (≈1e-8 in total for a 150k vocabulary), so they are dropped before sorting: decode then
    // sorts hundreds of candidates, not the whole vocabulary.
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
    const floor = max - 30 * Math.max(1, o.temperature);
    let ids: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] >= floor) ids.push(i);
    if (ids.length === 0) return 0;
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    if (o.topK > 0 && o.topK < ids.length) ids = ids.slice(0, o.topK);
    // probabilities at temperature 1 for top-p / min-p, as llama.cpp computes them
    const probs = softmaxOf(ids, logits, 1);
    if (o.topP < 1) {
      let cum = 0;
      let keep = ids.length;
      for (let i = 0; i < ids.length; i++) {
        cum += probs[i];
        if (cum >= o.topP) {
          keep = i + 1;
          break;
        }
      }
      ids = ids.slice(0, keep);
    }
    if (o.minP > 0) {
      const p = softmaxOf(ids, logits, 1);
      const cut = p[0] * o.minP;
      let keep = 1;
      while (keep < ids.length && p[keep] >= cut) keep++;
      ids = ids.slice(0, keep);
    }
    const p = softmaxOf(ids, logits, o.temperature);
    let r = this.rng();
    for (let i = 0; i < ids.length; i++) {
      r -= p[i];
      if (r < 0) return ids[i];
    }
    return ids[ids.length - 1];
  }

  private applyPenalties(logits: Float32Array, history: ArrayLike<number>): Float32Array {
    const o = this.o;
    if (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0) return logits;
    const out = Float32Array.from(logits);
    const counts = new Map<number, number>();
    const start = Math.max(0, history.length - o.penaltyLastN);
    for (let i = start; i < history.length; i++) counts.set(history[i], (counts.get(history[i]) ?? 0) + 1);
    for (const [id, c] of counts) {
      if (id < 0 || id >= out.length) continue;
      let v = out[id];
      if (o.repeatPenalty !== 1) v = v > 0 ? v / o.repeatPenalty : v * o.repeatPenalty;
      v -= c * o.frequencyPenalty + (c > 0 ? o.presencePenalty : 0);
      out[id] = v;
    }
    return out;
  }
}

function softmaxOf(ids: number[], logits: Float32Array, temperature: number): Float64Array {
  const p = new Float64Array(ids.length);
  const m = logits[ids[0]];
  let sum = 0;
  for (let i = 0; i < ids.length; i++) {
    p[i] = Math.exp((logits[ids[i]] - m) / temperature);
    sum += p[i];
  }
  for (let i = 0; i < ids.length; i++) p[i] /= sum;
  return p;
}
