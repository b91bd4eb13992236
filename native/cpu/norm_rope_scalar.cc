// Portable norm/RoPE kernels (also the reference-like path for the SIMD variants).
#include <cmath>
#include <cstring>

#include "../fp16.h"
#include "norm_rope.h"

namespace qm::cpu {

namespace {
inline float load_any(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}
}  // namespace

void rms_norm_rows_scalar(const NormArgs& a, int64_t r0, int64_t r1) {
  const float off = a.unit_offset ? 1.0f : 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * a.n;
    float* y = a.y + r * a.n;
    double ss = 0;
    for (int64_t i = 0; i < a.n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(a.n) + a.eps));
    if (a.w) {
      for (int64_t i = 0; i < a.n; ++i) y[i] = x[i] * inv * (load_any(a.w, a.wtype, i) + off);
    } else {
      for (int64_t i = 0; i < a.n; ++i) y[i] = x[i] * inv;
    }
  }
}

void layer_norm_rows_scalar(const NormArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * a.n;
    float* y = a.y + r * a.n;
    double s = 0;
    for (int64_t i = 0; i < a.n; ++i) s += x[i];
    const double mean = s / static_cast<double>(a.n);
    double v = 0;
    for (int64_t i = 0; i < a.n; ++i) v += (x[i] - mean) * (x[i] - mean);
    const float inv = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(a.n) + a.eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < a.n; ++i) {
      float t = (x[i] - m) * inv;
      if (a.w) t *= load_any(a.w, a.wtype, i) + (a.unit_offset ? 1.0f : 0.0f);
      if (a.b) t += load_any(a.b, a.btype, i);
      y[i] = t;
    }
  }
}

void rope_rows_scalar(const RopeArgs& a, int64_t r0, int64_t r1) {
  const int64_t half = a.rope_dim / 2;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * a.D;
    float* y = a.y + r * a.D;
    const float* cs = a.cs + (r / a.heads) * a.rope_dim;
    if (a.neox) {
      for (int64_t i = 0; i < half; ++i) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = x[i], x1 = x[i + half];
        y[i] = x0 * c - x1 * s;
        y[i + half] = x0 * s + x1 * c;
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = x[2 * i], x1 = x[2 * i + 1];
        y[2 * i] = x0 * c - x1 * s;
        y[2 * i + 1] = x0 * s + x1 * c;
      }
    }
    if (y != x && a.rope_dim < a.D) std::memcpy(y + a.rope_dim, x + a.rope_dim, (a.D - a.rope_dim) * sizeof(float));
  }
}

}  // namespace qm::cpu
