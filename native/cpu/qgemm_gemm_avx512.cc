// AVX-512 VNNI many-token qgemm for the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and
// Q4_K / Q5_K / Q6_K (GK16 below):
// groups of 16 tokens, lanes = tokens. Same call contract as qgemm_gemm_avx2 (qgemm_gemm_avx2.cc):
// it computes tokens [0, returned) of y (full groups of 16 and, padded, a last group with enough
// tokens: kMinLast / kMinAlone below) and the caller finishes the rest with the AVX2 many-token and
// GEMV kernels. Other weight types (Q2_K, Q3_K, ...) return 0.
//
// A port of the G32 path of qgemm_gemm_avx2.cc: each weight row is expanded once per call into
// unsigned quant bytes in element order (Q4_0 q in [0, 15], Q5_0 / Q5_1 [0, 31], Q4_1 [0, 15],
// Q8_0 w + 128 = w ^ 0x80 in [0, 255]) plus its scales as floats; each group of 16 tokens'
// activations is transposed once so that one zmm holds 4 consecutive activations of each of the 16
// tokens (8 steps per block), with dx[16] and nc[16] = −offset·Σx (offset 8 / 16 / 128; Q4_1 / Q5_1:
// the Q8_1 sums sx[16] instead). Per block, row and group:
//   isum = nc + Σ_steps vpdpbusd(bcast(4 quant bytes of the row), step)   (exact int32)
//   acc  = fma(float(isum), fl(dw·dx), acc)   (+ acc = fma(mw, sx, acc) for Q4_1 / Q5_1)
// which is the float chain of the contract in qgemm_avx2.h with the 16 tokens in the lanes, so a
// token's outputs are bit-identical to the AVX2 GEMM / GEMV kernels (and to any other group or T).
// Bounds: vpdpbusd (unsigned x signed bytes, no saturation) adds 4 products of magnitude
// <= 255·127 per lane and step; a block's isum is <= 32·255·127 + 128·32·127 < 2^21 in magnitude.
// Partial groups are padded with zero activations (dx = 0) whose outputs are discarded; rows past
// the range repeat the last row (outputs discarded).
//
// Kernels: 4 rows x 3 groups (48 tokens) per tile, so per 4 weights 3 activation loads, 4 weight
// broadcasts and 12 vpdpbusd; per block and (row, group) 8 vpdpbusd next to 3 float ops (cvt, mul,
// fma), all on the two 512-bit ports. Leftover pairs run 4 x 2, a lone group 8 rows x 1. Blocks run
// in passes of kKB so that the group triple's activations stay in L1 across the chunk's row tiles;
// outputs leave through 16 x 16 transposes as whole rows of y (scattered scalar stores cost ~10%).
// Single thread, [1024, 2048], T = 256 on Sapphire Rapids: ~2.1x qgemm_gemm_avx2 for Q4_0 / Q5_0,
// ~3.8x for Q8_0 (the AVX2 Q8_0 path needs a sign trick and int16 widening per step).
// GCC 12 at -O3 reports the _mm512_undefined_*() pass-through operands inside avx512fintrin.h
// (cvtepi32_ps, unpacks, gathers, ...) as "may be used uninitialized": a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <vector>

#include "qgemm.h"
#include "qgemm_avx2.h"
#include "quants.h"
#include "repack.h"

namespace qm::cpu {

using namespace qavx2;

namespace {

// Valid tokens a partial group needs to be computed here (padded to 16) rather than left to the
// caller's GEMV kernels: kMinLast for a last group after full ones (the rows are expanded anyway;
// a padded group costs about 3 AVX-512 GEMV tokens), kMinAlone when it is the only group (it also
// pays the row expansion: about 5 to 6 GEMV tokens). Measured single-threaded at [1024, 2048]
// Q4_0 through qgemm_rows_avx512, weights hot (L2 / L3) and cold (DRAM).
constexpr int64_t kMinLast = 3, kMinAlone = 6;

inline __m512i loadu512(const void* p) { return _mm512_loadu_si512(p); }
inline __m512 loadu512f(const void* p) { return _mm512_loadu_ps(static_cast<const float*>(p)); }


// Transposes 32 activation bytes of each of 16 tokens (p[t], nullptr = zeros) to 8 steps of 64
// bytes at dst.
inline void put_steps16(const uint8_t* const* p, uint8_t* dst) {
  __m256i lo[8], hi[8];
  for (int t = 0; t < 8; ++t) {
    lo[t] = p[t] ? loadu(p[t]) : _mm256_setzero_si256();
    hi[t] = p[t + 8] ? loadu(p[t + 8]) : _mm256_setzero_si256();
  }
  transpose8x8(lo);
  transpose8x8(hi);
  for (int s = 0; s < 8; ++s) _mm512_storeu_si512(dst + 64 * s, _mm512_inserti64x4(_mm512_zextsi256_si512(lo[s]), hi[s], 1));
}

// r[i] lane t -> r[t] lane i (16 x 16 floats).
inline void transpose16x16(__m512* r) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // b[4m + c], 128-bit lane k: rows 4m..4m+3 of token 4k + c
  for (int m = 0; m < 4; ++m) {
    const __m512d a0 = _mm512_castps_pd(a[4 * m]), a1 = _mm512_castps_pd(a[4 * m + 1]);
    const __m512d a2 = _mm512_castps_pd(a[4 * m + 2]), a3 = _mm512_castps_pd(a[4 * m + 3]);
    b[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    b[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    b[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    b[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 x = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88), y = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
    const __m512 x2 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xDD), y2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(x, y, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(x, y, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(x2, y2, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(x2, y2, 0xDD);
  }
}

enum class B32 { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 };

// Group layout per block (kXB bytes): steps[8][64] (transposed x: step s, dword t = x[4s..4s+3] of
// token t), dx[16] (float), then nc[16] (int32: −offset·Σx; Q4_0 / Q5_0 / Q8_0) or sx[16] (float:
// the Q8_1 sums s; Q4_1 / Q5_1).
// Row layout (row_bytes(nb)): unsigned quant bytes u[nb][32] in element order (Q8_0: w + 128),
// then dw[nb] and, for Q4_1 / Q5_1, mw[nb] (float).
template <B32 kT>
struct G16 {
  static constexpr bool kMin = kT == B32::Q4_1 || kT == B32::Q5_1;  // Q8_1 activations, min term
  static constexpr bool kFive = kT == B32::Q5_0 || kT == B32::Q5_1;
  static constexpr int64_t kWBytes = kT == B32::Q4_0 ? 18 : kT == B32::Q4_1 ? 20 : kT == B32::Q5_0 ? 22 : kT == B32::Q5_1 ? 24 : 34;
  static constexpr int64_t kXBytes = kMin ? 36 : 34;
  static constexpr int64_t kXB = 512 + 64 + 64;
  static constexpr int64_t row_bytes(int64_t nb) { return nb * (32 + (kMin ? 8 : 4)); }
  static constexpr int kOffset = kT == B32::Q4_0 ? 8 : kT == B32::Q5_0 ? 16 : kT == B32::Q8_0 ? 128 : 0;
  static constexpr int64_t kKB = 12, kMinLastG = kMinLast, kMinAloneG = kMinAlone;  // driver tuning

  static void prep_group(const uint8_t* xq, int64_t arb, int64_t nvalid, int64_t nb, uint8_t* dst) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* g = dst + b * kXB;
      const uint8_t* p[16];
      alignas(64) float dx[16], sx[16];
      for (int t = 0; t < 16; ++t) {
        const uint8_t* xb = t < nvalid ? xq + t * arb + b * kXBytes : nullptr;
        p[t] = xb ? xb + (kMin ? 4 : 2) : nullptr;
        dx[t] = xb ? h2f(ld16(xb)) : 0.0f;
        sx[t] = xb && kMin ? h2f(ld16(xb + 2)) : 0.0f;
      }
      put_steps16(p, g);
      _mm512_storeu_ps(g + 512, _mm512_load_ps(dx));
      if (kMin) {
        _mm512_storeu_ps(g + 576, _mm512_load_ps(sx));
      } else {
        // −offset·Σx per token lane (Σx exact via vpdpbusd(ones, x): |Σx| <= 32·127).
        __m512i sum = _mm512_setzero_si512();
        for (int s = 0; s < 8; ++s) sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8(1), loadu512(g + 64 * s));
        _mm512_storeu_si512(g + 576, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-kOffset)));
      }
    }
  }

  static constexpr int64_t kQs = kT == B32::Q4_0 ? 2 : kT == B32::Q4_1 ? 4 : kT == B32::Q5_0 ? 6 : kT == B32::Q5_1 ? 8 : 2;

  // One weight row: its block b's d (and m) at w + b·bstride, its quants at kQs bytes further, or
  // (r16 layout, repack.h: w = the tile + the row's scale offset, bstride = 16 blocks) at qs.
  static void expand_row(const uint8_t* w, int64_t nb, uint8_t* e, int64_t bstride = kWBytes, int64_t qs = kQs) {
    float* dw = reinterpret_cast<float*>(e + nb * 32);
    float* mw = dw + nb;
    int64_t b = 0;
    // Scales of 16 blocks at a time: gather the 4 bytes at each block start (d, then m or quants),
    // keep the low (d) / high (m) halves, convert (the same vcvtph2ps as h2f).
    const __m512i hidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(static_cast<int>(bstride)));
    for (; b + 16 <= nb; b += 16) {
      const __m512i h = _mm512_i32gather_epi32(hidx, w + b * bstride, 1);
      _mm512_storeu_ps(dw + b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
      if (kMin) _mm512_storeu_ps(mw + b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h, 16))));
    }
    for (; b < nb; ++b) {
      dw[b] = h2f(ld16(w + b * bstride));
      if (kMin) mw[b] = h2f(ld16(w + b * bstride + 2));
    }
    if (kT == B32::Q8_0) {
      const __m256i k80 = _mm256_set1_epi8(static_cast<char>(0x80));
      for (b = 0; b < nb; ++b)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + b * 32), _mm256_xor_si256(loadu(w + b * bstride + qs), k80));
      return;
    }
    // 4 blocks at a time: nibbles of blocks b..b+3 in the 4 128-bit lanes, then the low / high
    // halves interleaved back into element order (block b: lo_b then hi_b).
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    const __m512i ia = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), ib = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (b = 0; b + 4 <= nb; b += 4) {
      const uint8_t* blk = w + b * bstride;
      __m512i v = _mm512_castsi128_si512(loadu128(blk + qs));
      v = _mm512_inserti32x4(v, loadu128(blk + bstride + qs), 1);
      v = _mm512_inserti32x4(v, loadu128(blk + 2 * bstride + qs), 2);
      v = _mm512_inserti32x4(v, loadu128(blk + 3 * bstride + qs), 3);
      const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      __m512i o0 = _mm512_permutex2var_epi64(lo, ia, hi), o1 = _mm512_permutex2var_epi64(lo, ib, hi);
      if (kFive) {  // bit j of qh -> +16 on element j (plain layout only)
        const __mmask64 k0 = _cvtu64_mask64(uint64_t{ld32(blk + kQs - 4)} | uint64_t{ld32(blk + bstride + kQs - 4)} << 32);
        const __mmask64 k1 = _cvtu64_mask64(uint64_t{ld32(blk + 2 * bstride + kQs - 4)} | uint64_t{ld32(blk + 3 * bstride + kQs - 4)} << 32);
        o0 = _mm512_mask_add_epi8(o0, k0, o0, b4);
        o1 = _mm512_mask_add_epi8(o1, k1, o1, b4);
      }
      _mm512_storeu_si512(e + b * 32, o0);
      _mm512_storeu_si512(e + b * 32 + 64, o1);
    }
    const __m128i m4x = _mm_set1_epi8(0x0F);
    for (; b < nb; ++b) {
      const uint8_t* blk = w + b * bstride;
      uint8_t* o = e + b * 32;
      const __m128i q = loadu128(blk + qs);
      __m128i lo = _mm_and_si128(q, m4x), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4x);
      if (kFive) {
        const __m256i hb = _mm256_and_si256(bytes_from_bits_32(ld32(blk + kQs - 4)), _mm256_set1_epi8(0x10));
        lo = _mm_or_si128(lo, _mm256_castsi256_si128(hb));
        hi = _mm_or_si128(hi, _mm256_extracti128_si256(hb, 1));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), lo);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16), hi);
    }
  }

  // Blocks [b0, b1) of R expanded rows (e0 + r·es) x G token groups (g0 + j·gs), continuing the
  // chains in acc[r·G + j] (lanes = tokens). nb: blocks per row (locates dw / mw).
  template <int R, int G>
  static void kernel(const uint8_t* e0, int64_t es, const uint8_t* g0, int64_t gs, int64_t nb, int64_t b0, int64_t b1,
                     __m512* accio) {
    __m512 acc[R][G];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < G; ++j) acc[r][j] = accio[r * G + j];
    const float* dw = reinterpret_cast<const float*>(e0 + nb * 32);
    for (int64_t b = b0; b < b1; ++b) {
      const uint8_t* g = g0 + b * kXB;
      const uint8_t* eb = e0 + b * 32;
      __m512i is[R][G];
#pragma GCC unroll 4
      for (int j = 0; j < G; ++j) {
        const __m512i c = kMin ? _mm512_setzero_si512() : loadu512(g + j * gs + 576);  // −offset·Σx
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) is[r][j] = c;
      }
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        __m512i xv[G];
#pragma GCC unroll 4
        for (int j = 0; j < G; ++j) xv[j] = loadu512(g + j * gs + 64 * s);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512i wv = _mm512_set1_epi32(static_cast<int>(ld32(eb + r * es + 4 * s)));
#pragma GCC unroll 4
          for (int j = 0; j < G; ++j) is[r][j] = _mm512_dpbusd_epi32(is[r][j], wv, xv[j]);
        }
      }
#pragma GCC unroll 4
      for (int j = 0; j < G; ++j) {
        const __m512 dx = loadu512f(g + j * gs + 512);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const float* dwr = reinterpret_cast<const float*>(reinterpret_cast<const uint8_t*>(dw + b) + r * es);
          acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r][j]), _mm512_mul_ps(_mm512_set1_ps(*dwr), dx), acc[r][j]);
          if (kMin) acc[r][j] = _mm512_fmadd_ps(_mm512_set1_ps(dwr[nb]), loadu512f(g + j * gs + 576), acc[r][j]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < G; ++j) accio[r * G + j] = acc[r][j];
  }
};

// ------------------------------------------------------------------ K-quants (Q4_K, Q5_K, Q6_K), Q8_K activations
// Group layout per super-block (kXB bytes): steps[64][64] (transposed x: step s, dword t = x[4s..4s+3]
// of token t), dx[16] (float), then Q4_K / Q5_K: bsum pairs by 32 (4 x 64 bytes: dword t =
// (B_2k[t], B_2k+1[t]) as int16, B_j = Σ of the 32 activations of sub-block j), or Q6_K: nc[16][16]
// (int32: −32·bsum_j[t], the weight offset of the 16-element sub-block j).
// Row layout per super-block (kEB bytes): unsigned quant bytes u[256] in element order (Q4_K
// [0, 15], Q5_K [0, 31], Q6_K [0, 63] without its −32), the sub-block scales as int32 (8 / 16),
// Q4_K / Q5_K: min pairs (m_2k, m_2k+1) as int16 x 4, then d, dmin (float; Q6_K: d, 0).
// Per super-block, row and group (lanes = 16 tokens):
//   S_j  = [Q6_K: nc_j] + Σ_{steps of sub-block j} vpdpbusd(bcast(4 quant bytes), step)   (int32)
//   isum = Σ_j vpmulld(S_j, sc_j),  summ = Σ_k vpdpwssd((B_2k, B_2k+1), (m_2k, m_2k+1))
//   acc  = fma(float(isum), fl(d·dx), acc);  acc = fnmadd(float(summ), fl(dmin·dx), acc)
// exactly the integers and float chain of the K-quant GEMV kernels (qgemm_k_avx2.cc). Bounds: |S_j|
// <= 32·31·127 (Q5_K) or 16·63·127 + 32·16·127 (Q6_K); |isum| <= 8·63·126k < 2^26; |summ| <=
// 8·63·32·127; vpdpbusd / vpdpwssd (non-saturating forms) never overflow.
enum class BK { Q4_K, Q5_K, Q6_K };

template <BK kT>
struct GK16 {
  static constexpr bool kQ6 = kT == BK::Q6_K;
  static constexpr int64_t kWBytes = kT == BK::Q4_K ? 144 : kT == BK::Q5_K ? 176 : 210;
  static constexpr int64_t kXBytes = 292;
  static constexpr int kNSub = kQ6 ? 16 : 8, kSub = 64 / kNSub;  // sub-blocks, steps per sub-block
  static constexpr int64_t kXD = 4096, kXE = 4096 + 64;          // offsets of dx, bsum pairs / nc
  static constexpr int64_t kXB = kXE + (kQ6 ? 1024 : 256);
  static constexpr int64_t kES = 256, kEM = kES + 4 * kNSub, kED = kEM + (kQ6 ? 0 : 16);
  static constexpr int64_t kEB = kED + 8;
  static constexpr int64_t row_bytes(int64_t nb) { return nb * kEB; }
  // Driver tuning: one super-block per pass (3 groups x 4.4 - 5.2 KB of activations + the chunk's
  // rows stay in L1); minimum fills of a padded group as for G16 (kMinLast / kMinAlone above), here
  // measured against qgemm_rows_avx2 (AVX2 GEMV, or its 8-token GEMM from 5 tokens), single thread at
  // [1024, 2048], weights hot: a lone group costs about 0.37 ms (Q5_K ~0.5) against 0.3 - 0.4 ms for
  // 7 - 8 AVX2 tokens of Q4_K / Q5_K and 0.33 - 0.5 ms for 4 - 5 of Q6_K (no AVX2 GEMM help); one more
  // group about 0.16 - 0.22 ms against 0.17 - 0.25 ms for 2 - 3 GEMV tokens.
  static constexpr int64_t kKB = 1, kMinLastG = 3, kMinAloneG = kQ6 ? 5 : kT == BK::Q4_K ? 8 : 9;

  static void prep_group(const uint8_t* xq, int64_t arb, int64_t nvalid, int64_t nb, uint8_t* dst) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* g = dst + b * kXB;
      const uint8_t* xb[16];
      alignas(64) float dx[16];
      alignas(64) int16_t b16[16][16];
      for (int t = 0; t < 16; ++t) {
        xb[t] = t < nvalid ? xq + t * arb + b * kXBytes : nullptr;
        dx[t] = xb[t] ? ldf(xb[t]) : 0.0f;
        if (xb[t])
          std::memcpy(b16[t], xb[t] + 260, 32);
        else
          std::memset(b16[t], 0, 32);
      }
      for (int c = 0; c < 8; ++c) {
        const uint8_t* p[16];
        for (int t = 0; t < 16; ++t) p[t] = xb[t] ? xb[t] + 4 + 32 * c : nullptr;
        put_steps16(p, g + 512 * c);
      }
      _mm512_storeu_ps(g + kXD, _mm512_load_ps(dx));
      if (kQ6) {
        alignas(64) int32_t nc[16];
        for (int j = 0; j < 16; ++j) {
          for (int t = 0; t < 16; ++t) nc[t] = -32 * b16[t][j];
          std::memcpy(g + kXE + 64 * j, nc, 64);
        }
      } else {
        alignas(64) int16_t pr[32];
        for (int k = 0; k < 4; ++k) {  // (B_2k, B_2k+1), B_j = bsum_2j + bsum_2j+1
          for (int t = 0; t < 16; ++t) {
            pr[2 * t] = static_cast<int16_t>(b16[t][4 * k] + b16[t][4 * k + 1]);
            pr[2 * t + 1] = static_cast<int16_t>(b16[t][4 * k + 2] + b16[t][4 * k + 3]);
          }
          std::memcpy(g + kXE + 64 * k, pr, 64);
        }
      }
    }
  }

  static void expand_row(const uint8_t* w, int64_t nb, uint8_t* e) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kWBytes;
      uint8_t* o = e + b * kEB;
      int32_t* sc = reinterpret_cast<int32_t*>(o + kES);
      float* dd = reinterpret_cast<float*>(o + kED);
      if (kQ6) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        for (int n = 0; n < 2; ++n) {
          const __m256i qh = loadu(blk + 128 + 32 * n);
          const __m256i l0 = loadu(blk + 64 * n), l1 = loadu(blk + 64 * n + 32);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 128 * n),
                              _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 128 * n + 32),
                              _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 128 * n + 64),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 128 * n + 96),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)));
        }
        _mm512_storeu_si512(sc, _mm512_cvtepi8_epi32(loadu128(blk + 192)));
        dd[0] = h2f(ld16(blk + 208));
        dd[1] = 0.0f;
        continue;
      }
      const __m256i m4 = _mm256_set1_epi8(0x0F);
      const uint8_t* qs = blk + (kT == BK::Q5_K ? 48 : 16);
      const __m256i hb = kT == BK::Q5_K ? loadu(blk + 16) : _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q4 = loadu(qs + 32 * c);
        __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
        if (kT == BK::Q5_K) {
          const __m256i bl = _mm256_set1_epi8(static_cast<char>(1 << (2 * c))), bh = _mm256_set1_epi8(static_cast<char>(2 << (2 * c)));
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bl), bl), _mm256_set1_epi8(0x10)));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bh), bh), _mm256_set1_epi8(0x10)));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * c), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * c + 32), hi);
      }
      uint8_t s8[8], m8[8];
      for (int j = 0; j < 8; ++j) get_scale_min_k4(j, blk + 4, &s8[j], &m8[j]);
      for (int j = 0; j < 8; ++j) sc[j] = s8[j];
      uint32_t* mp = reinterpret_cast<uint32_t*>(o + kEM);
      for (int k = 0; k < 4; ++k) mp[k] = uint32_t{m8[2 * k]} | uint32_t{m8[2 * k + 1]} << 16;
      dd[0] = h2f(ld16(blk));
      dd[1] = h2f(ld16(blk + 2));
    }
  }

  // Super-blocks [b0, b1) of R expanded rows (e0 + r·es) x G token groups (g0 + j·gs), continuing
  // the chains in accio[r·G + j] (lanes = tokens).
  template <int R, int G>
  static void kernel(const uint8_t* e0, int64_t es, const uint8_t* g0, int64_t gs, int64_t /*nb*/, int64_t b0, int64_t b1,
                     __m512* accio) {
    for (int64_t b = b0; b < b1; ++b) {
      const uint8_t* g = g0 + b * kXB;
      const uint8_t* eb = e0 + b * kEB;
      __m512i is[R][G];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < G; ++j) is[r][j] = _mm512_setzero_si512();
      for (int u = 0; u < kNSub; ++u) {
        __m512i sv[R][G];
#pragma GCC unroll 4
        for (int j = 0; j < G; ++j) {
          const __m512i c = kQ6 ? loadu512(g + j * gs + kXE + 64 * u) : _mm512_setzero_si512();  // −32·bsum_u
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) sv[r][j] = c;
        }
#pragma GCC unroll 8
        for (int s = u * kSub; s < u * kSub + kSub; ++s) {
          __m512i xv[G];
#pragma GCC unroll 4
          for (int j = 0; j < G; ++j) xv[j] = loadu512(g + j * gs + 64 * s);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const __m512i wv = _mm512_set1_epi32(static_cast<int>(ld32(eb + r * es + 4 * s)));
#pragma GCC unroll 4
            for (int j = 0; j < G; ++j) sv[r][j] = _mm512_dpbusd_epi32(sv[r][j], wv, xv[j]);
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512i scv = _mm512_set1_epi32(static_cast<int>(ld32(eb + r * es + kES + 4 * u)));
#pragma GCC unroll 4
          for (int j = 0; j < G; ++j) is[r][j] = _mm512_add_epi32(is[r][j], _mm512_mullo_epi32(sv[r][j], scv));
        }
      }
#pragma GCC unroll 4
      for (int j = 0; j < G; ++j) {
        const __m512 dx = loadu512f(g + j * gs + kXD);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const float* dd = reinterpret_cast<const float*>(eb + r * es + kED);
          __m512 acc = accio[r * G + j];
          acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r][j]), _mm512_mul_ps(_mm512_set1_ps(dd[0]), dx), acc);
          if (!kQ6) {
            __m512i sm = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k)
              sm = _mm512_dpwssd_epi32(sm, loadu512(g + j * gs + kXE + 64 * k),
                                       _mm512_set1_epi32(static_cast<int>(ld32(eb + r * es + kEM + 4 * k))));
            acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(sm), _mm512_mul_ps(_mm512_set1_ps(dd[1]), dx), acc);
          }
          accio[r * G + j] = acc;
        }
      }
    }
  }
};

// ------------------------------------------------------------------ driver

// kR16Layout: w in the r16 layout (repack.h; Q4_0 / Q8_0): rows are expanded from their tiles.
template <class Gt, bool kR16Layout = false>
int64_t run_gemm(const void* w, const void* xq, float* y, int64_t T, int64_t nb, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int R = 4;  // rows per tile (kernels <4, 3>, <4, 2>; a lone group runs <8, 1> on tile pairs)
  const int64_t groups = T / 16 + (T % 16 >= (T < 16 ? Gt::kMinAloneG : Gt::kMinLastG) ? 1 : 0);
  if (groups == 0 || n1 <= n0 || nb <= 0) return 0;
  // Rows expanded at a time (kRowChunk, L2-resident); blocks per pass (kKB: a triple of groups'
  // activations, 3 x kKB x 640 bytes, and the chunk's rows for those blocks stay in L1 while the
  // chunk's row tiles run on them); token groups transposed at a time (a multiple of 3 within
  // about 1.5 MB of transposed activations: 36 groups at K = 2048).
  constexpr int64_t kRowChunk = 32, kKB = Gt::kKB;
  static_assert(kRowChunk % 16 == 0, "row chunk: whole 16 x 16 output transposes");
  const int64_t wrb = nb * Gt::kWBytes, arb = nb * Gt::kXBytes;
  const int64_t gbytes = nb * Gt::kXB, ebytes = Gt::row_bytes(nb);
  const int64_t gbatch = std::max<int64_t>(3, std::min<int64_t>(48, (int64_t{3} << 19) / gbytes) / 3 * 3);
  thread_local std::vector<uint8_t> xbuf, ebuf;
  const int64_t gcap = std::min(groups, gbatch);
  if (xbuf.size() < static_cast<size_t>(gcap * gbytes)) xbuf.resize(static_cast<size_t>(gcap * gbytes));
  if (ebuf.size() < static_cast<size_t>(kRowChunk * ebytes)) ebuf.resize(static_cast<size_t>(kRowChunk * ebytes));
  const auto* xb = static_cast<const uint8_t*>(xq);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t g0 = 0; g0 < groups; g0 += gbatch) {
    const int64_t g1 = std::min(groups, g0 + gbatch);
    for (int64_t gi = g0; gi < g1; ++gi)
      Gt::prep_group(xb + gi * 16 * arb, arb, std::min<int64_t>(16, T - gi * 16), nb, xbuf.data() + (gi - g0) * gbytes);
    for (int64_t c0 = n0; c0 < n1; c0 += kRowChunk) {
      const int64_t c1 = std::min(n1, c0 + kRowChunk);
      for (int64_t n = c0; n < c1; ++n) {
        uint8_t* e = ebuf.data() + (n - c0) * ebytes;
        if constexpr (kR16Layout) {
          const int i = static_cast<int>(n % kR16);
          Gt::expand_row(wb + (n - i) * wrb + r16_scale_offset(i), nb, e, kR16 * Gt::kWBytes,
                         r16_quant_offset(Gt::kWBytes, i) - r16_scale_offset(i));
        } else {
          Gt::expand_row(wb + n * wrb, nb, e);
        }
      }
      // Pad to a multiple of 8 rows with copies of the last row (outputs discarded).
      const int64_t cpad = c0 + (c1 - c0 + 7) / 8 * 8;
      for (int64_t n = c1; n < cpad; ++n)
        std::memcpy(ebuf.data() + (n - c0) * ebytes, ebuf.data() + (c1 - 1 - c0) * ebytes, static_cast<size_t>(ebytes));
      const int64_t tiles = (cpad - c0) / R;
      for (int64_t gi = g0; gi < g1;) {
        const int64_t ng = std::min<int64_t>(3, g1 - gi);
        const uint8_t* gp = xbuf.data() + (gi - g0) * gbytes;
        // acc[tile][r·ng + j]: row c0 + 4·tile + r, group gi + j (ng = 1: 8-row tiles, see below).
        alignas(64) __m512 acc[kRowChunk / R][R * 3];
        for (int64_t i = 0; i < tiles; ++i)
          for (int k = 0; k < R * 3; ++k) acc[i][k] = _mm512_setzero_ps();
        for (int64_t b0 = 0; b0 < nb; b0 += kKB) {
          const int64_t b1 = std::min(nb, b0 + kKB);
          if (ng == 1) {
            for (int64_t i = 0; i < tiles; i += 2)
              Gt::template kernel<2 * R, 1>(ebuf.data() + i * R * ebytes, ebytes, gp, gbytes, nb, b0, b1, acc[i]);
            continue;
          }
          for (int64_t i = 0; i < tiles; ++i) {
            const uint8_t* e = ebuf.data() + i * R * ebytes;
            if (ng == 3)
              Gt::template kernel<R, 3>(e, ebytes, gp, gbytes, nb, b0, b1, acc[i]);
            else
              Gt::template kernel<R, 2>(e, ebytes, gp, gbytes, nb, b0, b1, acc[i]);
          }
        }
        // Outputs: per 16 rows and group, a 16 x 16 transpose, then one (masked) store per token.
        for (int64_t q0 = c0; q0 < c1; q0 += 16) {
          const int64_t rv = std::min<int64_t>(16, c1 - q0);
          const __mmask16 m = static_cast<__mmask16>((1u << rv) - 1);
          for (int64_t j = 0; j < ng; ++j) {
            const int64_t tb = (gi + j) * 16, tv = std::min<int64_t>(16, T - tb);
            __m512 v[16];
            for (int r = 0; r < 16; ++r) {
              // (rows past the padded chunk are masked off: any value)
              const int64_t rr = std::min<int64_t>(q0 - c0 + r, cpad - c0 - 1);
              if (ng == 1)  // 8-row tiles: acc[2k][0..7] = kernel<8, 1> out[0..7], rows 8k..8k+7
                v[r] = acc[rr / 8 * 2][rr % 8];
              else
                v[r] = acc[rr / R][(rr % R) * ng + j];
            }
            transpose16x16(v);
            float* yo = y + tb * ldy + q0;
            if (rv == 16)
              for (int64_t t = 0; t < tv; ++t) _mm512_storeu_ps(yo + t * ldy, v[t]);
            else
              for (int64_t t = 0; t < tv; ++t) _mm512_mask_storeu_ps(yo + t * ldy, m, v[t]);
          }
        }
        gi += ng;
      }
    }
  }
  return std::min(T, groups * 16);
}

}  // namespace

// Tokens [0, returned) of y computed here (0: none; the caller runs the AVX2 kernels on the rest).
int64_t qgemm_gemm_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                          int64_t n0, int64_t n1) {
  switch (wtype) {  // (run_gemm returns 0 when T is below the type's minimum group fill)
    case DType::Q4_0: return run_gemm<G16<B32::Q4_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q4_1: return run_gemm<G16<B32::Q4_1>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q5_0: return run_gemm<G16<B32::Q5_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q5_1: return run_gemm<G16<B32::Q5_1>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q8_0: return run_gemm<G16<B32::Q8_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q4_0_R16: return run_gemm<G16<B32::Q4_0>, true>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q8_0_R16: return run_gemm<G16<B32::Q8_0>, true>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q4_K: return run_gemm<GK16<BK::Q4_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q5_K: return run_gemm<GK16<BK::Q5_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q6_K: return run_gemm<GK16<BK::Q6_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    default: return 0;
  }
}

}  // namespace qm::cpu
