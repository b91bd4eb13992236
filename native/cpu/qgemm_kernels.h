// Per-ISA entry points behind qgemm_rows (qgemm.h), picked with QM_PICK. Each implements exactly the
// qgemm_rows contract; within one ISA every output element is reduced in one fixed order.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

void qgemm_rows_scalar(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1);
void qgemm_rows_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                     int64_t n0, int64_t n1);
void qgemm_rows_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1);

// quantize_act_row (qgemm.h) per ISA: the same bytes on every ISA (the AVX2 one is a vectorized copy
// of the reference arithmetic; AVX-512 uses it).
void quantize_act_row_scalar(DType wtype, const float* x, void* out, int64_t K);
void quantize_act_row_avx2(DType wtype, const float* x, void* out, int64_t K);
void quantize_act_row_avx512(DType wtype, const float* x, void* out, int64_t K);

// Scalar dot product of one weight row with one activation row (both K elements), for block types.
using VecDotFn = float (*)(int64_t K, const void* w, const void* xq);
VecDotFn scalar_vec_dot(DType wtype);  // nullptr for float types / unsupported

// Sum of n floats (a memory read loop for bandwidth measurements; fixed order per ISA).
double read_sum_f32_scalar(const float* x, int64_t n);
double read_sum_f32_avx2(const float* x, int64_t n);

// Rows of N and tokens of T processed per cache tile by the blocked kernels.
constexpr int64_t kTokenTile = 32;

}  // namespace qm::cpu
