// Internal helpers of the AVX2 qgemm kernels (include only from *_avx2.cc / *_avx512.cc files).
//
// THE ARITHMETIC CONTRACT (what makes every output batch invariant):
//   For one weight row n and one activation row t, each (super-)block b yields exact integers
//   (int32, no overflow or saturation anywhere: the bounds are stated next to each kernel):
//     isum_b = Σ_i q_i·x_i with the weight quants q as stored (offsets such as Q4_0's −8 included),
//     and for types with a min term, summ_b = Σ_j m_j·bsum_j.
//   The output is then one fixed chain of float operations in block order, starting from +0:
//     acc = fma(float(isum_b), fl(dw_b · dx_b), acc)          (every type)
//     acc = fma(mw_b, sx_b, acc)                              (Q4_1 / Q5_1: weight min x Q8_1 sum)
//     acc = fma(−float(summ_b), fl(dminw_b · dx_b), acc)      (Q2_K / Q4_K / Q5_K)
//   y[t, n] = acc (no horizontal sum). Integer sums are exact whatever instructions compute them,
//   and each output is one SIMD lane running that chain, so a kernel may put rows (GEMV: 8 rows per
//   vector) or tokens (GEMM: 8 tokens per vector) in the lanes and reduce the integers in any order:
//   the bits of y[t, n] never depend on T, the tile, the lane, the thread split or the other tokens.
//   Write the float steps only as explicit _mm256_fmadd_ps / _mm256_fnmadd_ps and a _mm256_mul_ps
//   feeding an FMA's multiplicand: GCC contracts a separate mul + add into an FMA (-ffp-contract=fast),
//   which would make kernels differ. test/kernels/qgemm.test.ts checks the bits across T and splits.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

// The helpers have internal linkage (an anonymous namespace): this header is compiled into AVX2 and
// AVX-512 translation units with different instruction-set flags, and one shared (COMDAT) copy of a
// helper that the compiler chose not to inline could otherwise carry AVX-512 code into AVX2 paths.
namespace qm::cpu {
namespace {
namespace qavx2 {

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline uint16_t ld16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t ld32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float ldf(const void* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// The 8 halves at r[i] + off (i = 0..7) as 8 floats, assembled in general registers (the empty
// asm keeps GCC from turning the shifts into slower vector code).
inline __m256 gather_h8(const uint8_t* const* r, int64_t off) {
  uint64_t a = ld16(r[0] + off), b = ld16(r[4] + off);
  a |= uint64_t{ld16(r[1] + off)} << 16;
  b |= uint64_t{ld16(r[5] + off)} << 16;
  a |= uint64_t{ld16(r[2] + off)} << 32;
  b |= uint64_t{ld16(r[6] + off)} << 32;
  a |= uint64_t{ld16(r[3] + off)} << 48;
  b |= uint64_t{ld16(r[7] + off)} << 48;
  asm("" : "+r"(a), "+r"(b));
  return _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(a)), static_cast<long long>(b), 1));
}

// The half pairs (a, b) at r[i] + off (a first) of 8 rows: *a = 8 a's, *b = 8 b's.
inline void gather_hh8(const uint8_t* const* r, int64_t off, __m256* a, __m256* b) {
  // Rows {0,1,4,5} and {2,3,6,7}: after the in-lane shuffle the rows come out in order.
  uint64_t p01 = ld32(r[0] + off), p23 = ld32(r[2] + off), p45 = ld32(r[4] + off), p67 = ld32(r[6] + off);
  p01 |= uint64_t{ld32(r[1] + off)} << 32;
  p23 |= uint64_t{ld32(r[3] + off)} << 32;
  p45 |= uint64_t{ld32(r[5] + off)} << 32;
  p67 |= uint64_t{ld32(r[7] + off)} << 32;
  asm("" : "+r"(p01), "+r"(p23), "+r"(p45), "+r"(p67));
  const __m256 u = _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(p01)), static_cast<long long>(p45), 1));
  const __m256 v = _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(p23)), static_cast<long long>(p67), 1));
  *a = _mm256_shuffle_ps(u, v, 0x88);
  *b = _mm256_shuffle_ps(u, v, 0xDD);
}

// Software prefetch. The rows of a tile are 8 short streams (one row of a [1024, 2048] Q4_0 matrix
// is 18 cache lines) that restart at every tile, too short for the hardware prefetchers to lock on
// when the weights come from DRAM (as expert weights do in a forward pass). So while a tile runs,
// each block step prefetches the matching share of the next tile (contiguous after this one).
// The hint is T1 (into L2), not T0: a 16-row AVX-512 tile plus its prefetched successor is 36–68 KB
// (Q4_0..Q8_0, K = 2048), more than a 32 KB L1d (Zen 4), so T0 evicted the tile in use; cold GEMV
// went ~1.5–2.6x faster on Zen 4 with T1. The L1 hardware prefetcher pulls the lines from L2.
// (_mm_prefetch never faults, so addresses past the end of the weights are harmless.)
template <int64_t kBytesPerStep>
inline void prefetch_next(const uint8_t* pf, int64_t b) {
  if (!pf) return;
  const uint8_t* p = pf + b * kBytesPerStep;
  for (int64_t k = 0; k < kBytesPerStep; k += 64) _mm_prefetch(reinterpret_cast<const char*>(p + k), _MM_HINT_T1);
}

// ---- exact transposed reductions: lane i of the result = the sum of all lanes of v[i].

// v[8]: 8 x int16 each. Every partial sum must fit int16: callers guarantee 8·max|lane| < 32768.
inline __m128i tree16(const __m128i* v) {
  const __m128i a01 = _mm_add_epi16(_mm_unpacklo_epi16(v[0], v[1]), _mm_unpackhi_epi16(v[0], v[1]));
  const __m128i a23 = _mm_add_epi16(_mm_unpacklo_epi16(v[2], v[3]), _mm_unpackhi_epi16(v[2], v[3]));
  const __m128i a45 = _mm_add_epi16(_mm_unpacklo_epi16(v[4], v[5]), _mm_unpackhi_epi16(v[4], v[5]));
  const __m128i a67 = _mm_add_epi16(_mm_unpacklo_epi16(v[6], v[7]), _mm_unpackhi_epi16(v[6], v[7]));
  const __m128i b03 = _mm_add_epi16(_mm_unpacklo_epi32(a01, a23), _mm_unpackhi_epi32(a01, a23));
  const __m128i b47 = _mm_add_epi16(_mm_unpacklo_epi32(a45, a67), _mm_unpackhi_epi32(a45, a67));
  return _mm_add_epi16(_mm_unpacklo_epi64(b03, b47), _mm_unpackhi_epi64(b03, b47));
}

// As tree16 widened to int32 after two levels: callers guarantee 4·max|lane| < 32768.
inline __m256i tree16_wide(const __m128i* v) {
  const __m128i a01 = _mm_add_epi16(_mm_unpacklo_epi16(v[0], v[1]), _mm_unpackhi_epi16(v[0], v[1]));
  const __m128i a23 = _mm_add_epi16(_mm_unpacklo_epi16(v[2], v[3]), _mm_unpackhi_epi16(v[2], v[3]));
  const __m128i a45 = _mm_add_epi16(_mm_unpacklo_epi16(v[4], v[5]), _mm_unpackhi_epi16(v[4], v[5]));
  const __m128i a67 = _mm_add_epi16(_mm_unpacklo_epi16(v[6], v[7]), _mm_unpackhi_epi16(v[6], v[7]));
  // lanes: rows 0,1,2,3,0,1,2,3 (and 4..7): widen both halves and add in int32
  const __m128i b03 = _mm_add_epi16(_mm_unpacklo_epi32(a01, a23), _mm_unpackhi_epi32(a01, a23));
  const __m128i b47 = _mm_add_epi16(_mm_unpacklo_epi32(a45, a67), _mm_unpackhi_epi32(a45, a67));
  const __m128i s03 = _mm_add_epi32(_mm_cvtepi16_epi32(b03), _mm_cvtepi16_epi32(_mm_unpackhi_epi64(b03, b03)));
  const __m128i s47 = _mm_add_epi32(_mm_cvtepi16_epi32(b47), _mm_cvtepi16_epi32(_mm_unpackhi_epi64(b47, b47)));
  return _mm256_set_m128i(s47, s03);
}

// v[8]: 4 x int32 each.
inline __m256i tree32(const __m128i* v) {
  const __m128i a01 = _mm_add_epi32(_mm_unpacklo_epi32(v[0], v[1]), _mm_unpackhi_epi32(v[0], v[1]));
  const __m128i a23 = _mm_add_epi32(_mm_unpacklo_epi32(v[2], v[3]), _mm_unpackhi_epi32(v[2], v[3]));
  const __m128i a45 = _mm_add_epi32(_mm_unpacklo_epi32(v[4], v[5]), _mm_unpackhi_epi32(v[4], v[5]));
  const __m128i a67 = _mm_add_epi32(_mm_unpacklo_epi32(v[6], v[7]), _mm_unpackhi_epi32(v[6], v[7]));
  const __m128i b03 = _mm_add_epi32(_mm_unpacklo_epi64(a01, a23), _mm_unpackhi_epi64(a01, a23));
  const __m128i b47 = _mm_add_epi32(_mm_unpacklo_epi64(a45, a67), _mm_unpackhi_epi64(a45, a67));
  return _mm256_set_m128i(b47, b03);
}

inline __m128i fold16(__m256i v) { return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); }
inline __m128i fold32(__m256i v) { return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); }

// Horizontal sum of 8 int32 (exact).
inline int32_t hsum_i32(__m256i v) {
  __m128i s = fold32(v);
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// 32 bits -> 32 bytes, 0xFF where bit i is set (byte i).
inline __m256i bytes_from_bits_32(uint32_t x32) {
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Row pointers of an 8-row tile starting at row n (rows past n1 repeat row n1 - 1; their outputs
// are discarded).
inline void tile_rows(const uint8_t* w, int64_t wrb, int64_t n, int64_t n1, const uint8_t** r) {
  for (int i = 0; i < 8; ++i) r[i] = w + (n + i < n1 ? n + i : n1 - 1) * wrb;
}

inline void store_rows(float* y, __m256 v, int64_t count) {
  if (count >= 8) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, v);
  for (int64_t i = 0; i < count; ++i) y[i] = tmp[i];
}

// GEMV-style driver: each 8-row tile of [n0, n1) against every token, tokens in tiles of
// kTokTile so the activations stay in L2 while the rows stay in L1.
// Kernel::gemv8(const uint8_t* const* rows, const uint8_t* x, int64_t nb, const uint8_t* pf) -> __m256
// (row lanes); pf: the next tile's first row (prefetched along), or nullptr.
template <class Kernel>
void run_gemv_tiles(const void* w, const void* xq, float* y, int64_t T, int64_t nb, int64_t ldy, int64_t n0,
                    int64_t n1) {
  constexpr int64_t kTokTile = 16;
  const int64_t wrb = nb * Kernel::kWBytes, arb = nb * Kernel::kXBytes;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  const uint8_t* rows[8];
  // The first tile in one burst (later tiles are prefetched while the previous one runs).
  const int64_t first = std::min<int64_t>(8, n1 - n0) * wrb;
  for (int64_t k = 0; k < first; k += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + n0 * wrb + k), _MM_HINT_T0);
  for (int64_t t0 = 0; t0 < T; t0 += kTokTile) {
    const int64_t t1 = t0 + kTokTile < T ? t0 + kTokTile : T;
    for (int64_t n = n0; n < n1; n += 8) {
      tile_rows(wb, wrb, n, n1, rows);
      // (past n1 too: the rows after this call's range are usually the caller's next chunk; a
      // prefetch never faults, whatever the address.)
      const uint8_t* pf = wb + (n + 8) * wrb;
      for (int64_t t = t0; t < t1; ++t, pf = nullptr)
        store_rows(y + t * ldy + n, Kernel::gemv8(rows, xb + t * arb, nb, pf), n1 - n);
    }
  }
}

// out[s] dword t = in[t] dword s (8 x 8 dwords).
inline void transpose8x8(__m256i* r) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

}  // namespace qavx2
}  // namespace
}  // namespace qm::cpu
