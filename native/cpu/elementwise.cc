#include "elementwise.h"

#include <cmath>

namespace qm::cpu {

void add_f32(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void add_row_bias_f32(float* x, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) x[r * cols + j] += bias[j];
}

static inline float silu(float v) { return v / (1.0f + std::exp(-v)); }
static inline float gelu_erf(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); }
static inline float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

void gated_act_f32(const float* g, const float* u, float* y, int64_t n, int act) {
  if (act == 0)
    for (int64_t i = 0; i < n; ++i) y[i] = silu(g[i]) * u[i];
  else if (act == 1)
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf(g[i]) * u[i];
  else
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh(g[i]) * u[i];
}

void scale_f32(const float* a, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
}

}  // namespace qm::cpu
