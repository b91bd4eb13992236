// Dense matmul with F32 activations and F32/F16/BF16 weights: y[T,N] = x[T,K] · W[N,K]ᵀ
// (the nn.Linear / ggml_mul_mat convention). Per instruction set, one function computes output
// rows [n0, n1) for every token. Each output element is reduced in the same fixed order whether one
// token or many share the call (batch invariance).
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

struct MatmulArgs {
  const float* x;  // [T, K]
  const void* w;   // [N, K] in wtype
  DType wtype;
  float* y;        // [T, N]
  int64_t T, K, N;
};

void matmul_rows_scalar(const MatmulArgs& a, int64_t n0, int64_t n1);
void matmul_rows_avx2(const MatmulArgs& a, int64_t n0, int64_t n1);
void matmul_rows_avx512(const MatmulArgs& a, int64_t n0, int64_t n1);

}  // namespace qm::cpu
