// TypeScript types of the native 'norm-rope' op family (native/ops/norm_rope.cc).
import type { Tensor, ThreadOptions } from '../native';

export interface NormOptions extends ThreadOptions {
  /** Added to the mean square (variance) before the square root. rmsNorm default 1e-6, layerNorm 1e-5. */
  eps?: number;
  /** Multiply by (1 + weight) instead of weight (Gemma-style norms). */
  addUnitOffset?: boolean;
  /** Write here (f32, x's shape); may be x itself. */
  out?: Tensor;
  /** Same as out: x. */
  inPlace?: boolean;
}

/** RoPE frequency scaling. 'linear' divides every angle by factor (position interpolation). */
export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | {
      /** YaRN as in ggml's rope_yarn: ramp between interpolation and extrapolation per frequency. */
      type: 'yarn';
      factor: number;
      originalContextLength: number;
      /** default 32 */
      betaFast?: number;
      /** default 1 */
      betaSlow?: number;
      /** Extrapolation mix (ggml ext_factor), default 1; 0 = plain interpolation. */
      extFactor?: number;
      /** Magnitude scale (ggml attn_factor), default 1; multiplied by 1 + 0.1·ln(factor) when extFactor ≠ 0. */
      attnFactor?: number;
    };

export interface RopeOptions extends ThreadOptions {
  /** Base of the inverse frequencies: inv_freq[i] = theta^(-2i/ropeDim). Default 10000. */
  theta?: number;
  /** Rotate only the first ropeDim dims (partial rotary); the rest are copied. Default D. Even. */
  ropeDim?: number;
  /** 'neox' (default): pairs (i, i + ropeDim/2), HF rotate_half. 'adjacent': pairs (2i, 2i+1), GGUF llama/ggml mode 0. */
  style?: 'neox' | 'adjacent';
  scaling?: RopeScaling;
  /** Per-frequency divisors [ropeDim/2] (ggml's freq_factors, e.g. Llama-3.1 / LongRoPE). */
  freqFactors?: Float32Array | Tensor;
  /** Rotate x in place and return it. */
  inPlace?: boolean;
  out?: Tensor;
}

export interface NormRopeOps {
  /** y = x / sqrt(mean(x²) + eps) · weight over the last dim of x (f32 [..., n]); weight f32|f16|bf16 [n] or null. */
  rmsNorm(x: Tensor, weight: Tensor | null, options?: NormOptions): Tensor;
  /** y = (x − mean) / sqrt(var + eps) · weight + bias over the last dim. */
  layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, options?: NormOptions): Tensor;
  /**
   * q/k norm on x f32 [T, H, D]: weight [D] normalises each head's D values (Qwen3);
   * weight [H·D] normalises the whole projection row (OLMoE); null: per head, no weight.
   */
  headRmsNorm(x: Tensor, weight: Tensor | null, options?: NormOptions): Tensor;
  /** Rotary embedding of x f32 [T, H, D]; token t is at positions[t] (Int32Array or i32 Tensor [T]). */
  rope(x: Tensor, positions: Int32Array | Tensor, options?: RopeOptions): Tensor;
}
