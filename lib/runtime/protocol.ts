// Messages between the public Model (main thread) and the engine (worker thread).
import type { ModelSpec } from '../models/spec';
import type { SamplingOptions } from './sampler';

export interface EngineOptions {
  threads: number;
  contextSize: number;
  /** Sequences decoded together at most (KV cache slots). */
  parallel: number;
  /** Prompt tokens per prefill chunk. */
  prefillChunk: number;
  kvType: 'f32' | 'f16';
  /** Where the weights live (see LoadOptions.weights). */
  weights: 'mapped' | 'memory';
}

export interface ModelInfoCore {
  spec: ModelSpec;
  tensorTypes: Record<string, string>;
  weightBytes: number;
  fileBytes: number;
  contextSize: number;
  parallel: number;
  threads: number;
}

export interface SubmitRequest {
  t: 'submit';
  id: number;
  tokens: number[];
  maxTokens: number;
  /** E_CONTEXT_OVERFLOW up front when prompt + maxTokens exceeds the context (else stop with 'length'). */
  requireRoom: boolean;
  sampling: SamplingOptions;
  stopTokens: number[];
}

export type ToWorker =
  | { t: 'load'; path: string; options: EngineOptions }
  | SubmitRequest
  | { t: 'logits'; id: number; tokens: number[] }
  | { t: 'abort'; id: number }
  | { t: 'stats'; id: number; reset: boolean }
  | { t: 'dispose' };

export type FinishReason = 'stop' | 'length' | 'aborted' | 'error';

export type FromWorker =
  | { t: 'progress'; fraction: number }
  | { t: 'loaded'; info: ModelInfoCore }
  | { t: 'load-error'; code: string; message: string }
  | { t: 'tokens'; items: Array<[number, number]> }
  | { t: 'done'; id: number; reason: FinishReason; promptTokens: number; completionTokens: number }
  | { t: 'error'; id: number; code: string; message: string }
  | { t: 'logits'; id: number; data: Float32Array }
  | { t: 'stats'; id: number; counts: number[][] }
  | { t: 'disposed' };
