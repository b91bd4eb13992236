// Small element-wise ops a forward pass needs between the big kernels (portable C++; the compiler
// vectorises these loops, and they are memory-bound anyway).
#pragma once
#include <cstdint>

namespace qm::cpu {

// y[i] = a[i] + b[i]
void add_f32(const float* a, const float* b, float* y, int64_t n);
// x[t, j] += bias[j] for a [rows, cols] matrix
void add_row_bias_f32(float* x, const float* bias, int64_t rows, int64_t cols);
// y[i] = act(g[i]) * u[i]; act: 0 = SiLU, 1 = GELU (erf), 2 = GELU (tanh approximation)
void gated_act_f32(const float* g, const float* u, float* y, int64_t n, int act);
// y[i] = a[i] * s
void scale_f32(const float* a, float s, float* y, int64_t n);

}  // namespace qm::cpu
