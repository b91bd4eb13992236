// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has them.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "../fp16.h"
#include "norm_rope.h"

namespace qm::cpu {

namespace {
inline __m256 load8(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
    case DType::BF16: {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  }
}
inline float load1(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}
inline double hsum_pd(__m256 v) {
  // widen to double for the final reduction
  __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  __m256d s = _mm256_add_pd(lo, hi);
  __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
}  // namespace

void rms_norm_rows_avx2(const NormArgs& a, int64_t r0, int64_t r1) {
  const int64_t n = a.n, n8 = n / 8 * 8;
  const float off = a.unit_offset ? 1.0f : 0.0f;
  const __m256 voff = _mm256_set1_ps(off);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * n;
    float* y = a.y + r * n;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
      acc0 = _mm256_fmadd_ps(v0, v0, acc0);
      acc1 = _mm256_fmadd_ps(v1, v1, acc1);
    }
    for (; i < n8; i += 8) {
      __m256 v0 = _mm256_loadu_ps(x + i);
      acc0 = _mm256_fmadd_ps(v0, v0, acc0);
    }
    double ss = hsum_pd(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + a.eps));
    const __m256 vinv = _mm256_set1_ps(inv);
    i = 0;
    if (a.w) {
      for (; i < n8; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv),
                                              _mm256_add_ps(load8(a.w, a.wtype, i), voff)));
      for (; i < n; ++i) y[i] = x[i] * inv * (load1(a.w, a.wtype, i) + off);
    } else {
      for (; i < n8; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
      for (; i < n; ++i) y[i] = x[i] * inv;
    }
  }
}

void layer_norm_rows_avx2(const NormArgs& a, int64_t r0, int64_t r1) {
  const int64_t n = a.n, n8 = n / 8 * 8;
  const float off = a.unit_offset ? 1.0f : 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * n;
    float* y = a.y + r * n;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < n8; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    double s = hsum_pd(acc);
    for (; i < n; ++i) s += x[i];
    const float m = static_cast<float>(s / static_cast<double>(n));
    const __m256 vm = _mm256_set1_ps(m);
    acc = _mm256_setzero_ps();
    for (i = 0; i < n8; i += 8) {
      __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
      acc = _mm256_fmadd_ps(d, d, acc);
    }
    double v = hsum_pd(acc);
    for (; i < n; ++i) v += static_cast<double>(x[i] - m) * (x[i] - m);
    const float inv = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(n) + a.eps));
    const __m256 vinv = _mm256_set1_ps(inv), voff = _mm256_set1_ps(off);
    for (i = 0; i < n8; i += 8) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vinv);
      if (a.w) t = _mm256_mul_ps(t, _mm256_add_ps(load8(a.w, a.wtype, i), voff));
      if (a.b) t = _mm256_add_ps(t, load8(a.b, a.btype, i));
      _mm256_storeu_ps(y + i, t);
    }
    for (; i < n; ++i) {
      float t = (x[i] - m) * inv;
      if (a.w) t *= load1(a.w, a.wtype, i) + off;
      if (a.b) t += load1(a.b, a.btype, i);
      y[i] = t;
    }
  }
}

void rope_rows_avx2(const RopeArgs& a, int64_t r0, int64_t r1) {
  const int64_t half = a.rope_dim / 2;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * a.D;
    float* y = a.y + r * a.D;
    const float* cs = a.cs + (r / a.heads) * a.rope_dim;
    int64_t i = 0;
    if (a.neox) {
      for (; i + 8 <= half; i += 8) {
        __m256 v0 = _mm256_loadu_ps(cs + 2 * i), v1 = _mm256_loadu_ps(cs + 2 * i + 8);
        __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xD8));
        __m256 s = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0xDD)), 0xD8));
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + half);
        __m256 y0 = _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s));
        __m256 y1 = _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c));
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + half, y1);
      }
      for (; i < half; ++i) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = x[i], x1 = x[i + half];
        y[i] = x0 * c - x1 * s;
        y[i + half] = x0 * s + x1 * c;
      }
    } else {
      // 4 pairs per vector: y = x·[c c] ∓ swap(x)·[s s] (addsub: even lanes subtract).
      for (; 2 * i + 8 <= a.rope_dim; i += 4) {
        __m256 t = _mm256_loadu_ps(cs + 2 * i);
        __m256 c = _mm256_moveldup_ps(t), s = _mm256_movehdup_ps(t);
        __m256 xv = _mm256_loadu_ps(x + 2 * i);
        __m256 sw = _mm256_permute_ps(xv, 0xB1);
        _mm256_storeu_ps(y + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, c), _mm256_mul_ps(sw, s)));
      }
      for (; i < half; ++i) {
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
