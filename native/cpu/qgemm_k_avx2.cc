// AVX2 GEMV kernels of the K-quants (256-element super-blocks, activations Q8_K), 8 weight rows per
// call (lanes = rows), following the arithmetic contract in qgemm_avx2.h: per super-block the
// exact int32 isum = Σ_j scale_j·Σ q·x (offsets included) and, for Q2_K / Q4_K / Q5_K, the exact
// summ = Σ_j min_j·bsum_j; then acc = fma(isum, d·dx, acc) and acc = fnmadd(summ, dmin·dx, acc).
//
// vpmaddubsw over unsigned quants (the only multiplier port of the target CPUs is the bottleneck);
// int16 partial sums of neighbouring sub-blocks are merged by unpack/add levels before vpmaddwd
// applies the sub-block scales, so one vpmaddwd covers 2-4 sub-blocks (bounds stated per type). Each
// row ends as 4 int32 lanes; an int32 transpose tree gives the 8 rows' sums at once.
#include "qgemm_avx2.h"
#include "qgemm.h"
#include "quants.h"

namespace qm::cpu {

using namespace qavx2;

namespace {

constexpr int64_t kQ8K = 292;  // sizeof(block_q8_K): d (float), qs[256], bsums[16] (int16)

// Q4_K / Q5_K 6-bit scales and mins of a super-block (llama.cpp's utmp arithmetic, the same values
// as get_scale_min_k4): *sc = 8 x int16 scales, *mn = 8 x int16 mins.
inline void k4_scales(const uint8_t* s12, __m128i* sc, __m128i* mn) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  uint32_t u[3];
  std::memcpy(u, s12, 12);
  const uint32_t s0 = u[0] & kmask1;
  const uint32_t s1 = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  const uint32_t m0 = u[1] & kmask1;
  const uint32_t m1 = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  *sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(uint64_t{s0} | uint64_t{s1} << 32)));
  *mn = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(uint64_t{m0} | uint64_t{m1} << 32)));
}

// Sums of the Q8_K bsums in pairs: 8 x int16 sums of 32 activations (|.| <= 32·127).
inline __m128i bsum_pairs(const uint8_t* xb) {
  const __m256i bs = loadu(xb + 260);
  return _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
}

// Q4_K (144 bytes: d, dmin, scales[12], qs[128]) and Q5_K (176: d, dmin, scales[12], qh[32], qs[128]).
// Per row: v_j = the 8 int16 lanes of sub-block j (two vpmaddubsw over unsigned quants: 4 products
// per lane, <= 4·31·127), then one unpack/add level pairing sub-blocks (lanes j0 j1 j0 j1 ..., 8
// products: Q5_K <= 8·31·127 < 32768) and, for Q4_K (q <= 15), a second level (lanes j0 j1 j2 j3
// ..., <= 16·15·127): the 6-bit scales are then applied by 2 (Q4_K) or 4 (Q5_K) vpmaddwd per row
// and super-block instead of 8.
template <bool kFive>
struct KQ45_K {
  static constexpr int64_t kWBytes = kFive ? 176 : 144, kXBytes = kQ8K;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m128i m4 = _mm_set1_epi8(0x0F), b4 = _mm_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m128i bp = bsum_pairs(xb);
      __m128i vi[8], vm[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* blk = r[i] + off;
        __m128i sc, mn;
        k4_scales(blk + 4, &sc, &mn);
        const uint8_t* qs = blk + (kFive ? 48 : 16);
        __m128i ha = _mm_setzero_si128(), hb = ha;
        if (kFive) {
          ha = loadu128(blk + 16);
          hb = loadu128(blk + 32);
        }
        __m128i v[8];
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          const __m128i qa = loadu128(qs + 32 * c), qb = loadu128(qs + 32 * c + 16);
          __m128i la = _mm_and_si128(qa, m4), lb = _mm_and_si128(qb, m4);
          __m128i ua = _mm_and_si128(_mm_srli_epi16(qa, 4), m4), ub = _mm_and_si128(_mm_srli_epi16(qb, 4), m4);
          if (kFive) {
            // qh bit 2c -> bit 4 of the low-nibble quants, bit 2c+1 -> bit 4 of the high ones
            la = _mm_or_si128(la, _mm_and_si128(c < 2 ? _mm_slli_epi16(ha, 4 - 2 * c) : _mm_srli_epi16(ha, 2 * c - 4), b4));
            lb = _mm_or_si128(lb, _mm_and_si128(c < 2 ? _mm_slli_epi16(hb, 4 - 2 * c) : _mm_srli_epi16(hb, 2 * c - 4), b4));
            ua = _mm_or_si128(ua, _mm_and_si128(c < 2 ? _mm_slli_epi16(ha, 3 - 2 * c) : _mm_srli_epi16(ha, 2 * c - 3), b4));
            ub = _mm_or_si128(ub, _mm_and_si128(c < 2 ? _mm_slli_epi16(hb, 3 - 2 * c) : _mm_srli_epi16(hb, 2 * c - 3), b4));
          }
          const uint8_t* xc = xq + 64 * c;
          v[2 * c] = _mm_add_epi16(_mm_maddubs_epi16(la, loadu128(xc)), _mm_maddubs_epi16(lb, loadu128(xc + 16)));
          v[2 * c + 1] = _mm_add_epi16(_mm_maddubs_epi16(ua, loadu128(xc + 32)), _mm_maddubs_epi16(ub, loadu128(xc + 48)));
        }
        const __m128i a01 = _mm_add_epi16(_mm_unpacklo_epi16(v[0], v[1]), _mm_unpackhi_epi16(v[0], v[1]));
        const __m128i a23 = _mm_add_epi16(_mm_unpacklo_epi16(v[2], v[3]), _mm_unpackhi_epi16(v[2], v[3]));
        const __m128i a45 = _mm_add_epi16(_mm_unpacklo_epi16(v[4], v[5]), _mm_unpackhi_epi16(v[4], v[5]));
        const __m128i a67 = _mm_add_epi16(_mm_unpacklo_epi16(v[6], v[7]), _mm_unpackhi_epi16(v[6], v[7]));
        if (kFive) {  // lanes <= 2·4·31·127 < 32768 after one level; scale pairs (j, j+1) per dword
          vi[i] = _mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(a01, _mm_shuffle_epi32(sc, 0x00)), _mm_madd_epi16(a23, _mm_shuffle_epi32(sc, 0x55))),
                                _mm_add_epi32(_mm_madd_epi16(a45, _mm_shuffle_epi32(sc, 0xAA)), _mm_madd_epi16(a67, _mm_shuffle_epi32(sc, 0xFF))));
        } else {
          const __m128i b03 = _mm_add_epi16(_mm_unpacklo_epi32(a01, a23), _mm_unpackhi_epi32(a01, a23));
          const __m128i b47 = _mm_add_epi16(_mm_unpacklo_epi32(a45, a67), _mm_unpackhi_epi32(a45, a67));
          vi[i] = _mm_add_epi32(_mm_madd_epi16(b03, _mm_unpacklo_epi64(sc, sc)), _mm_madd_epi16(b47, _mm_unpackhi_epi64(sc, sc)));
        }
        vm[i] = _mm_madd_epi16(mn, bp);
      }
      const __m256 dx = _mm256_set1_ps(ldf(xb));
      __m256 dw, dmw;
      gather_hh8(r, off, &dw, &dmw);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tree32(vi)), _mm256_mul_ps(dw, dx), acc);
      acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(tree32(vm)), _mm256_mul_ps(dmw, dx), acc);
    }
    return acc;
  }
};

// 16-element sub-blocks (Q2_K, Q3_K, Q6_K): p[k] (k = 0..3) holds the int16 pair sums of sub-blocks
// 2k (low lane) and 2k+1 (high lane) of a 128-element half whose 8 scales are y = [s0..s7 | s0..s7]
// (int16). One unpack/add level merges p[k], p[k+1] into lanes alternating sub-blocks (2k, 2k+2)
// (low) and (2k+1, 2k+3) (high), so one vpmaddwd applies 4 scales: two vpmaddwd per half instead of
// four. Needs pair sums <= 16383 (Q6_K: 2·63·127). Returns the 8 int32 lanes to accumulate.
// (The masks are plain data: no vector constants at namespace scope, since static initializers
// run even on CPUs without AVX2.)
alignas(32) constexpr uint8_t kScalePairMask[2][32] = {
    {0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7, 2, 3, 6, 7, 2, 3, 6, 7},
    {8, 9, 12, 13, 8, 9, 12, 13, 8, 9, 12, 13, 8, 9, 12, 13, 10, 11, 14, 15, 10, 11, 14, 15, 10, 11, 14, 15, 10, 11, 14, 15}};
inline __m256i scale_pairs(const __m256i* p, __m256i y) {
  const __m256i a01 = _mm256_add_epi16(_mm256_unpacklo_epi16(p[0], p[1]), _mm256_unpackhi_epi16(p[0], p[1]));
  const __m256i a23 = _mm256_add_epi16(_mm256_unpacklo_epi16(p[2], p[3]), _mm256_unpackhi_epi16(p[2], p[3]));
  return _mm256_add_epi32(_mm256_madd_epi16(a01, _mm256_shuffle_epi8(y, loadu(kScalePairMask[0]))),
                          _mm256_madd_epi16(a23, _mm256_shuffle_epi8(y, loadu(kScalePairMask[1]))));
}

// Q6_K (210 bytes: ql[128], qh[64], scales[16] int8, d): q in [0, 63] (offset −32 applied as
// −32·Σ_j scale_j·bsum_j), pairs <= 2·63·127; 16-element sub-blocks, one per 128-bit lane.
struct KQ6_K {
  static constexpr int64_t kWBytes = 210, kXBytes = kQ8K;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m256i bs = loadu(xb + 260);
      __m128i vi[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* blk = r[i] + off;
        const __m128i sc8 = loadu128(blk + 192);
        const __m128i s_lo = _mm_cvtepi8_epi16(sc8), s_hi = _mm_cvtepi8_epi16(_mm_unpackhi_epi64(sc8, sc8));
        const __m256i y0 = _mm256_set_m128i(s_lo, s_lo), y1 = _mm256_set_m128i(s_hi, s_hi);
        __m256i is = _mm256_sub_epi32(_mm256_setzero_si256(),
                                      _mm256_slli_epi32(_mm256_madd_epi16(_mm256_set_m128i(s_hi, s_lo), bs), 5));
#pragma GCC unroll 2
        for (int n = 0; n < 2; ++n) {
          const __m256i qh = loadu(blk + 128 + 32 * n);
          const __m256i l0 = loadu(blk + 64 * n), l1 = loadu(blk + 64 * n + 32);
          __m256i q[4];
          q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
          q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
          q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
          q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
          const __m256i y = n ? y1 : y0;
          // p[k]: low lane = sub-block 8n+2k, high lane = 8n+2k+1 (int16 pairs <= 2·63·127). One
          // unpack/add level pairs sub-blocks k, k+1 (sums <= 4·63·127 < 32768), so one vpmaddwd
          // applies the scales of 4 sub-blocks: [s(2k) s(2k+2) ... | s(2k+1) s(2k+3) ...].
          __m256i p[4];
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) p[k] = _mm256_maddubs_epi16(q[k], loadu(xq + 128 * n + 32 * k));
          is = _mm256_add_epi32(is, scale_pairs(p, y));
        }
        vi[i] = fold32(is);
      }
      const __m256 d = _mm256_mul_ps(gather_h8(r, off + 208), _mm256_set1_ps(ldf(xb)));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tree32(vi)), d, acc);
    }
    return acc;
  }
};

// The 16 Q3_K scales (6 bits, minus 32) as int8: q3k_scales (quants_k.cc) inlined.
inline __m128i q3k_scales16(const uint8_t* packed12) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t a[3];
  std::memcpy(a, packed12, 12);
  const uint32_t s0 = (a[0] & kmask2) | ((a[2] & kmask1) << 4);
  const uint32_t s1 = (a[1] & kmask2) | (((a[2] >> 2) & kmask1) << 4);
  const uint32_t s2 = ((a[0] >> 4) & kmask2) | (((a[2] >> 4) & kmask1) << 4);
  const uint32_t s3 = ((a[1] >> 4) & kmask2) | (((a[2] >> 6) & kmask1) << 4);
  const __m128i v = _mm_set_epi32(static_cast<int>(s3), static_cast<int>(s2), static_cast<int>(s1), static_cast<int>(s0));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

// Q3_K (110 bytes: hmask[32], qs[64], scales[12], d): q = 2 bits | hmask bit << 2 in [0, 7], offset
// −4 applied as −4·Σ_j scale_j·bsum_j; signed 6-bit scales (−32..31).
struct KQ3_K {
  static constexpr int64_t kWBytes = 110, kXBytes = kQ8K;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m256i m3 = _mm256_set1_epi8(0x03), m4 = _mm256_set1_epi8(0x04);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m256i bs = loadu(xb + 260);
      __m128i vi[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* blk = r[i] + off;
        const __m128i sc8 = q3k_scales16(blk + 96);
        const __m128i s_lo = _mm_cvtepi8_epi16(sc8), s_hi = _mm_cvtepi8_epi16(_mm_unpackhi_epi64(sc8, sc8));
        const __m256i y0 = _mm256_set_m128i(s_lo, s_lo), y1 = _mm256_set_m128i(s_hi, s_hi);
        __m256i is = _mm256_sub_epi32(_mm256_setzero_si256(),
                                      _mm256_slli_epi32(_mm256_madd_epi16(_mm256_set_m128i(s_hi, s_lo), bs), 2));
        const __m256i hm = loadu(blk);
#pragma GCC unroll 2
        for (int n = 0; n < 2; ++n) {
          const __m256i q2 = loadu(blk + 32 + 32 * n);
          const __m256i y = n ? y1 : y0;
          __m256i p[4];
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            const int hbit = 4 * n + k;  // hmask bit of this group, moved to bit 2
            const __m256i h = hbit >= 2 ? _mm256_srli_epi16(hm, hbit - 2) : _mm256_slli_epi16(hm, 2 - hbit);
            const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3), _mm256_and_si256(h, m4));
            p[k] = _mm256_maddubs_epi16(q, loadu(xq + 128 * n + 32 * k));  // pairs <= 2·7·127
          }
          is = _mm256_add_epi32(is, scale_pairs(p, y));
        }
        vi[i] = fold32(is);
      }
      const __m256 d = _mm256_mul_ps(gather_h8(r, off + 108), _mm256_set1_ps(ldf(xb)));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tree32(vi)), d, acc);
    }
    return acc;
  }
};

// Q2_K (84 bytes: scales[16] (scale | min << 4), qs[64], d, dmin): q in [0, 3].
struct KQ2_K {
  static constexpr int64_t kWBytes = 84, kXBytes = kQ8K;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m256i bs = loadu(xb + 260);
      __m128i vi[8], vm[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* blk = r[i] + off;
        const __m128i raw = loadu128(blk);
        const __m128i sc8 = _mm_and_si128(raw, m4);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        const __m128i s_lo = _mm_cvtepu8_epi16(sc8), s_hi = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sc8, sc8));
        const __m256i y0 = _mm256_set_m128i(s_lo, s_lo), y1 = _mm256_set_m128i(s_hi, s_hi);
        __m256i is = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int n = 0; n < 2; ++n) {
          const __m256i q2 = loadu(blk + 16 + 32 * n);
          const __m256i y = n ? y1 : y0;
          __m256i p[4];
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
            p[k] = _mm256_maddubs_epi16(q, loadu(xq + 128 * n + 32 * k));  // pairs <= 2·3·127
          }
          is = _mm256_add_epi32(is, scale_pairs(p, y));
        }
        vi[i] = fold32(is);
        vm[i] = fold32(_mm256_madd_epi16(mins, bs));
      }
      const __m256 dx = _mm256_set1_ps(ldf(xb));
      const __m256 dw = gather_h8(r, off + 80), dmw = gather_h8(r, off + 82);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tree32(vi)), _mm256_mul_ps(dw, dx), acc);
      acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(tree32(vm)), _mm256_mul_ps(dmw, dx), acc);
    }
    return acc;
  }
};

}  // namespace

bool qgemm_k_rows_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1) {
  const int64_t nb = K / QK_K;
  switch (wtype) {
    case DType::Q2_K: run_gemv_tiles<KQ2_K>(w, xq, y, T, nb, ldy, n0, n1); return true;
    case DType::Q3_K: run_gemv_tiles<KQ3_K>(w, xq, y, T, nb, ldy, n0, n1); return true;
    case DType::Q4_K: run_gemv_tiles<KQ45_K<false>>(w, xq, y, T, nb, ldy, n0, n1); return true;
    case DType::Q5_K: run_gemv_tiles<KQ45_K<true>>(w, xq, y, T, nb, ldy, n0, n1); return true;
    case DType::Q6_K: run_gemv_tiles<KQ6_K>(w, xq, y, T, nb, ldy, n0, n1); return true;
    default: return false;
  }
}

}  // namespace qm::cpu
