// RMSNorm / LayerNorm (per row, optional weight/bias in f32/f16/bf16) and rotary position
// embeddings. Kernels take raw pointers; native/ops/norm_rope.cc validates and dispatches.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

struct NormArgs {
  const float* x;     // [rows, n]
  float* y;           // [rows, n]; may equal x (in place)
  const void* w;      // [w_len] in wtype, or nullptr
  DType wtype;
  const void* b;      // layerNorm bias [n] in btype, or nullptr
  DType btype;
  int64_t n;          // elements normalised together
  int64_t w_len;      // n (weight per normalised group) — the weight index is i (0..n-1)
  float eps;
  bool unit_offset;   // multiply by (1 + w) instead of w (Gemma)
};

// rows [r0, r1) of x, each of n elements.
void rms_norm_rows_scalar(const NormArgs& a, int64_t r0, int64_t r1);
void rms_norm_rows_avx2(const NormArgs& a, int64_t r0, int64_t r1);
void rms_norm_rows_avx512(const NormArgs& a, int64_t r0, int64_t r1);
void layer_norm_rows_scalar(const NormArgs& a, int64_t r0, int64_t r1);
void layer_norm_rows_avx2(const NormArgs& a, int64_t r0, int64_t r1);
void layer_norm_rows_avx512(const NormArgs& a, int64_t r0, int64_t r1);

// RoPE on rows of D floats: the first rope_dim dims are rotated with cos/sin from a table
// [rope_dim/2] per row (already including YaRN magnitude scaling); the rest are copied.
// neox: pairs (i, i + rope_dim/2); otherwise adjacent pairs (2i, 2i+1).
struct RopeArgs {
  const float* x;  // [rows, D]
  float* y;        // [rows, D], may equal x
  const float* cs; // [tokens, rope_dim/2, 2] interleaved (cos, sin)
  int64_t D, rope_dim, heads;  // row r belongs to token r / heads
  bool neox;
};
void rope_rows_scalar(const RopeArgs& a, int64_t r0, int64_t r1);
void rope_rows_avx2(const RopeArgs& a, int64_t r0, int64_t r1);
void rope_rows_avx512(const RopeArgs& a, int64_t r0, int64_t r1);

}  // namespace qm::cpu
