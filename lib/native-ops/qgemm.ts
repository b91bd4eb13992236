// TypeScript types of the native 'qgemm' op family (native/ops/qgemm.cc, native/cpu/qgemm.h):
// GGUF block types (layouts as llama.cpp ggml-common.h), their reference quantizers and
// dequantizers, and the quantized GEMM (activations quantized per row to Q8_0 / Q8_1 / Q8_K, as
// llama.cpp's vec_dot_type, then integer dot products: AVX2 or scalar, picked at run time).
import type { DTypeName, Tensor, ThreadOptions } from '../native';

/** Weight dtypes qmatmul accepts. */
export type QgemmWeightType =
  | 'f32' | 'f16' | 'bf16' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q4_0_r16' | 'q8_0_r16';

/** Dtypes quantize produces (dequantize / getRows also read the r16 layouts): file weight types plus the activation types. */
export type QuantType = Exclude<QgemmWeightType, 'q4_0_r16' | 'q8_0_r16'> | 'q8_1' | 'q8_k';

/** Activation dtype paired with a weight dtype (f32 for float weights). */
export type QgemmActType = 'f32' | 'q8_0' | 'q8_1' | 'q8_k';

export interface QmatmulOptions extends ThreadOptions {
  /** f32[T,N] (or [N] for a 1-D x) to write into. */
  out?: Tensor;
}

export interface GetRowsOptions extends ThreadOptions {
  /** f32[T,K] to write into. */
  out?: Tensor;
}

export interface QgemmOps {
  /**
   * Reference round-to-nearest quantizer (llama.cpp quantize_row_*_ref; byte-identical for q4_0 /
   * q8_0) over rows of the last dimension K. K not a multiple of the block size (32, or 256 for
   * the K-quants) is E_SHAPE; a non-finite value is E_ARGUMENT for block types.
   */
  quantize(dtype: QuantType | DTypeName, x: Tensor, options?: ThreadOptions): Tensor;
  /** f32 copy of any supported tensor (same shape); llama.cpp's dequantize_row_* arithmetic. */
  dequantize(w: Tensor, options?: ThreadOptions): Tensor;
  /**
   * y[T,N] = x[T,K] · W[N,K]ᵀ with W in any QgemmWeightType. x is quantized per row to the
   * activation type first. Each output depends only on its x row and W row (bit-identical for any
   * T, batch composition and thread count on one instruction set).
   */
  qmatmul(x: Tensor, w: Tensor, options?: QmatmulOptions): Tensor;
  /** Embedding lookup with dequantization: f32[T,K] rows ids[t] of w[V,K]; an id outside [0,V) is E_TOKEN_RANGE. */
  getRows(w: Tensor, ids: Tensor | Int32Array, options?: GetRowsOptions): Tensor;
  /**
   * The same weights in the r16 layout (native/cpu/repack.h: 16 rows interleaved per block, read by
   * the AVX-512 GEMV without gathers; qmatmul / moe / dequantize / getRows give the same results as
   * on w). Rewrites w's memory in place, so w is consumed (disposed). w: q4_0 or q8_0, rank >= 2,
   * rows (second-to-last dimension) a multiple of 16 (E_SHAPE), in writable memory: an owned tensor
   * or a model file loaded with weights: 'memory' (a file mapping is E_ARGUMENT).
   */
  repackR16(w: Tensor, options?: ThreadOptions): Tensor;
  /** The activation rows qmatmul would use for weight type wtype (tests, benchmarks). */
  quantizeActivations(wtype: QgemmWeightType | DTypeName, x: Tensor, options?: ThreadOptions): Tensor;
  /** Sum of an f32 tensor's elements: a parallel memory read loop (read-bandwidth benchmarks). */
  readSumF32(x: Tensor, options?: ThreadOptions): number;
  /** The activation dtype paired with wtype (E_DTYPE when qmatmul does not support wtype). */
  qgemmActType(wtype: QgemmWeightType | DTypeName): QgemmActType;
}
