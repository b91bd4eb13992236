// AVX-512 qgemm (compiled with AVX-512 F/BW/VL/DQ/VNNI flags; only called when the CPU has them).
//
// GEMV kernels of Q4_0 / Q5_0 / Q8_0 with VNNI (vpdpbusd: unsigned x signed bytes, 4 products per
// int32 lane): 16 weight rows per tile, lanes = rows. They follow the arithmetic contract in
// qgemm_avx2.h (exact int32 block sums, then one fixed float chain per output in block order), so
// their outputs are bit-identical to the AVX2 GEMV and many-token kernels: the many-token path of
// this ISA may mix the kernels freely (qgemm_rows_avx512 below), and batch invariance holds. The
// many-token VNNI kernels (lanes = 16 tokens) are in qgemm_gemm_avx512.cc.
//
// Per block and 16 rows: four zmm, vector j holding rows j, 4+j, 8+j, 12+j in its 128-bit lanes
// (Q8_0: pairs of 256-bit rows folded to that layout); vpdpbusd against the broadcast activations
// gives each row 4 int32 partial sums; one transposing unpack/add tree (reduce4) turns the four
// vectors into the 16 rows' block sums in row order; the weight offset (−8 / −16 / −128) comes off
// as a per-token precomputed offset·Σx. Then cvt, one mul (the 16 rows' scales x the block's
// activation scale) and one FMA for all 16 rows. Other block types reuse the AVX2 kernels.
#include <immintrin.h>

#include <vector>

#include "matmul.h"
#include "qgemm.h"
#include "qgemm_avx2.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

using namespace qavx2;

namespace {

// The 128-bit chunks at off of rows r[j], r[4+j], r[8+j], r[12+j], in lanes 0..3.
inline __m512i load_rows4(const uint8_t* const* r, int j, int64_t off) {
  __m512i v = _mm512_castsi128_si512(loadu128(r[j] + off));
  v = _mm512_inserti32x4(v, loadu128(r[4 + j] + off), 1);
  v = _mm512_inserti32x4(v, loadu128(r[8 + j] + off), 2);
  return _mm512_inserti32x4(v, loadu128(r[12 + j] + off), 3);
}

// a[j] lane k (4 x int32) = partial sums of row 4k+j  ->  lane 4k+j of the result = that row's sum.
inline __m512i reduce4(const __m512i* a) {
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

// The 16 halves at r[i] + off as 16 floats (assembled in general registers, see gather_h8).
inline __m512 gather_h16(const uint8_t* const* r, int64_t off) {
  uint64_t q[4];
  for (int g = 0; g < 4; ++g) {
    const uint8_t* const* p = r + 4 * g;
    q[g] = uint64_t{ld16(p[0] + off)} | uint64_t{ld16(p[1] + off)} << 16 | uint64_t{ld16(p[2] + off)} << 32 |
           uint64_t{ld16(p[3] + off)} << 48;
  }
  asm("" : "+r"(q[0]), "+r"(q[1]), "+r"(q[2]), "+r"(q[3]));
  const __m128i lo = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(q[0])), static_cast<long long>(q[1]), 1);
  const __m128i hi = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(q[2])), static_cast<long long>(q[3]), 1);
  return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// Rows of a 16-row tile starting at n (rows past n1 repeat row n1 - 1; their outputs are dropped).
inline void tile_rows16(const uint8_t* w, int64_t wrb, int64_t n, int64_t n1, const uint8_t** r) {
  for (int i = 0; i < 16; ++i) r[i] = w + (n + i < n1 ? n + i : n1 - 1) * wrb;
}

inline void store_rows16(float* y, __m512 v, int64_t count) {
  if (count >= 16) {
    _mm512_storeu_ps(y, v);
    return;
  }
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << count) - 1), v);
}

// Bounds: x in [−127, 127]; vpdpbusd lanes sum 4 products of u8 x s8 into int32 (no saturation in
// the VNNI non-"s" form; |partials| <= 8·255·127 here), all far inside int32.

// Q4_0: q = nibble in [0, 15], block sum Σ(q − 8)·x = Σ q·x − 8·Σx.
struct ZQ4_0 {
  static constexpr int64_t kWBytes = 18, kXBytes = 34, kOffset = 8;
  static __m512 gemv16(const uint8_t* const* r, const uint8_t* x, const int32_t* corr, int64_t nb, const uint8_t* pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const int64_t off = b * kWBytes;
      prefetch_next<16 * kWBytes>(pf, b);
      const __m512i xl = _mm512_broadcast_i32x4(loadu128(xb + 2)), xh = _mm512_broadcast_i32x4(loadu128(xb + 18));
      __m512i a[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i q = load_rows4(r, j, off + 2);
        const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        a[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
      }
      const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(reduce4(a), _mm512_set1_epi32(corr[b])));
      const __m512 d = _mm512_mul_ps(gather_h16(r, off), _mm512_set1_ps(h2f(ld16(xb))));
      acc = _mm512_fmadd_ps(s, d, acc);
    }
    return acc;
  }
};

// Q5_0: q = nibble | (qh bit) << 4 in [0, 31], block sum Σ q·x − 16·Σx. The fifth bits of the four
// rows in a vector become one 64-bit byte mask (lane k = row k's 16 bits), added as +16.
struct ZQ5_0 {
  static constexpr int64_t kWBytes = 22, kXBytes = 34, kOffset = 16;
  static __m512 gemv16(const uint8_t* const* r, const uint8_t* x, const int32_t* corr, int64_t nb, const uint8_t* pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const int64_t off = b * kWBytes;
      prefetch_next<16 * kWBytes>(pf, b);
      const __m512i xl = _mm512_broadcast_i32x4(loadu128(xb + 2)), xh = _mm512_broadcast_i32x4(loadu128(xb + 18));
      __m512i a[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        uint64_t mlo = 0, mhi = 0;
        for (int k = 0; k < 4; ++k) {
          const uint64_t h = ld32(r[4 * k + j] + off + 2);
          mlo |= (h & 0xFFFF) << (16 * k);
          mhi |= (h >> 16) << (16 * k);
        }
        const __m512i q = load_rows4(r, j, off + 6);
        __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        lo = _mm512_mask_blend_epi8(_cvtu64_mask64(mlo), lo, _mm512_or_si512(lo, b4));
        hi = _mm512_mask_blend_epi8(_cvtu64_mask64(mhi), hi, _mm512_or_si512(hi, b4));
        a[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
      }
      const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(reduce4(a), _mm512_set1_epi32(corr[b])));
      const __m512 d = _mm512_mul_ps(gather_h16(r, off), _mm512_set1_ps(h2f(ld16(xb))));
      acc = _mm512_fmadd_ps(s, d, acc);
    }
    return acc;
  }
};

// Q8_0: w XOR 0x80 = w + 128 as unsigned bytes, block sum Σ(w + 128)·x − 128·Σx. Two rows per zmm
// (256-bit halves, 8 partials each), folded to the 4-rows-of-4-partials layout of reduce4.
struct ZQ8_0 {
  static constexpr int64_t kWBytes = 34, kXBytes = 34, kOffset = 128;
  static __m512i load_rows2(const uint8_t* ra, const uint8_t* rb, int64_t off) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(ra + off)), loadu(rb + off), 1);
  }
  static __m512 gemv16(const uint8_t* const* r, const uint8_t* x, const int32_t* corr, int64_t nb, const uint8_t* pf) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const int64_t off = b * kWBytes;
      prefetch_next<16 * kWBytes>(pf, b);
      const __m512i xv = _mm512_broadcast_i64x4(loadu(xb + 2));
      __m512i a[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        // rows (j, 4+j) and (8+j, 12+j): lanes [row, row | row, row] of 8 partials each
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(load_rows2(r[j], r[4 + j], off + 2), flip), xv);
        const __m512i q = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(load_rows2(r[8 + j], r[12 + j], off + 2), flip), xv);
        a[j] = _mm512_add_epi32(_mm512_shuffle_i64x2(p, q, 0x88), _mm512_shuffle_i64x2(p, q, 0xDD));
      }
      const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(reduce4(a), _mm512_set1_epi32(corr[b])));
      const __m512 d = _mm512_mul_ps(gather_h16(r, off), _mm512_set1_ps(h2f(ld16(xb))));
      acc = _mm512_fmadd_ps(s, d, acc);
    }
    return acc;
  }
};

// offset·Σx per block of one Q8_0 activation row (exact int32).
inline void offset_sums(const uint8_t* x, int64_t nb, int32_t offset, int32_t* out) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xv = loadu(x + b * 34 + 2);
    // Σx via vpdpbusd(1, x): 8 lanes of 4-sums
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, xv);
    out[b] = offset * hsum_i32(s);
  }
}

template <class Z>
void run_gemv16(const void* w, const void* xq, float* y, int64_t T, int64_t nb, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t kTokTile = 16;
  const int64_t wrb = nb * Z::kWBytes, arb = nb * Z::kXBytes;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  std::vector<int32_t> corr(static_cast<size_t>(T * nb));
  for (int64_t t = 0; t < T; ++t) offset_sums(xb + t * arb, nb, Z::kOffset, corr.data() + t * nb);
  const int64_t first = std::min<int64_t>(16, n1 - n0) * wrb;
  for (int64_t k = 0; k < first; k += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + n0 * wrb + k), _MM_HINT_T0);
  const uint8_t* rows[16];
  for (int64_t t0 = 0; t0 < T; t0 += kTokTile) {
    const int64_t t1 = std::min(t0 + kTokTile, T);
    for (int64_t n = n0; n < n1; n += 16) {
      tile_rows16(wb, wrb, n, n1, rows);
      const uint8_t* pf = wb + (n + 16) * wrb;  // the next tile (prefetch never faults)
      for (int64_t t = t0; t < t1; ++t, pf = nullptr)
        store_rows16(y + t * ldy + n, Z::gemv16(rows, xb + t * arb, corr.data() + t * nb, nb, pf), n1 - n);
    }
  }
}

}  // namespace

// qgemm_gemm_avx512.cc
int64_t qgemm_gemm_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                          int64_t n0, int64_t n1);

void qgemm_rows_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16: {
      MatmulArgs a{static_cast<const float*>(xq), w, wtype, y, T, K, ldy};
      matmul_rows_avx512(a, n0, n1);
      return;
    }
    default: break;
  }
  // Every kernel below obeys the contract of qgemm_avx2.h, so a token's bits do not depend on which
  // one computes it. 32-element block types and Q4_K / Q5_K / Q6_K: groups of 16 tokens in the VNNI
  // many-token kernel, the rest (fewer than a padded group is worth) in the GEMV kernels (AVX-512 for
  // Q4_0 / Q5_0 / Q8_0, else AVX2). Q2_K / Q3_K: the AVX2 kernels.
  switch (wtype) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::Q4_1: case DType::Q5_1: break;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: break;
    default: return qgemm_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
  const int64_t done = qgemm_gemm_avx512(wtype, w, xq, y, T, K, ldy, n0, n1);
  if (done >= T) return;
  xq = static_cast<const uint8_t*>(xq) + done * act_row_bytes(wtype, K);
  y += done * ldy;
  T -= done;
  const int64_t nb = K / 32;
  switch (wtype) {
    case DType::Q4_0: return run_gemv16<ZQ4_0>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q5_0: return run_gemv16<ZQ5_0>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q8_0: return run_gemv16<ZQ8_0>(w, xq, y, T, nb, ldy, n0, n1);
    default: return qgemm_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
}

void quantize_act_row_avx512(DType wtype, const float* x, void* out, int64_t K) {
  quantize_act_row_avx2(wtype, x, out, K);
}

}  // namespace qm::cpu
