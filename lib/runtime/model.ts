// The public Model: lives on the caller's thread, owns the tokenizer, and talks to the engine in
// a worker thread. Every long operation is a Promise or an async iterator and accepts an
// AbortSignal; the caller's event loop never blocks on inference.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';

import { QuantMoeError, abortError } from '../errors';
import type { ErrorCode } from '../errors';
import { parameterCounts } from '../models/spec';
import type { ModelSpec } from '../models/spec';
import { resolveDevice } from '../native';
import type { FinishReason, FromWorker, ModelInfoCore, ToWorker } from './protocol';
import { validateSampling } from './sampler';
import type { SamplingOptions } from './sampler';
import { Tokenizer } from './tokenizer';
import type { ChatMessage } from './tokenizer';

export interface LoadOptions {
  device?: 'auto' | 'cpu' | 'cuda';
  /** CPU threads for inference (default: all cores). */
  threads?: number;
  /** Tokens per sequence in the KV cache (default: min(model context, 4096)); memory is committed as it is used. */
  contextSize?: number;
  /** Sequences decoded together at most (default 4). */
  parallel?: number;
  /** KV cache precision (default 'f16', as llama.cpp). */
  kvCacheType?: 'f32' | 'f16';
  /**
   * Where the weights live. 'memory' (default): a copy in transparent huge pages, read from the file
   * by all threads at load (about 0.5-1.5 s per 4 GB from the page cache); decode reads 2 MB pages
   * 15-30 % faster than the file's 4 KB pages. 'mapped': the file's page-cache pages themselves
   * (instant load, shared between processes that map the same file, slower decode).
   * Resident memory is about the file size either way.
   */
  weights?: 'mapped' | 'memory';
  onProgress?: (p: { phase: 'load'; fraction: number }) => void;
  signal?: AbortSignal;
}

export interface GenerateOptions extends SamplingOptions {
  /** Default 256. */
  maxTokens?: number;
  /**
   * Reject (E_CONTEXT_OVERFLOW, before any token) a request whose prompt plus maxTokens does not fit
   * the context, as the OpenAI API does; by default generation just stops there with 'length'.
   */
  requireRoom?: boolean;
  stop?: string[];
  /** Keep going past end-of-sequence tokens. */
  ignoreEos?: boolean;
  signal?: AbortSignal;
}

export interface GeneratedPiece {
  text: string;
  token: number;
}

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}

export interface ModelInfo {
  architecture: string;
  source: 'gguf' | 'hf';
  path: string;
  vocabSize: number;
  contextSize: number;
  trainedContextLength: number;
  layers: number;
  hidden: number;
  experts: number;
  expertsPerToken: number;
  parameters: { total: number; active: number };
  bytes: number;
  bitsPerWeight: number;
  tensorTypes: Record<string, string>;
  spec: ModelSpec;
}

interface Pending {
  onToken?: (token: number) => void;
  onDone?: (reason: FinishReason, promptTokens: number, completionTokens: number) => void;
  onError: (e: QuantMoeError) => void;
  onLogits?: (data: Float32Array) => void;
  onStats?: (counts: number[][]) => void;
}

function workerPath(): string {
  for (const p of [path.join(__dirname, 'engine-worker.js'), path.join(__dirname, '..', '..', 'dist', 'lib', 'runtime', 'engine-worker.js')]) {
    if (fs.existsSync(p)) return p;
  }
  throw new QuantMoeError('E_LOAD', `engine-worker.js not found next to ${__dirname}; run \`npm run build:ts\``);
}

const toError = (code: string, message: string) => new QuantMoeError(code as ErrorCode, message);

export class Model {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;
  private disposing?: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    private readonly core: ModelInfoCore,
    readonly tokenizer: Tokenizer,
    readonly path: string,
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.failAll(new QuantMoeError('E_INTERNAL', `engine worker failed: ${e.message}`)));
  }

  static async load(modelPath: string, options: LoadOptions = {}): Promise<Model> {
    const device = resolveDevice(options.device ?? 'auto');
    if (device === 'cuda') {
      throw new QuantMoeError('E_NOT_IMPLEMENTED', "device 'cuda' is not implemented for whole models yet; use device: 'cpu' or 'auto'");
    }
    if (options.signal?.aborted) throw abortError('loading');
    const threads = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new QuantMoeError('E_ARGUMENT', `threads must be a positive integer, got ${threads}`);
    const parallel = options.parallel ?? 4;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256) throw new QuantMoeError('E_ARGUMENT', `parallel must be an integer in [1, 256], got ${parallel}`);
    const contextSize = options.contextSize ?? 4096;
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new QuantMoeError('E_ARGUMENT', `contextSize must be a positive integer, got ${contextSize}`);
    const weights = options.weights ?? 'memory';
    if (weights !== 'mapped' && weights !== 'memory') throw new QuantMoeError('E_ARGUMENT', `weights must be 'mapped' or 'memory', got ${String(weights)}`);
    const resolved = path.resolve(modelPath);
    const tokenizer = fs.existsSync(resolved) && fs.statSync(resolved).isDirectory()
      ? await Tokenizer.fromHFFolder(resolved)
      : await Tokenizer.fromGGUF(resolved);
    const worker = new Worker(workerPath());
    const msg: ToWorker = {
      t: 'load', path: resolved,
      options: { threads, contextSize, parallel, prefillChunk: 256, kvType: options.kvCacheType ?? 'f16', weights },
    };
    const core = await new Promise<ModelInfoCore>((resolve, reject) => {
      const onAbort = () => {
        void worker.terminate();
        reject(abortError('loading'));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const onMsg = (m: FromWorker) => {
        if (m.t === 'progress') options.onProgress?.({ phase: 'load', fraction: m.fraction });
        else if (m.t === 'loaded' || m.t === 'load-error') {
          worker.off('message', onMsg);
          options.signal?.removeEventListener('abort', onAbort);
          if (m.t === 'loaded') resolve(m.info);
          else {
            void worker.terminate();
            reject(toError(m.code, m.message));
          }
        }
      };
      worker.on('message', onMsg);
      worker.once('error', (e) => reject(new QuantMoeError('E_LOAD', `engine worker failed to start: ${e.message}`)));
      worker.postMessage(msg);
    });
    tokenizer.padToModelVocab(core.spec.vocabSize);
    return new Model(worker, core, tokenizer, resolved);
  }

  // ---- text <-> tokens ----
  tokenize(text: string, options: { addBos?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { addBos: options.addBos });
  }

  detokenize(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  info(): ModelInfo {
    const s = this.core.spec;
    const p = parameterCounts(s);
    return {
      architecture: s.arch, source: s.source, path: this.path, vocabSize: s.vocabSize, contextSize: this.core.contextSize,
      trainedContextLength: s.contextLength, layers: s.layers, hidden: s.hidden, experts: s.moe?.experts ?? 0,
      expertsPerToken: s.moe?.topk ?? 0, parameters: p, bytes: this.core.weightBytes,
      bitsPerWeight: (this.core.weightBytes * 8) / Math.max(1, p.total), tensorTypes: { ...this.core.tensorTypes }, spec: s,
    };
  }

  // ---- generation ----
  /** Streams generated pieces; text pieces never split a UTF-8 character. */
  async *generate(prompt: string | number[], options: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, Completion> {
    this.checkAlive();
    const tokens = typeof prompt === 'string' ? this.tokenize(prompt) : prompt;
    return yield* this.run(tokens, options);
  }

  /** Applies the model's chat template, then streams like generate(). */
  async *chat(messages: ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, Completion> {
    this.checkAlive();
    const text = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    // Templates often write BOS themselves: add one only where the model wants it and it is missing.
    const bos = this.tokenizer.bosId !== undefined ? this.tokenizer.tokenText(this.tokenizer.bosId) : undefined;
    const tokens = this.tokenizer.encode(text, { addBos: this.tokenizer.addBosDefault && bos !== undefined && !text.startsWith(bos) });
    return yield* this.run(tokens, options);
  }

  async complete(prompt: string | number[], options: GenerateOptions = {}): Promise<Completion> {
    const it = this.generate(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Next-token logits after each prefix of `tokens` ([tokens.length × vocab], row-major). Stateless. */
  async logits(tokens: number[]): Promise<Float32Array> {
    this.checkAlive();
    const id = this.nextId++;
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, {
        onLogits: (d) => {
          this.pending.delete(id);
          resolve(d);
        },
        onError: (e) => {
          this.pending.delete(id);
          reject(e);
        },
      });
      this.post({ t: 'logits', id, tokens });
    });
  }

  /** Tokens routed to each expert in each layer since load (or the last reset). */
  async stats(options: { reset?: boolean } = {}): Promise<{ expertCounts: number[][] }> {
    this.checkAlive();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        onStats: (counts) => {
          this.pending.delete(id);
          resolve({ expertCounts: counts });
        },
        onError: reject,
      });
      this.post({ t: 'stats', id, reset: options.reset ?? false });
    });
  }

  async dispose(): Promise<void> {
    if (this.disposing) return this.disposing;
    this.disposed = true;
    this.disposing = (async () => {
      const done = new Promise<void>((resolve) => {
        const onMsg = (m: FromWorker) => {
          if (m.t === 'disposed') resolve();
        };
        this.worker.on('message', onMsg);
        setTimeout(resolve, 5000).unref();
      });
      this.worker.postMessage({ t: 'dispose' } satisfies ToWorker);
      await done;
      this.failAll(new QuantMoeError('E_DISPOSED', 'the model was disposed'));
      await this.worker.terminate();
    })();
    return this.disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  // ---- internals ----
  private async *run(tokens: number[], options: GenerateOptions): AsyncGenerator<GeneratedPiece, Completion> {
    validateSampling(options);
    const maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new QuantMoeError('E_ARGUMENT', `maxTokens must be a positive integer, got ${maxTokens}`);
    const stops = options.stop ?? [];
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new QuantMoeError('E_ARGUMENT', 'stop must be an array of non-empty strings');
    }
    const signal = options.signal;
    if (signal?.aborted) throw abortError('generation');
    const id = this.nextId++;
    // queue of events from the worker, pulled by this generator
    const queue: Array<{ token?: number; done?: [FinishReason, number, number]; error?: QuantMoeError }> = [];
    let wake: (() => void) | undefined;
    const push = (e: (typeof queue)[number]) => {
      queue.push(e);
      wake?.();
    };
    this.pending.set(id, {
      onToken: (token) => push({ token }),
      onDone: (r, p, c) => push({ done: [r, p, c] }),
      onError: (error) => push({ error }),
    });
    const onAbort = () => this.post({ t: 'abort', id });
    signal?.addEventListener('abort', onAbort, { once: true });
    this.post({
      t: 'submit', id, tokens, maxTokens, requireRoom: options.requireRoom === true,
      sampling: {
        temperature: options.temperature, topK: options.topK, topP: options.topP, minP: options.minP,
        repeatPenalty: options.repeatPenalty, frequencyPenalty: options.frequencyPenalty,
        presencePenalty: options.presencePenalty, seed: options.seed,
      },
      stopTokens: options.ignoreEos ? [] : [...this.tokenizer.stopIds],
    });
    const decoder = this.tokenizer.createDecoderStream();
    const generated: number[] = [];
    let text = '';
    let emitted = 0; // chars of `text` already yielded
    let finished = false;
    let reason: FinishReason = 'length';
    let usage = { promptTokens: tokens.length, completionTokens: 0, totalTokens: tokens.length };
    try {
      for (;;) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        const e = queue.shift()!;
        if (e.error) throw e.error;
        if (e.done) {
          finished = true;
          [reason] = e.done;
          usage = { promptTokens: e.done[1], completionTokens: e.done[2], totalTokens: e.done[1] + e.done[2] };
          if (reason === 'aborted') {
            throw this.disposed ? new QuantMoeError('E_DISPOSED', 'the model was disposed during generation') : abortError('generation');
          }
          const rest = text.slice(emitted) + decoder.flush();
          if (rest) yield { text: rest, token: generated[generated.length - 1] ?? -1 };
          text += rest.slice(text.length - emitted);
          break;
        }
        const token = e.token!;
        generated.push(token);
        const isStopToken = !options.ignoreEos && this.tokenizer.stopIds.includes(token);
        text += isStopToken ? '' : decoder.push(token);
        // stop strings: cut at the first match; hold back a tail that could start one
        const hit = firstStop(text, stops, emitted);
        if (hit >= 0) {
          text = text.slice(0, hit);
          if (text.length > emitted) yield { text: text.slice(emitted), token };
          emitted = text.length;
          reason = 'stop';
          this.post({ t: 'abort', id });
          usage = { promptTokens: tokens.length, completionTokens: generated.length, totalTokens: tokens.length + generated.length };
          finished = true;
          break;
        }
        // one piece per token: text the token completed, minus a tail that could start a stop string
        const safe = Math.max(emitted, text.length - holdBack(text, stops));
        yield { text: text.slice(emitted, safe), token };
        emitted = safe;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!finished) this.post({ t: 'abort', id }); // consumer stopped early, or an error
      this.pending.delete(id);
    }
    return { text: text.slice(0, Math.max(emitted, text.length)), tokens: generated, finishReason: reason, usage };
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'tokens':
        for (const [id, tok] of m.items) this.pending.get(id)?.onToken?.(tok);
        return;
      case 'done':
        this.pending.get(m.id)?.onDone?.(m.reason, m.promptTokens, m.completionTokens);
        return;
      case 'error':
        this.pending.get(m.id)?.onError(toError(m.code, m.message));
        return;
      case 'logits':
        this.pending.get(m.id)?.onLogits?.(m.data);
        return;
      case 'stats':
        this.pending.get(m.id)?.onStats?.(m.counts);
        return;
      default:
    }
  }

  private failAll(e: QuantMoeError): void {
    for (const p of [...this.pending.values()]) p.onError(e);
    this.pending.clear();
  }

  private post(m: ToWorker): void {
    if (this.disposed && m.t !== 'abort') throw new QuantMoeError('E_DISPOSED', 'the model was disposed');
    this.worker.postMessage(m);
  }

  private checkAlive(): void {
    if (this.disposed) throw new QuantMoeError('E_DISPOSED', 'the model was disposed');
  }
}

function firstStop(text: string, stops: string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of text that is a proper prefix of a stop string. */
function holdBack(text: string, stops: string[]): number {
  let n = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > n; k--) {
      if (text.endsWith(s.slice(0, k))) {
        n = k;
        break;
      }
    }
  }
  return n;
}

export function loadModel(modelPath: string, options?: LoadOptions): Promise<Model> {
  return Model.load(modelPath, options);
}
