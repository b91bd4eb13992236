// The engine: owns the weights, the KV cache and the scheduler, and runs in a worker thread so
// loading, prefill and decode never block the caller's event loop. Each scheduler step either
// prefills one chunk of one waiting prompt or decodes one token for every running sequence as a
// single batch (continuous batching: new requests join between steps).
import { QuantMoeError } from '../errors';
import { native } from '../native';
import type { KvCache } from '../native-ops/attention';
import { Forward } from './forward';
import type { EngineOptions, FinishReason, FromWorker, ModelInfoCore, SubmitRequest } from './protocol';
import { Sampler } from './sampler';
import { fileDType, loadWeights } from './weights';
import type { LoadedWeights } from './weights';

interface Sequence {
  id: number;
  slot: number;
  history: number[];
  /** Tokens already in the KV cache. */
  pos: number;
  /** Prompt tokens not yet prefilled. */
  pending: number[];
  promptTokens: number;
  generated: number;
  maxTokens: number;
  sampler?: Sampler;
  stop: Set<number>;
  /** logits requests: prefill only, return every row, then free the slot. */
  logitsOnly: boolean;
  logitRows?: Float32Array[];
}

export class Engine {
  private loaded?: LoadedWeights;
  private forward?: Forward;
  private cache?: KvCache;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private freeSlots: number[] = [];
  private counts: Int32Array[] = [];
  private opts!: EngineOptions;

  constructor(private readonly emit: (m: FromWorker, transfer?: ArrayBuffer[]) => void) {}

  async load(path: string, opts: EngineOptions): Promise<ModelInfoCore> {
    this.opts = opts;
    const loaded = await loadWeights(path, (f) => this.emit({ t: 'progress', fraction: f }), { placement: opts.weights });
    try {
      const s = loaded.spec;
      const contextSize = Math.min(opts.contextSize, s.contextLength > 0 ? s.contextLength : opts.contextSize);
      this.cache = native().kvCacheCreate({
        layers: s.layers, maxSeqs: opts.parallel, capacity: contextSize, kvHeads: s.kvHeads, headDim: s.headDim, dtype: opts.kvType,
      });
      this.opts = { ...opts, contextSize };
      this.forward = new Forward(s, loaded.weights, this.cache, opts.threads);
      this.freeSlots = Array.from({ length: opts.parallel }, (_, i) => opts.parallel - 1 - i);
      this.counts = s.ffnKinds.map(() => new Int32Array(s.moe?.experts ?? 0));
      this.loaded = loaded;
      const tensorTypes: Record<string, string> = {};
      for (const [name, t] of loaded.weights.entries()) tensorTypes[name] = fileDType(t.dtype);
      return {
        spec: s, tensorTypes, weightBytes: loaded.weights.totalBytes, fileBytes: loaded.weights.mappedBytes,
        contextSize, parallel: opts.parallel, threads: opts.threads,
      };
    } catch (e) {
      loaded.weights.dispose();
      throw e;
    }
  }

  get busy(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  submit(r: SubmitRequest): void {
    if (r.requireRoom && r.tokens.length + r.maxTokens > this.opts.contextSize) {
      throw new QuantMoeError('E_CONTEXT_OVERFLOW',
        `the prompt has ${r.tokens.length} tokens and up to ${r.maxTokens} more were asked for, but the context holds ` +
        `${this.opts.contextSize}; lower max_tokens to at most ${Math.max(0, this.opts.contextSize - r.tokens.length)} or shorten the prompt`);
    }
    this.enqueue(r.id, r.tokens, false, r.maxTokens, new Sampler(r.sampling), new Set(r.stopTokens));
  }

  submitLogits(id: number, tokens: number[]): void {
    this.enqueue(id, tokens, true, 0, undefined, new Set());
  }

  private enqueue(id: number, tokens: number[], logitsOnly: boolean, maxTokens: number, sampler: Sampler | undefined, stop: Set<number>): void {
    const s = this.spec();
    if (tokens.length === 0) throw new QuantMoeError('E_ARGUMENT', 'the prompt has no tokens');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= s.vocabSize) {
        throw new QuantMoeError('E_TOKEN_RANGE', `token id ${t} is outside the vocabulary [0, ${s.vocabSize})`);
      }
    }
    if (tokens.length > this.opts.contextSize) {
      throw new QuantMoeError('E_CONTEXT_OVERFLOW',
        `the prompt has ${tokens.length} tokens but the context holds ${this.opts.contextSize}; load the model with a larger contextSize or shorten the prompt`);
    }
    this.waiting.push({
      id, slot: -1, history: [...tokens], pos: 0, pending: [...tokens], promptTokens: tokens.length, generated: 0,
      maxTokens, sampler, stop, logitsOnly, logitRows: logitsOnly ? [] : undefined,
    });
  }

  abort(id: number): void {
    const w = this.waiting.findIndex((s) => s.id === id);
    if (w >= 0) {
      const [s] = this.waiting.splice(w, 1);
      this.finish(s, 'aborted');
      return;
    }
    const r = this.running.find((s) => s.id === id);
    if (r) this.finish(r, 'aborted');
  }

  stats(reset: boolean): number[][] {
    const out = this.counts.map((c) => Array.from(c));
    if (reset) for (const c of this.counts) c.fill(0);
    return out;
  }

  /** One scheduler step. Returns false when there was nothing to do. */
  step(): boolean {
    // admit waiting sequences into free KV slots
    while (this.waiting.length && this.freeSlots.length) {
      const s = this.waiting.shift()!;
      // No clearing: attention only reads positions below the sequence's own length.
      s.slot = this.freeSlots.pop()!;
      this.running.push(s);
    }
    const prefilling = this.running.find((s) => s.pending.length > 0);
    const decoding = this.running.filter((s) => s.pending.length === 0);
    if (!prefilling && decoding.length === 0) return false;
    // alternate: a prefill chunk, then a decode step, so running sequences never stall long
    if (prefilling) this.prefillChunk(prefilling);
    const ready = this.running.filter((s) => s.pending.length === 0 && decoding.includes(s));
    if (ready.length) this.decodeBatch(ready);
    return true;
  }

  private prefillChunk(s: Sequence): void {
    const n = Math.min(this.opts.prefillChunk, s.pending.length);
    const chunk = s.pending.splice(0, n);
    try {
      const logits = this.forward!.step(
        { kind: 'prefill', seq: s.slot, tokens: Int32Array.from(chunk), startPos: s.pos },
        { logits: s.logitsOnly ? 'all' : 'last', expertCounts: this.counts },
      );
      s.pos += n;
      if (s.logitsOnly) {
        s.logitRows!.push(logits);
        if (s.pending.length === 0) this.finishLogits(s);
        return;
      }
      if (s.pending.length === 0) this.accept(s, logits);
    } catch (e) {
      this.fail(s, e);
    }
  }

  private decodeBatch(batch: Sequence[]): void {
    const V = this.spec().vocabSize;
    try {
      const logits = this.forward!.step(
        {
          kind: 'decode',
          seqs: Int32Array.from(batch, (s) => s.slot),
          tokens: Int32Array.from(batch, (s) => s.history[s.history.length - 1]),
          positions: Int32Array.from(batch, (s) => s.pos),
        },
        { logits: 'all', expertCounts: this.counts },
      );
      batch.forEach((s, i) => {
        s.pos += 1;
        this.accept(s, logits.subarray(i * V, (i + 1) * V));
      });
    } catch (e) {
      for (const s of batch) this.fail(s, e);
    }
  }

  // A sequence got logits for its next position: sample, emit, decide whether it continues.
  private accept(s: Sequence, logits: Float32Array): void {
    const token = s.sampler!.sample(logits, s.history);
    s.history.push(token);
    s.generated += 1;
    this.emit({ t: 'tokens', items: [[s.id, token]] });
    if (s.stop.has(token)) this.finish(s, 'stop');
    else if (s.generated >= s.maxTokens) this.finish(s, 'length');
    else if (s.pos + 1 > this.opts.contextSize) this.finish(s, 'length');
  }

  private finishLogits(s: Sequence): void {
    const total = s.logitRows!.reduce((a, r) => a + r.length, 0);
    const data = new Float32Array(total);
    let o = 0;
    for (const r of s.logitRows!) {
      data.set(r, o);
      o += r.length;
    }
    this.release(s);
    this.emit({ t: 'logits', id: s.id, data }, [data.buffer]);
  }

  private finish(s: Sequence, reason: FinishReason): void {
    this.release(s);
    this.emit({ t: 'done', id: s.id, reason, promptTokens: s.promptTokens, completionTokens: s.generated });
  }

  private fail(s: Sequence, e: unknown): void {
    this.release(s);
    const err = e as { code?: string; message?: string };
    this.emit({ t: 'error', id: s.id, code: err.code ?? 'E_INTERNAL', message: err.message ?? String(e) });
  }

  // Frees the sequence's KV slot (aborted and failed generations too).
  private release(s: Sequence): void {
    const i = this.running.indexOf(s);
    if (i >= 0) this.running.splice(i, 1);
    if (s.slot >= 0) {
      // the slot's KV pages go back to the system (a finished long request keeps no memory)
      if (this.cache && !this.cache.disposed) native().kvCacheClear(this.cache, s.slot);
      this.freeSlots.push(s.slot);
      s.slot = -1;
    }
  }

  private spec() {
    if (!this.loaded) throw new QuantMoeError('E_DISPOSED', 'the model is not loaded');
    return this.loaded.spec;
  }

  dispose(): void {
    for (const s of [...this.waiting, ...this.running]) this.finish(s, 'aborted');
    this.waiting.length = 0;
    this.cache?.dispose();
    this.loaded?.weights.dispose();
    this.loaded = undefined;
    this.forward = undefined;
  }
}
