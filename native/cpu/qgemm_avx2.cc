// AVX2 qgemm (compiled with -mavx2 -mfma -mf16c; only called when the CPU has them).
//
// Integer dot products as llama.cpp's AVX2 ggml_vec_dot_*: vpmaddubsw (u8 x s8 -> s16 pairs) and
// vpmaddwd (-> s32), exact per block / super-block, then one float FMA per block into an 8-lane
// accumulator, and a fixed horizontal sum at the end.
//
// Tiling: a micro-kernel computes RR weight rows x TT tokens; each weight block is unpacked once
// and used for all TT tokens. Every (row, token) pair owns its accumulator and sees exactly the
// same instruction sequence whatever RR and TT are, so y[t, n] is bit-identical for any T, tile
// and thread split (batch invariance). Float math is explicit intrinsics only (no contraction
// differences between template instances).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "matmul.h"
#include "qgemm.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum8(__m256 x) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
inline __m256i nibbles32(const uint8_t* q) {
  const __m128i t = loadu128(q);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where bit i is set (byte i).
inline __m256i bytes_from_bits_32(const uint8_t* p) {
  uint32_t x32;
  std::memcpy(&x32, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// s8 x s8 -> 8 x s32 (sign trick: |a| x sign(b, a)).
inline __m256i dot_i8(__m256i a_abs, __m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a_abs, _mm256_sign_epi8(b, a)), _mm256_set1_epi16(1));
}
// u8 x s8 -> 8 x s32.
inline __m256i dot_u8(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

// Adds v into lane 0 of acc: acc + m * (s, 0, ..., 0).
inline __m256 add_lane0(__m256 acc, float m, float s) {
  return _mm256_fmadd_ps(_mm256_set1_ps(m), _mm256_zextps128_ps256(_mm_set_ss(s)), acc);
}

// Shuffle mask broadcasting int16 element i of each 128-bit lane to the whole lane.
inline __m256i bcast16_mask(int i) { return _mm256_set1_epi16(static_cast<short>((2 * i) | ((2 * i + 1) << 8))); }

// ---------------------------------------------------------------------------- 32-element types
// block<TT>(w block, activation rows xs[TT], block index, acc[TT]).

struct PQ4_0 {
  static constexpr bool kHalfScale = true;
  using WB = block_q4_0;
  using XB = block_q8_0;
  static constexpr int QK = 32;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m256i q = _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8));
    const __m256i aq = _mm256_sign_epi8(q, q);
    const float dw = h2f(b.d);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256 p = _mm256_cvtepi32_ps(dot_i8(aq, q, loadu(x.qs)));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[j][ib]), p, acc[j]);
    }
  }
};

struct PQ8_0 {
  static constexpr bool kHalfScale = true;
  using WB = block_q8_0;
  using XB = block_q8_0;
  static constexpr int QK = 32;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m256i q = loadu(b.qs);
    const __m256i aq = _mm256_sign_epi8(q, q);
    const float dw = h2f(b.d);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256 p = _mm256_cvtepi32_ps(dot_i8(aq, q, loadu(x.qs)));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[j][ib]), p, acc[j]);
    }
  }
};

struct PQ5_0 {
  static constexpr bool kHalfScale = true;
  using WB = block_q5_0;
  using XB = block_q8_0;
  static constexpr int QK = 32;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    // (nibble | bit4) - 16: OR 0xF0 into bytes whose high bit is clear.
    const __m256i hi = _mm256_andnot_si256(bytes_from_bits_32(b.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    const __m256i q = _mm256_or_si256(nibbles32(b.qs), hi);
    const __m256i aq = _mm256_sign_epi8(q, q);
    const float dw = h2f(b.d);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256 p = _mm256_cvtepi32_ps(dot_i8(aq, q, loadu(x.qs)));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[j][ib]), p, acc[j]);
    }
  }
};

struct PQ4_1 {
  static constexpr bool kHalfScale = true;
  using WB = block_q4_1;
  using XB = block_q8_1;
  static constexpr int QK = 32;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m256i q = nibbles32(b.qs);
    const float dw = h2f(b.d), mw = h2f(b.m);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256 p = _mm256_cvtepi32_ps(dot_u8(q, loadu(x.qs)));
      acc[j] = add_lane0(_mm256_fmadd_ps(_mm256_set1_ps(dw * xd[j][ib]), p, acc[j]), mw, h2f(x.s));
    }
  }
};

struct PQ5_1 {
  static constexpr bool kHalfScale = true;
  using WB = block_q5_1;
  using XB = block_q8_1;
  static constexpr int QK = 32;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m256i hi = _mm256_and_si256(bytes_from_bits_32(b.qh), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_or_si256(nibbles32(b.qs), hi);
    const float dw = h2f(b.d), mw = h2f(b.m);
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256 p = _mm256_cvtepi32_ps(dot_u8(q, loadu(x.qs)));
      acc[j] = add_lane0(_mm256_fmadd_ps(_mm256_set1_ps(dw * xd[j][ib]), p, acc[j]), mw, h2f(x.s));
    }
  }
};

// ---------------------------------------------------------------------------- K-quants
// One 256-element super-block per call; integer sums per token stay in sumi[TT].

inline __m256i bsums16(const block_q8_K& x) { return loadu(x.bsums); }

struct PQ4_K {
  static constexpr bool kHalfScale = false;
  using WB = block_q4_K;
  using XB = block_q8_K;
  static constexpr int QK = QK_K;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, b.scales, &sc[j], &mn[j]);
    uint64_t sc64, mn64;
    std::memcpy(&sc64, sc, 8);
    std::memcpy(&mn64, mn, 8);
    const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(mn64)));
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc64)));
    const __m256i scales = _mm256_set_m128i(sc16, sc16);
    const float dw = h2f(b.d), dmw = h2f(b.dmin);
    __m256i sumi[TT];
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) sumi[j] = _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = loadu(b.qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q4, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      const __m256i scl = _mm256_shuffle_epi8(scales, bcast16_mask(2 * c));
      const __m256i sch = _mm256_shuffle_epi8(scales, bcast16_mask(2 * c + 1));
#pragma GCC unroll 8
      for (int j = 0; j < TT; ++j) {
        const int8_t* q8 = xs[j][ib].qs + 64 * c;
        const __m256i pl = _mm256_madd_epi16(scl, _mm256_maddubs_epi16(lo, loadu(q8)));
        const __m256i ph = _mm256_madd_epi16(sch, _mm256_maddubs_epi16(hi, loadu(q8 + 32)));
        sumi[j] = _mm256_add_epi32(sumi[j], _mm256_add_epi32(pl, ph));
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256i bs = bsums16(x);
      const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      const __m128i pm = _mm_madd_epi16(mins16, pairs);
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dw), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
      acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(x.d * dmw), _mm256_cvtepi32_ps(_mm256_zextsi128_si256(pm)), acc[j]);
    }
  }
};

struct PQ5_K {
  static constexpr bool kHalfScale = false;
  using WB = block_q5_K;
  using XB = block_q8_K;
  static constexpr int QK = QK_K;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, b.scales, &sc[j], &mn[j]);
    uint64_t sc64, mn64;
    std::memcpy(&sc64, sc, 8);
    std::memcpy(&mn64, mn, 8);
    const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(mn64)));
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc64)));
    const __m256i scales = _mm256_set_m128i(sc16, sc16);
    const float dw = h2f(b.d), dmw = h2f(b.dmin);
    __m256i sumi[TT];
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) sumi[j] = _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(0x01);
    const __m256i hb = loadu(b.qh);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = loadu(b.qs + 32 * c);
      const __m256i hl = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * c), m1), 4);
      const __m256i hh = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * c + 1), m1), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, m4), hl);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), hh);
      const __m256i scl = _mm256_shuffle_epi8(scales, bcast16_mask(2 * c));
      const __m256i sch = _mm256_shuffle_epi8(scales, bcast16_mask(2 * c + 1));
#pragma GCC unroll 8
      for (int j = 0; j < TT; ++j) {
        const int8_t* q8 = xs[j][ib].qs + 64 * c;
        const __m256i pl = _mm256_madd_epi16(scl, _mm256_maddubs_epi16(lo, loadu(q8)));
        const __m256i ph = _mm256_madd_epi16(sch, _mm256_maddubs_epi16(hi, loadu(q8 + 32)));
        sumi[j] = _mm256_add_epi32(sumi[j], _mm256_add_epi32(pl, ph));
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256i bs = bsums16(x);
      const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      const __m128i pm = _mm_madd_epi16(mins16, pairs);
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dw), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
      acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(x.d * dmw), _mm256_cvtepi32_ps(_mm256_zextsi128_si256(pm)), acc[j]);
    }
  }
};

// int8 scales[16] -> int16 vector with scale i in the low lane and i+1 in the high lane.
inline __m256i scale_pair16(__m128i sc8, int i) {
  const __m128i m = _mm_set_epi8(i + 1, i + 1, i + 1, i + 1, i + 1, i + 1, i + 1, i + 1, i, i, i, i, i, i, i, i);
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, m));
}

struct PQ6_K {
  static constexpr bool kHalfScale = false;
  using WB = block_q6_K;
  using XB = block_q8_K;
  static constexpr int QK = QK_K;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m128i sc8 = loadu128(b.scales);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const float dw = h2f(b.d);
    __m256i sumi[TT];
    // The -32 offset of every quant: -32 * sum_g scale_g * bsum_g (exact in int32).
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j)
      sumi[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums16(xs[j][ib])), 5));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m256i qh = loadu(b.qh + 32 * n);
      const __m256i l0 = loadu(b.ql + 64 * n), l1 = loadu(b.ql + 64 * n + 32);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2));
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i s = scale_pair16(sc8, 8 * n + 2 * k);
#pragma GCC unroll 8
        for (int j = 0; j < TT; ++j) {
          const int8_t* q8 = xs[j][ib].qs + 128 * n + 32 * k;
          sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(s, _mm256_maddubs_epi16(q[k], loadu(q8))));
        }
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(xs[j][ib].d * dw), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
  }
};

struct PQ2_K {
  static constexpr bool kHalfScale = false;
  using WB = block_q2_K;
  using XB = block_q8_K;
  static constexpr int QK = QK_K;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    const __m128i raw = loadu128(b.scales);
    const __m128i sc8 = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
    const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
    const float dw = h2f(b.d), dmw = h2f(b.dmin);
    __m256i sumi[TT];
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) sumi[j] = _mm256_setzero_si256();
    const __m256i m3 = _mm256_set1_epi8(0x03);
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m256i q2 = loadu(b.qs + 32 * n);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
        const __m256i s = scale_pair16(sc8, 8 * n + 2 * k);
#pragma GCC unroll 8
        for (int j = 0; j < TT; ++j) {
          const int8_t* q8 = xs[j][ib].qs + 128 * n + 32 * k;
          sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(s, _mm256_maddubs_epi16(q, loadu(q8))));
        }
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j) {
      const XB& x = xs[j][ib];
      const __m256i pm = _mm256_madd_epi16(mins16, bsums16(x));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dw), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
      acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(x.d * dmw), _mm256_cvtepi32_ps(pm), acc[j]);
    }
  }
};

struct PQ3_K {
  static constexpr bool kHalfScale = false;
  using WB = block_q3_K;
  using XB = block_q8_K;
  static constexpr int QK = QK_K;
  template <int TT>
  static inline void block(const WB& b, const XB* const* xs, const float* const* xd, int64_t ib, __m256* acc) {
    int8_t scs[16];
    q3k_scales(b.scales, scs);
    const __m128i sc8 = loadu128(scs);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const float dw = h2f(b.d);
    __m256i sumi[TT];
    // Quants are (q | hbit << 2) - 4: the -4 is -4 * sum_g scale_g * bsum_g.
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j)
      sumi[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums16(xs[j][ib])), 2));
    const __m256i m3 = _mm256_set1_epi8(0x03), m1 = _mm256_set1_epi8(0x01);
    const __m256i hb = loadu(b.hmask);
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m256i q2 = loadu(b.qs + 32 * n);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i h = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4 * n + k), m1), 2);
        const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3), h);
        const __m256i s = scale_pair16(sc8, 8 * n + 2 * k);
#pragma GCC unroll 8
        for (int j = 0; j < TT; ++j) {
          const int8_t* q8 = xs[j][ib].qs + 128 * n + 32 * k;
          sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(s, _mm256_maddubs_epi16(q, loadu(q8))));
        }
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(xs[j][ib].d * dw), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
  }
};

// ---------------------------------------------------------------------------- tiling

template <class P, int RR, int TT>
void micro(const uint8_t* w, int64_t wrb, const uint8_t* x, int64_t arb, const float* xd, int64_t nb, float* y,
           int64_t ldy) {
  using WB = typename P::WB;
  using XB = typename P::XB;
  const XB* xs[TT];
  const float* xds[TT];
  const WB* ws[RR];
  for (int j = 0; j < TT; ++j) {
    xs[j] = reinterpret_cast<const XB*>(x + j * arb);
    xds[j] = xd + j * nb;
  }
  for (int r = 0; r < RR; ++r) ws[r] = reinterpret_cast<const WB*>(w + r * wrb);
  __m256 acc[RR][TT];
  for (int r = 0; r < RR; ++r)
    for (int j = 0; j < TT; ++j) acc[r][j] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
#pragma GCC unroll 4
    for (int r = 0; r < RR; ++r) P::template block<TT>(ws[r][ib], xs, xds, ib, acc[r]);
  }
  for (int r = 0; r < RR; ++r)
    for (int j = 0; j < TT; ++j) y[j * ldy + r] = hsum8(acc[r][j]);
}

template <class P>
void run(const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy, int64_t n0, int64_t n1) {
  // Rows x tokens of one micro-kernel: GEMV uses 4 rows (independent FMA chains), GEMM 1 x 4
  // (measured: 2x4, 3x4, 1x8, 2x8 are no faster; the vpmaddubsw/vpmaddwd throughput is the limit).
  constexpr int RV = 4, RG = 1, TG = 4;
  const int64_t nb = K / P::QK;
  const int64_t wrb = nb * static_cast<int64_t>(sizeof(typename P::WB));
  const int64_t arb = nb * static_cast<int64_t>(sizeof(typename P::XB));
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  // The half activation scales of a token tile, converted once (not once per weight row).
  thread_local std::vector<float> xd_buf;
  if (P::kHalfScale) xd_buf.resize(static_cast<size_t>(kTokenTile * nb));
  for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
    const int64_t t1 = std::min(T, t0 + kTokenTile);
    const uint8_t* xt = xb + t0 * arb;
    float* yt = y + t0 * ldy;
    float* xd = P::kHalfScale ? xd_buf.data() : nullptr;
    if (P::kHalfScale)
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t ib = 0; ib < nb; ++ib) {
          uint16_t h;
          std::memcpy(&h, xb + t * arb + ib * static_cast<int64_t>(sizeof(typename P::XB)), 2);
          xd[(t - t0) * nb + ib] = h2f(h);
        }
    auto xdp = [&](int64_t t) { return xd ? xd + (t - t0) * nb : nullptr; };
    int64_t n = n0;
    if (t1 - t0 < TG) {
      for (; n + RV <= n1; n += RV)
        for (int64_t t = t0; t < t1; ++t)
          micro<P, RV, 1>(wb + n * wrb, wrb, xb + t * arb, arb, xdp(t), nb, y + t * ldy + n, ldy);
      for (; n < n1; ++n)
        for (int64_t t = t0; t < t1; ++t)
          micro<P, 1, 1>(wb + n * wrb, wrb, xb + t * arb, arb, xdp(t), nb, y + t * ldy + n, ldy);
      continue;
    }
    for (; n + RG <= n1; n += RG) {
      int64_t t = t0;
      for (; t + TG <= t1; t += TG)
        micro<P, RG, TG>(wb + n * wrb, wrb, xt + (t - t0) * arb, arb, xdp(t), nb, yt + (t - t0) * ldy + n, ldy);
      for (; t < t1; ++t)
        micro<P, RG, 1>(wb + n * wrb, wrb, xt + (t - t0) * arb, arb, xdp(t), nb, yt + (t - t0) * ldy + n, ldy);
    }
    for (; n < n1; ++n) {
      int64_t t = t0;
      for (; t + TG <= t1; t += TG)
        micro<P, 1, TG>(wb + n * wrb, wrb, xt + (t - t0) * arb, arb, xdp(t), nb, yt + (t - t0) * ldy + n, ldy);
      for (; t < t1; ++t)
        micro<P, 1, 1>(wb + n * wrb, wrb, xt + (t - t0) * arb, arb, xdp(t), nb, yt + (t - t0) * ldy + n, ldy);
    }
  }
}

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
  double s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
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
    case DType::Q4_0: return run<PQ4_0>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q4_1: return run<PQ4_1>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q5_0: return run<PQ5_0>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q5_1: return run<PQ5_1>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q8_0: return run<PQ8_0>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q2_K: return run<PQ2_K>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q3_K: return run<PQ3_K>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q4_K: return run<PQ4_K>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q5_K: return run<PQ5_K>(w, xq, y, T, K, ldy, n0, n1);
    case DType::Q6_K: return run<PQ6_K>(w, xq, y, T, K, ldy, n0, n1);
    default: return qgemm_rows_scalar(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
}

}  // namespace qm::cpu
