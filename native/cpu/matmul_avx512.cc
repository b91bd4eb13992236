// Compiled with AVX-512 F/BW/VL/DQ/VNNI flags; only called when the CPU has them.
#include <immintrin.h>

#include <algorithm>

#include "matmul.h"

// GCC 12 at -O3 reports the _mm512_undefined_*() pass-through operands inside avx512fintrin.h
// (cvtph_ps, reduce_add) as (maybe) used uninitialized once inlined into the unrolled tiles: a
// known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace qm::cpu {

namespace {
template <DType WT>
inline __m512 load16(const void* w, int64_t i, __mmask16 m) {
  if constexpr (WT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i));
  } else if constexpr (WT == DType::BF16) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i)), 16));
  } else {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  }
}

template <DType WT>
constexpr int64_t kElemBytes = WT == DType::F32 ? 4 : 2;

// NR rows × TT tokens: each weight vector load is shared by TT tokens, each token vector by NR
// rows, and every (row, token) output keeps its own accumulator chain in k order, the same chain
// for any NR / TT (batch invariance). NR · TT independent chains keep the FMA units busy where one
// chain alone waits on the FMA latency (4 cycles per 16 elements).
// Rows read side by side (NR > 1), 64 bytes apart per step, are not followed by this machine's
// hardware prefetchers (a 128 MB f16 matrix read 2.2x slower than row by row, on Zen 4), so each
// step prefetches its share of the next tile's rows (`next`, one contiguous block).
template <DType WT, int NR, int TT>
void tile(const MatmulArgs& a, int64_t n, int64_t t0, const char* next, int64_t next_bytes) {
  constexpr int64_t kStepBytes = NR * 16 * kElemBytes<WT>;  // of the next tile, per step of 16
  const int64_t K = a.K;
  __m512 acc[NR][TT];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t pf = 0;
  for (int64_t k = 0; k < K; k += 16, pf += kStepBytes) {
    if (pf < next_bytes) {
#pragma GCC unroll 8
      for (int64_t b = 0; b < kStepBytes; b += 64) _mm_prefetch(next + pf + b, _MM_HINT_T0);
    }
    const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
    __m512 w[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) w[r] = load16<WT>(a.w, (n + r) * K + k, m);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const __m512 x = _mm512_maskz_loadu_ps(m, a.x + (t0 + j) * K + k);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[r][j] = _mm512_fmadd_ps(x, w[r], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) a.y[(t0 + j) * a.N + n + r] = _mm512_reduce_add_ps(acc[r][j]);
}

// Tokens [t0, t0 + TT): rows in tiles of NR, each prefetching the next tile (a prefetch never
// faults), then the rest one row at a time.
template <DType WT, int NR, int TT>
void rows(const MatmulArgs& a, int64_t n0, int64_t n1, int64_t t0) {
  const char* w = static_cast<const char*>(a.w);
  const int64_t row_bytes = a.K * kElemBytes<WT>;
  int64_t n = n0;
  if constexpr (NR > 1) {
    for (; n + NR <= n1; n += NR) {
      const int64_t next = std::min<int64_t>(NR, n1 - (n + NR));
      tile<WT, NR, TT>(a, n, t0, w + (n + NR) * row_bytes, next * row_bytes);
    }
  }
  for (; n < n1; ++n) tile<WT, 1, TT>(a, n, t0, nullptr, 0);
}

// Tokens in fours on 4 x 4 tiles (prefill: ~2-2.5x the one-chain kernel). A single token (decode)
// reads row after row with one chain: weights from DRAM stream fastest in that order; 8-row tiles
// were 1.6-2x faster on cache-resident matrices but up to 2x slower on large ones (and 10-20 %
// slower with the prefetch), and decode weights mostly come from DRAM.
template <DType WT>
void matmul_rows(const MatmulArgs& a, int64_t n0, int64_t n1) {
  int64_t t = 0;
  for (; t + 4 <= a.T; t += 4) rows<WT, 4, 4>(a, n0, n1, t);
  for (; t < a.T; ++t) rows<WT, 1, 1>(a, n0, n1, t);
}
}  // namespace

void matmul_rows_avx512(const MatmulArgs& a, int64_t n0, int64_t n1) {
  switch (a.wtype) {
    case DType::F16: matmul_rows<DType::F16>(a, n0, n1); break;
    case DType::BF16: matmul_rows<DType::BF16>(a, n0, n1); break;
    default: matmul_rows<DType::F32>(a, n0, n1); break;
  }
}

}  // namespace qm::cpu
