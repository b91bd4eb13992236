// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has them.
#include <immintrin.h>

#include <cstring>

#include "../fp16.h"
#include "matmul.h"

namespace qm::cpu {

namespace {
inline __m256 load8(const void* w, DType t, int64_t i) {
  switch (t) {
    case DType::F16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
    case DType::BF16: {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  }
}
// Tail (fewer than 8 left): zero-padded copies so the lane order matches the full blocks.
inline __m256 load8_tail(const void* w, DType t, int64_t i, int64_t n) {
  float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t j = 0; j < n; ++j) {
    if (t == DType::F16) tmp[j] = f16_to_f32(static_cast<const uint16_t*>(w)[i + j]);
    else if (t == DType::BF16) tmp[j] = bf16_to_f32(static_cast<const uint16_t*>(w)[i + j]);
    else tmp[j] = static_cast<const float*>(w)[i + j];
  }
  return _mm256_loadu_ps(tmp);
}
inline __m256 loadx_tail(const float* x, int64_t n) {
  float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, x, n * sizeof(float));
  return _mm256_loadu_ps(tmp);
}
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// TT tokens at once share each weight load; every token keeps its own accumulator chain, so the
// result equals the TT=1 path bit for bit.
template <int TT>
void tile(const MatmulArgs& a, int64_t n, int64_t t0) {
  const int64_t K = a.K, kfull = K / 8 * 8;
  const int64_t wbase = n * K;
  __m256 acc[TT];
  for (int j = 0; j < TT; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kfull; k += 8) {
    __m256 w = load8(a.w, a.wtype, wbase + k);
    for (int j = 0; j < TT; ++j) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a.x + (t0 + j) * K + k), w, acc[j]);
  }
  if (kfull < K) {
    __m256 w = load8_tail(a.w, a.wtype, wbase + kfull, K - kfull);
    for (int j = 0; j < TT; ++j) acc[j] = _mm256_fmadd_ps(loadx_tail(a.x + (t0 + j) * K + kfull, K - kfull), w, acc[j]);
  }
  for (int j = 0; j < TT; ++j) a.y[(t0 + j) * a.N + n] = hsum(acc[j]);
}
}  // namespace

void matmul_rows_avx2(const MatmulArgs& a, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    int64_t t = 0;
    for (; t + 4 <= a.T; t += 4) tile<4>(a, n, t);
    for (; t < a.T; ++t) tile<1>(a, n, t);
  }
}

}  // namespace qm::cpu
