// AVX2 qgemm (compiled with -mavx2 -mfma -mf16c; only called when the CPU has them): dispatch and
// the GEMV kernels of the 32-element block types. K-quant GEMV kernels: qgemm_k_avx2.cc; the
// many-token kernels (8 tokens per vector): qgemm_gemm_avx2.cc.
//
// Every kernel follows the arithmetic contract in qgemm_avx2.h: exact int32 sums per block, then
// one fixed float chain per output, so results are bit-identical for any T, tile, thread split or
// kernel (GEMV or GEMM) that computes them.
//
// GEMV kernels work on 8 weight rows at once (lanes = rows). Per block, each row's 32 products go
// through two 128-bit vpmaddubsw (unsigned weight quants x signed activations; on the target CPUs
// the single vector-multiply port is the bottleneck, so every other step avoids it), the weight
// offset (−8 / −16) comes off as a precomputed 8·(x pair sums) shared by the 8 rows, and a
// transposed unpack/add tree reduces the 8 rows' int16 vectors to one vector of 8 exact block sums;
// then one cvt, one mul (the 8 rows' scales, assembled in general registers) and one FMA per block
// for all 8 rows. The next tile's rows are prefetched while a tile runs (see qgemm_avx2.h).
#include "qgemm_avx2.h"

#include <algorithm>

#include "matmul.h"
#include "qgemm.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

using namespace qavx2;

// qgemm_k_avx2.cc / qgemm_gemm_avx2.cc
bool qgemm_k_rows_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1);
int64_t qgemm_gemm_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                        int64_t n0, int64_t n1);

namespace {

// Bounds (x: |x| <= 127 from the activation quantizer; vpmaddubsw pairs must stay < 32768):
// Q4_0: pairs <= 2·15·127; v lanes = Σ of 4 products (q−8)·x, |v| <= 4·8·127 = 4064; 8·4064 < 32768.
struct KQ4_0 {
  static constexpr int64_t kWBytes = 18, kXBytes = 34;
  // The 8 rows' exact block sums Σ(q − 8)·x of block `off`; xb: the activation block.
  static __m256i block_sums(const uint8_t* const* r, int64_t off, const uint8_t* xb) {
    const __m128i m4 = _mm_set1_epi8(0x0F), k8 = _mm_set1_epi8(8);
    const __m128i xl = loadu128(xb + 2), xh = loadu128(xb + 18);
    const __m128i c = _mm_add_epi16(_mm_maddubs_epi16(k8, xl), _mm_maddubs_epi16(k8, xh));
    __m128i v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m128i q = loadu128(r[i] + off + 2);
      const __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
      v[i] = _mm_sub_epi16(_mm_add_epi16(_mm_maddubs_epi16(lo, xl), _mm_maddubs_epi16(hi, xh)), c);
    }
    return _mm256_cvtepi16_epi32(tree16(v));
  }
};

// Q5_0: q = nibble | bit4 in [0, 31], offset −16: pairs <= 2·31·127; |v| <= 4·16·127 = 8128, so the
// tree widens to int32 after two levels (4·8128 < 32768).
struct KQ5_0 {
  static constexpr int64_t kWBytes = 22, kXBytes = 34;
  static __m256i block_sums(const uint8_t* const* r, int64_t off, const uint8_t* xb) {
    const __m128i m4 = _mm_set1_epi8(0x0F), k16 = _mm_set1_epi8(16);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    const __m128i xl = loadu128(xb + 2), xh = loadu128(xb + 18);
    const __m128i c = _mm_add_epi16(_mm_maddubs_epi16(k16, xl), _mm_maddubs_epi16(k16, xh));
    __m128i v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m128i q = loadu128(r[i] + off + 6);
      const __m256i hb = _mm256_and_si256(bytes_from_bits_32(ld32(r[i] + off + 2)), b4);
      const __m128i lo = _mm_or_si128(_mm_and_si128(q, m4), _mm256_castsi256_si128(hb));
      const __m128i hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm256_extracti128_si256(hb, 1));
      v[i] = _mm_sub_epi16(_mm_add_epi16(_mm_maddubs_epi16(lo, xl), _mm_maddubs_epi16(hi, xh)), c);
    }
    return tree16_wide(v);
  }
};

// Q4_1 / Q5_1 (activations Q8_1): Σ q·x = Σ (q − o)·x + o·Σx with o = 8 / 16 as above, then
// acc = fma(Σq·x, d·dx, acc), acc = fma(m, s_x, acc).
template <bool kFive>
struct KQx_1 {
  static constexpr int64_t kWBytes = kFive ? 24 : 20, kXBytes = 36;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m128i m4 = _mm_set1_epi8(0x0F), ko = _mm_set1_epi8(kFive ? 16 : 8);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m128i xl = loadu128(xb + 4), xh = loadu128(xb + 20);
      const __m128i c = _mm_add_epi16(_mm_maddubs_epi16(ko, xl), _mm_maddubs_epi16(ko, xh));
      const int32_t osum = hsum_i32(_mm256_zextsi128_si256(_mm_madd_epi16(c, _mm_set1_epi16(1))));
      __m128i v[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        const __m128i q = loadu128(r[i] + off + (kFive ? 8 : 4));
        __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        if (kFive) {
          const __m256i hb = _mm256_and_si256(bytes_from_bits_32(ld32(r[i] + off + 4)), b4);
          lo = _mm_or_si128(lo, _mm256_castsi256_si128(hb));
          hi = _mm_or_si128(hi, _mm256_extracti128_si256(hb, 1));
        }
        v[i] = _mm_sub_epi16(_mm_add_epi16(_mm_maddubs_epi16(lo, xl), _mm_maddubs_epi16(hi, xh)), c);
      }
      const __m256i si = kFive ? tree16_wide(v) : _mm256_cvtepi16_epi32(tree16(v));
      const __m256 s = _mm256_cvtepi32_ps(_mm256_add_epi32(si, _mm256_set1_epi32(osum)));
      __m256 dw, mw;
      gather_hh8(r, off, &dw, &mw);
      acc = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, _mm256_set1_ps(h2f(ld16(xb)))), acc);
      acc = _mm256_fmadd_ps(mw, _mm256_set1_ps(h2f(ld16(xb + 2))), acc);
    }
    return acc;
  }
};

// Q8_0: sign trick |w| x sign(x, w) (pairs <= 2·128·127 < 32768 even for w = −128), vpmaddwd to
// int32, fold to 4 lanes, int32 tree.
struct KQ8_0 {
  static constexpr int64_t kWBytes = 34, kXBytes = 34;
  static __m256i block_sums(const uint8_t* const* r, int64_t off, const uint8_t* xb) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i xv = loadu(xb + 2);
    __m128i v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m256i wv = loadu(r[i] + off + 2);
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
      v[i] = fold32(_mm256_madd_epi16(p, ones));
    }
    return tree32(v);
  }
};

// GEMV of the 8 rows for Q4_0 / Q5_0 / Q8_0 (no min term): K::block_sums per block, then the
// contract's float chain acc = fma(float(isum_b), fl(dw_b · dx_b), acc), written only here.
template <class K>
struct Gemv8 {
  static constexpr int64_t kWBytes = K::kWBytes, kXBytes = K::kXBytes;
  static __m256 gemv8(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const int64_t off = b * kWBytes;
      prefetch_next<8 * kWBytes>(pf, b);
      const __m256 s = _mm256_cvtepi32_ps(K::block_sums(r, off, xb));
      const __m256 d = _mm256_mul_ps(gather_h8(r, off), _mm256_set1_ps(h2f(ld16(xb))));
      acc = _mm256_fmadd_ps(s, d, acc);
    }
    return acc;
  }
};

}  // namespace

double read_sum_f32_avx2(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  const __m256 s8 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(s8, 1), _mm256_castps256_ps128(s8));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  double s = _mm_cvtss_f32(r);
  for (; i < n; ++i) s += x[i];
  return s;
}

void qgemm_rows_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                     int64_t n0, int64_t n1) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16: {
      MatmulArgs a{static_cast<const float*>(xq), w, wtype, y, T, K, ldy};
      matmul_rows_avx2(a, n0, n1);
      return;
    }
    default: break;
  }
  // Full groups of 8 tokens (and a nearly full last group) in the many-token kernels, the rest (and
  // T < 5) in the GEMV kernels: the contract in qgemm_avx2.h makes both give the same bits.
  const int64_t done = qgemm_gemm_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
  if (done >= T) return;
  xq = static_cast<const uint8_t*>(xq) + done * act_row_bytes(wtype, K);
  y += done * ldy;
  T -= done;
  if (qgemm_k_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1)) return;
  const int64_t nb = K / 32;
  switch (wtype) {
    case DType::Q4_0: return run_gemv_tiles<Gemv8<KQ4_0>>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q4_1: return run_gemv_tiles<KQx_1<false>>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q5_0: return run_gemv_tiles<Gemv8<KQ5_0>>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q5_1: return run_gemv_tiles<KQx_1<true>>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q8_0: return run_gemv_tiles<Gemv8<KQ8_0>>(w, xq, y, T, nb, ldy, n0, n1);
    default: return qgemm_rows_scalar(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
}

}  // namespace qm::cpu
