// TypeScript types of the native 'moe' op family (native/ops/moe.cc, native/cpu/moe.h).
import type { Tensor, ThreadOptions } from '../native';
import type { RoutingOptions } from './routing';

/** Activation of the gated FFN: act(x·gateᵀ) ⊙ (x·upᵀ). */
export type MoeActivation = 'silu' | 'gelu' | 'gelu_tanh';

/**
 * Routed experts' weights, any qgemm weight type (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k..q6_k).
 * Each of gate/up/down is either one stacked tensor (GGUF ffn_*_exps layout) or an array of E
 * per-expert tensors whose types may differ (per-expert mixed precision).
 */
export interface MoeExperts {
  /** [E, F, D] or E × [F, D]. */
  gate: Tensor | Tensor[];
  /** [E, F, D] or E × [F, D]. */
  up: Tensor | Tensor[];
  /** [E, D, F] or E × [D, F]. */
  down: Tensor | Tensor[];
}

/** A shared (always active) expert. */
export interface MoeSharedExpert {
  /** [Fs, D] */
  gate: Tensor;
  /** [Fs, D] */
  up: Tensor;
  /** [D, Fs] */
  down: Tensor;
  /** [1, D] (or [D]): output scaled by sigmoid(gateWeight·x) (Qwen2-MoE); absent: unscaled (DeepSeek). */
  gateWeight?: Tensor;
}

export interface MoeOptions extends RoutingOptions, ThreadOptions {
  /** Router weights [E, D] (any weight type); logits = x·routerWeightᵀ. Exactly one of routerWeight / routerLogits. */
  routerWeight?: Tensor;
  /** Precomputed router logits f32[T, E]. */
  routerLogits?: Tensor;
  experts: MoeExperts;
  /** Default 'silu'. */
  activation?: MoeActivation;
  /** Shared expert(s), added after the routed experts (in array order). */
  shared?: MoeSharedExpert | MoeSharedExpert[];
  /** f32[T, D] to write into (must not overlap an input). */
  out?: Tensor;
  /** Also return the routing (ids, weights). Default false. */
  returnRouting?: boolean;
}

export interface MoeResult {
  /** f32[T, D]: Σ_slot weight·expert(x) + shared experts. */
  y: Tensor;
  /** Tokens routed to each expert in this call (length E): per-layer routing statistics. */
  counts: Int32Array;
  /** i32[T, k] when returnRouting. */
  ids?: Tensor;
  /** f32[T, k] when returnRouting. */
  weights?: Tensor;
}

export interface MoeOps {
  /**
   * The fused MoE layer on x f32[T, D]: routing, tokens grouped by expert (each active expert's
   * weights read once per call), gate/up GEMMs, activation, down GEMM, weighted combine in slot
   * order, shared experts. Batch-invariant: a token's output row is bit-identical alone or in any
   * batch, with any thread count.
   */
  moe(x: Tensor, options: MoeOptions): MoeResult;
}
