// TypeScript types of the native 'routing' op family (native/ops/routing.cc, native/cpu/routing.h).
import type { Tensor, ThreadOptions } from '../native';

/**
 * How router logits become expert choices and weights:
 * - 'softmax': softmax over all experts, top-k of the probabilities (Mixtral, Qwen2/Qwen3-MoE, OLMoE, DeepSeek-V2);
 * - 'topk_softmax': top-k of the logits, then softmax over the k (GraniteMoE, gpt-oss);
 * - 'sigmoid': sigmoid scores, top-k of score + correctionBias, weights = unbiased scores (DeepSeek-V3).
 */
export type RouteFunc = 'softmax' | 'topk_softmax' | 'sigmoid';

export interface RoutingOptions {
  /** Experts per token (k), 1..E; larger is E_ARGUMENT. */
  topK: number;
  /** Default 'softmax'. */
  func?: RouteFunc;
  /** Renormalise the k weights to sum 1 (Mixtral: true; Qwen/OLMoE/DeepSeek: config norm_topk_prob). Default false. */
  normTopk?: boolean;
  /** f32[E], added to the selection scores only (DeepSeek-V3 e_score_correction_bias); weights stay unbiased. */
  correctionBias?: Tensor;
  /** Expert groups for group-limited top-k (DeepSeek n_group). Default 1 (no limit). Must divide E. */
  nGroup?: number;
  /** Groups kept per token (DeepSeek topk_group). Default nGroup. topkGroup·E/nGroup must be >= topK. */
  topkGroup?: number;
  /** Group score: sum of its top-2 selection scores (DeepSeek-V3, default) or its max (DeepSeek-V2). */
  groupScore?: 'top2sum' | 'max';
  /** Multiplies the final weights (DeepSeek routed_scaling_factor). Default 1. */
  routedScalingFactor?: number;
}

export interface RouteResult {
  /** i32[T, k]: chosen experts, in descending selection score; ties go to the lower expert id. */
  ids: Tensor;
  /** f32[T, k]: mixing weights of the chosen experts. */
  weights: Tensor;
  /** Tokens routed to each expert (length E; sums to T·k). */
  counts: Int32Array;
}

export interface RoutingOps {
  /**
   * Top-k gating of router logits f32[T, E]. Zero tokens give empty outputs. NaN logits rank as
   * -inf for selection (ids are always k distinct experts in [0, E)); weights propagate NaN.
   */
  route(logits: Tensor, options: RoutingOptions & ThreadOptions): RouteResult;
}
