// MoE activation (act(gate)·up) with AVX2 + FMA. Compiled with -mavx2 -mfma -mf16c.
// SiLU and tanh-GELU use a vectorised exp (Cephes-style range reduction + degree-6 polynomial,
// ~2 ulp); erf-GELU stays on the libm path (std::erf) for accuracy.
#include <immintrin.h>

#include <cmath>

#include "moe.h"

namespace qm::cpu {

namespace {

// e^x for x clamped to [-87.3, 88.7] (results stay normal and finite).
inline __m256 exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7f), lo = _mm256_set1_ps(-87.3f);
  x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
  // n = round(x / ln2), r = x - n ln2 (two-constant Cody-Waite)
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // e^r on [-ln2/2, ln2/2]
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // scale by 2^n (n in [-126, 128]: split 2^n = 2^(n/2) 2^(n - n/2) to stay in range)
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

}  // namespace

void moe_glu_avx2(MoeAct act, const float* g, const float* u, float* h, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  switch (act) {
    case MoeAct::Silu:
      // g / (1 + e^-g) · u; NaN in g or u propagates through the division / product.
      for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
      }
      for (; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      break;
    case MoeAct::GeluTanh: {
      // 0.5 g (1 + tanh(y)) = g · (1 - 1 / (1 + e^{2y})) = g · e^{2y} / (1 + e^{2y}), y = √(2/π)(g + 0.044715 g³)
      const __m256 c0 = _mm256_set1_ps(2.0f * 0.79788456080286536f), c1 = _mm256_set1_ps(0.044715f);
      for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 g2 = _mm256_mul_ps(gv, gv);
        const __m256 y2 = _mm256_mul_ps(c0, _mm256_fmadd_ps(_mm256_mul_ps(c1, g2), gv, gv));
        const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), y2));  // e^{-2y}
        // g / (1 + e^{-2y}) = 0.5 g (1 + tanh y)
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
      }
      for (; i < n; ++i) {
        const float v = g[i];
        h[i] = 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v))) * u[i];
      }
      break;
    }
    case MoeAct::Gelu:
      for (; i < n; ++i) h[i] = 0.5f * g[i] * (1.0f + std::erf(g[i] * 0.70710678118654752f)) * u[i];
      break;
  }
}

}  // namespace qm::cpu
