// Compiled with AVX-512 F/BW/VL/DQ/VNNI flags; only called when the CPU has them.
#include <immintrin.h>

#include "matmul.h"

namespace qm::cpu {

namespace {
inline __m512 load16(const void* w, DType t, int64_t i, __mmask16 m) {
  switch (t) {
    case DType::F16:
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i));
    case DType::BF16:
      return _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i)), 16));
    default: return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  }
}

// TT tokens share each weight load; each token has its own accumulator chain (same order as TT=1).
template <int TT>
void tile(const MatmulArgs& a, int64_t n, int64_t t0) {
  const int64_t K = a.K;
  const int64_t wbase = n * K;
  __m512 acc[TT];
  for (int j = 0; j < TT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
    __m512 w = load16(a.w, a.wtype, wbase + k, m);
    for (int j = 0; j < TT; ++j) acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a.x + (t0 + j) * K + k), w, acc[j]);
  }
  for (int j = 0; j < TT; ++j) a.y[(t0 + j) * a.N + n] = _mm512_reduce_add_ps(acc[j]);
}
}  // namespace

void matmul_rows_avx512(const MatmulArgs& a, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    int64_t t = 0;
    for (; t + 8 <= a.T; t += 8) tile<8>(a, n, t);
    for (; t < a.T; ++t) tile<1>(a, n, t);
  }
}

}  // namespace qm::cpu
