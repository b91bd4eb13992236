// AVX2 many-token qgemm (groups of 8 tokens; lanes = tokens), for every GGUF block type; the tokens
// left over (< 5 in a last group) go to the GEMV kernels.
//
// Each weight row is first expanded once per call into quant bytes in element order plus its scales
// (unsigned quants; Q8_0 / Q6_K: |q| and signed q for the sign trick), reused by every token group;
// each group of 8 tokens' activations is transposed once so that one 32-byte vector holds 4
// consecutive activations of each of the 8 tokens. Then per 4 weights: one broadcast of the row's 4
// quant bytes and one vpmaddubsw give the 8 tokens' products; int16 sums run over as many steps as
// the bounds allow (stated per type), vpmaddwd applies the sub-block scale (or 1) into int32, and
// per (super-)block the float chain of the contract in qgemm_avx2.h runs with the 8 tokens in the
// lanes: fma(isum, fl(dw·dx), acc), ... The integers are exact and the float operations per output
// are exactly those of the GEMV kernels, so a token's outputs are bit-identical whether it runs
// here, in a GEMV, or in any other group. Partial groups are padded with zero activations (and zero
// scales) whose outputs are discarded. Per 4 rows x 8 tokens x 4 weights: 4 broadcasts (loads), 4
// vpmaddubsw, 4 int16 adds, so the multiply port runs ~80% busy (vs ~40% in a row-by-row kernel).
#include <algorithm>
#include <vector>

#include "qgemm_avx2.h"
#include "qgemm.h"
#include "quants.h"

namespace qm::cpu {

using namespace qavx2;

namespace {

// Token groups with fewer valid tokens than this go to the GEMV kernels instead (a padded group
// costs as much as a full one; a GEMV token costs about 1/5 of a group here).
constexpr int64_t kMinGroup = 5;

inline __m256i bcast32(const void* p) { return _mm256_set1_epi32(static_cast<int>(ld32(p))); }

// Keeps GCC from re-associating an accumulation chain into a tree of spilled temporaries.
inline __m256i chain(__m256i v) {
  asm("" : "+x"(v));
  return v;
}


// Transposes 32 activation bytes of each of 8 tokens (p[t], nullptr = zeros) to 8 steps at dst.
inline void put_steps(const uint8_t* const* p, uint8_t* dst) {
  __m256i r[8];
  for (int t = 0; t < 8; ++t) r[t] = p[t] ? loadu(p[t]) : _mm256_setzero_si256();
  transpose8x8(r);
  for (int s = 0; s < 8; ++s) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * s), r[s]);
}

// Σ of the 32 activations per token lane, from the 8 transposed steps (exact int32).
inline __m256i step_sums(const uint8_t* steps) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  __m256i a = _mm256_maddubs_epi16(ones8, loadu(steps));
  for (int s = 1; s < 8; ++s) a = _mm256_add_epi16(a, _mm256_maddubs_epi16(ones8, loadu(steps + 32 * s)));
  return _mm256_madd_epi16(a, _mm256_set1_epi16(1));  // |Σ| <= 32·127
}

inline void store8f(uint8_t* dst, __m256 v) { _mm256_storeu_ps(reinterpret_cast<float*>(dst), v); }
inline void store8i(uint8_t* dst, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v); }

// ------------------------------------------------------------------ 32-element blocks, Q8_0 / Q8_1 activations
// Group layout per block (kXB bytes): steps[8][32] (transposed qs), dx[8] (float), then corr[8]
// (int32: offset·Σx, Q4_0 / Q5_0) or sx[8] (float: the Q8_1 sums s, Q4_1 / Q5_1).
// Row layout per block (kEB bytes): quant bytes[32] in element order (Q8_0: |w|[32], then w[32]),
// then (after all blocks) dw[nb] and, for Q4_1 / Q5_1, mw[nb] (float).

enum class B32 { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 };

template <B32 kT>
struct G32 {
  static constexpr bool kMin = kT == B32::Q4_1 || kT == B32::Q5_1;  // Q8_1 activations, min term
  static constexpr bool kFive = kT == B32::Q5_0 || kT == B32::Q5_1;
  static constexpr int64_t kWBytes = kT == B32::Q4_0 ? 18 : kT == B32::Q4_1 ? 20 : kT == B32::Q5_0 ? 22 : kT == B32::Q5_1 ? 24 : 34;
  static constexpr int64_t kXBytes = kMin ? 36 : 34;
  static constexpr int64_t kXB = 256 + 32 + 32;
  static constexpr int64_t kEB = kT == B32::Q8_0 ? 64 : 32;  // Q8_0: |w| bytes, then w
  static constexpr int64_t row_bytes(int64_t nb) { return nb * (kEB + (kMin ? 8 : 4)); }
  static constexpr int kOffsetShift = kT == B32::Q4_0 ? 3 : 4;  // offset 8 / 16

  static void prep_group(const uint8_t* xq, int64_t arb, int64_t nvalid, int64_t nb, uint8_t* dst) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* g = dst + b * kXB;
      const uint8_t* p[8];
      alignas(32) float dx[8], sx[8];
      for (int t = 0; t < 8; ++t) {
        const uint8_t* xb = t < nvalid ? xq + t * arb + b * kXBytes : nullptr;
        p[t] = xb ? xb + (kMin ? 4 : 2) : nullptr;
        dx[t] = xb ? h2f(ld16(xb)) : 0.0f;
        sx[t] = xb && kMin ? h2f(ld16(xb + 2)) : 0.0f;
      }
      put_steps(p, g);
      store8f(g + 256, _mm256_load_ps(dx));
      if (kMin)
        store8f(g + 288, _mm256_load_ps(sx));  // the Q8_1 sums s
      else
        store8i(g + 288, _mm256_slli_epi32(step_sums(g), kOffsetShift));  // offset·Σx
    }
  }

  static void expand_row(const uint8_t* w, int64_t nb, uint8_t* e) {
    float* dw = reinterpret_cast<float*>(e + nb * kEB);
    float* mw = dw + nb;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kWBytes;
      dw[b] = h2f(ld16(blk));
      if (kMin) mw[b] = h2f(ld16(blk + 2));
      uint8_t* o = e + b * kEB;
      if (kT == B32::Q8_0) {
        const __m256i wv = loadu(blk + 2);
        store8i(o, _mm256_sign_epi8(wv, wv));  // |w| as unsigned bytes (128 for −128)
        store8i(o + 32, wv);
        continue;
      }
      constexpr int64_t kQs = kT == B32::Q4_0 ? 2 : kT == B32::Q4_1 ? 4 : kT == B32::Q5_0 ? 6 : 8;
      const __m128i q = loadu128(blk + kQs);
      __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
      if (kFive) {
        const __m256i hb = _mm256_and_si256(bytes_from_bits_32(ld32(blk + kQs - 4)), _mm256_set1_epi8(0x10));
        lo = _mm_or_si128(lo, _mm256_castsi256_si128(hb));
        hi = _mm_or_si128(hi, _mm256_extracti128_si256(hb, 1));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), lo);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16), hi);
    }
  }

  // Outputs of 4 expanded rows (e[r]) for one token group: acc[r] lanes = tokens.
  // Bounds: Q4_0 / Q4_1 pairs <= 2·15·127, 8 steps in int16 <= 30480; Q5_0 / Q5_1 pairs <= 2·31·127,
  // 4 steps; Q8_0 |w|·(x·sign w) pairs <= 2·128·127, one step. Q4_0 / Q5_0 subtract offset·Σx.
  static void kernel4(const uint8_t* const* e, const uint8_t* g, int64_t nb, __m256* out) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, g += kXB) {
      __m256i is[4];
      if (kT == B32::Q8_0) {
        for (int r = 0; r < 4; ++r) is[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) {
          const __m256i xv = loadu(g + 32 * s);
#pragma GCC unroll 4
          for (int r = 0; r < 4; ++r) {
            const uint8_t* eb = e[r] + b * kEB + 4 * s;
            const __m256i p = _mm256_maddubs_epi16(bcast32(eb), _mm256_sign_epi8(xv, bcast32(eb + 32)));
            is[r] = chain(_mm256_add_epi32(is[r], _mm256_madd_epi16(p, ones)));
          }
        }
      } else {
        constexpr int kRun = kFive ? 4 : 8;  // steps per int16 accumulation
        for (int r = 0; r < 4; ++r) is[r] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int s0 = 0; s0 < 8; s0 += kRun) {
          __m256i a[4];
#pragma GCC unroll 8
          for (int s = s0; s < s0 + kRun; ++s) {
            const __m256i xv = loadu(g + 32 * s);
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) {
              const __m256i p = _mm256_maddubs_epi16(bcast32(e[r] + b * kEB + 4 * s), xv);
              a[r] = s == s0 ? p : chain(_mm256_add_epi16(a[r], p));
            }
          }
          for (int r = 0; r < 4; ++r) is[r] = _mm256_add_epi32(is[r], _mm256_madd_epi16(a[r], ones));
        }
        if (!kMin) {
          const __m256i corr = loadu(g + 288);
          for (int r = 0; r < 4; ++r) is[r] = _mm256_sub_epi32(is[r], corr);
        }
      }
      const __m256 dx = _mm256_loadu_ps(reinterpret_cast<const float*>(g + 256));
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        const float* dw = reinterpret_cast<const float*>(e[r] + nb * kEB) + b;
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]), _mm256_mul_ps(_mm256_broadcast_ss(dw), dx), acc[r]);
        if (kMin)
          acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(dw + nb), _mm256_loadu_ps(reinterpret_cast<const float*>(g + 288)), acc[r]);
      }
    }
    for (int r = 0; r < 4; ++r) out[r] = acc[r];
  }
};

// ------------------------------------------------------------------ K-quants, Q8_K activations
// Group layout per super-block: steps[64][32], dx[8] (float), bsum pairs by 32 (4 x 16 int16:
// lanes 2t, 2t+1 = B_2k[t], B_2k+1[t], B_j = Σ of 32 activations, for the mins).
// Row layout per super-block: quant bytes in element order (Q4_K/Q5_K: q, 256 bytes; Q6_K: |q − 32|
// then q − 32, 512 bytes), scales as int32 words whose two int16 halves are the vpmaddwd multipliers
// (Q4_K/Q5_K: sc_j twice x 8, then min pairs (m_2k, m_2k+1) x 4; Q6_K: sc_j twice x 16), then d and
// dmin (float).

enum class BK { Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

template <BK kT>
struct GK {
  static constexpr bool k16 = kT == BK::Q2_K || kT == BK::Q3_K || kT == BK::Q6_K;  // 16-element sub-blocks
  static constexpr bool kMins = kT == BK::Q2_K || kT == BK::Q4_K || kT == BK::Q5_K;
  static constexpr bool kByte16 = kT == BK::Q2_K || kT == BK::Q3_K;  // uses bsum pairs by 16
  static constexpr int64_t kWBytes = kT == BK::Q2_K ? 84 : kT == BK::Q3_K ? 110 : kT == BK::Q4_K ? 144 : kT == BK::Q5_K ? 176 : 210;
  static constexpr int64_t kXBytes = 292;
  static constexpr int64_t kXB = 2048 + 32 + 4 * 32 + (kByte16 ? 8 * 32 : 0);
  static constexpr int64_t kQB = kT == BK::Q6_K ? 512 : 256;  // Q6_K: |q − 32| bytes, then q − 32
  // scale words: Q4_K/Q5_K 8 dup + 4 min pairs; Q6_K 16 dup; Q2_K 16 dup + 8 min pairs; Q3_K 16 dup + 8 scale pairs
  static constexpr int64_t kWords = kT == BK::Q4_K || kT == BK::Q5_K ? 12 : kT == BK::Q6_K ? 16 : 24;
  static constexpr int64_t kEB = kQB + kWords * 4 + 8;
  static constexpr int64_t row_bytes(int64_t nb) { return nb * kEB; }

  static void prep_group(const uint8_t* xq, int64_t arb, int64_t nvalid, int64_t nb, uint8_t* dst) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* g = dst + b * kXB;
      const uint8_t* xb[8];
      alignas(32) float dx[8];
      alignas(32) int16_t b16[8][16];
      for (int t = 0; t < 8; ++t) {
        xb[t] = t < nvalid ? xq + t * arb + b * kXBytes : nullptr;
        dx[t] = xb[t] ? ldf(xb[t]) : 0.0f;
        for (int j = 0; j < 16; ++j) {
          int16_t v = 0;
          if (xb[t]) std::memcpy(&v, xb[t] + 260 + 2 * j, 2);
          b16[t][j] = v;
        }
      }
      for (int c = 0; c < 8; ++c) {
        const uint8_t* p[8];
        for (int t = 0; t < 8; ++t) p[t] = xb[t] ? xb[t] + 4 + 32 * c : nullptr;
        put_steps(p, g + 256 * c);
      }
      store8f(g + 2048, _mm256_load_ps(dx));
      alignas(32) int16_t pr[16];
      for (int k = 0; k < 4; ++k) {  // by 32: (B_2k, B_2k+1), B_j = bsum_2j + bsum_2j+1
        for (int t = 0; t < 8; ++t) {
          pr[2 * t] = static_cast<int16_t>(b16[t][4 * k] + b16[t][4 * k + 1]);
          pr[2 * t + 1] = static_cast<int16_t>(b16[t][4 * k + 2] + b16[t][4 * k + 3]);
        }
        std::memcpy(g + 2080 + 32 * k, pr, 32);
      }
      if (kByte16)
        for (int k = 0; k < 8; ++k) {  // by 16: (bsum_2k, bsum_2k+1)
          for (int t = 0; t < 8; ++t) {
            pr[2 * t] = b16[t][2 * k];
            pr[2 * t + 1] = b16[t][2 * k + 1];
          }
          std::memcpy(g + 2208 + 32 * k, pr, 32);
        }
    }
  }

  static inline uint32_t dup16(int v) { return (static_cast<uint32_t>(v) & 0xFFFF) * 0x10001u; }
  static inline uint32_t pair16(int a, int b) { return (static_cast<uint32_t>(a) & 0xFFFF) | static_cast<uint32_t>(b) << 16; }

  static void expand_row(const uint8_t* w, int64_t nb, uint8_t* e) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kWBytes;
      uint8_t* o = e + b * kEB;
      uint32_t* words = reinterpret_cast<uint32_t*>(o + kQB);
      float* dd = reinterpret_cast<float*>(o + kEB - 8);
      if (kT == BK::Q6_K) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
        for (int n = 0; n < 2; ++n) {
          const __m256i qh = loadu(blk + 128 + 32 * n);
          const __m256i l0 = loadu(blk + 64 * n), l1 = loadu(blk + 64 * n + 32);
          __m256i q[4];
          q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
          q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
          q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
          q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
          for (int k = 0; k < 4; ++k) {
            const __m256i v = _mm256_sub_epi8(q[k], k32);
            store8i(o + 128 * n + 32 * k, _mm256_sign_epi8(v, v));
            store8i(o + 256 + 128 * n + 32 * k, v);
          }
        }
        const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
        for (int j = 0; j < 16; ++j) words[j] = dup16(sc[j]);
        dd[0] = h2f(ld16(blk + 208));
        dd[1] = 0.0f;
        continue;
      }
      if (kT == BK::Q2_K || kT == BK::Q3_K) {
        // element 128n + 32k + l: bits 2k of qs[32n + l] (+ Q3_K: hmask[l] bit 4n + k, as 4)
        const uint8_t* qs = blk + (kT == BK::Q2_K ? 16 : 32);
        const __m256i m3 = _mm256_set1_epi8(3);
        const __m256i hm = kT == BK::Q3_K ? loadu(blk) : _mm256_setzero_si256();
        for (int n = 0; n < 2; ++n) {
          const __m256i q2 = loadu(qs + 32 * n);
          for (int k = 0; k < 4; ++k) {
            __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
            if (kT == BK::Q3_K) {
              const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * n + k)));
              q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), _mm256_set1_epi8(4)));
            }
            store8i(o + 128 * n + 32 * k, q);
          }
        }
        int sc[16], sp[16];  // scales, and (Q2_K) mins / (Q3_K) scales again for the offset term
        if (kT == BK::Q2_K) {
          for (int j = 0; j < 16; ++j) {
            sc[j] = blk[j] & 0xF;
            sp[j] = blk[j] >> 4;
          }
          dd[0] = h2f(ld16(blk + 80));
          dd[1] = h2f(ld16(blk + 82));
        } else {
          int8_t s3[16];
          q3k_scales(blk + 96, s3);
          for (int j = 0; j < 16; ++j) sc[j] = sp[j] = s3[j];
          dd[0] = h2f(ld16(blk + 108));
          dd[1] = 0.0f;
        }
        for (int j = 0; j < 16; ++j) words[j] = dup16(sc[j]);
        for (int k = 0; k < 8; ++k) words[16 + k] = pair16(sp[2 * k], sp[2 * k + 1]);
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
        store8i(o + 64 * c, lo);
        store8i(o + 64 * c + 32, hi);
      }
      uint8_t mn[8];
      for (int j = 0; j < 8; ++j) {
        uint8_t sc;
        get_scale_min_k4(j, blk + 4, &sc, &mn[j]);
        words[j] = dup16(sc);
      }
      for (int k = 0; k < 4; ++k) words[8 + k] = pair16(mn[2 * k], mn[2 * k + 1]);
      dd[0] = h2f(ld16(blk));
      dd[1] = h2f(ld16(blk + 2));
    }
  }

  // Bounds (int16 sums of vpmaddubsw pairs): Q4_K pairs <= 2·15·127, 8 steps (one sub-block of 32);
  // Q5_K pairs <= 2·31·127, 4 steps; Q6_K as |q − 32| x (x·sign(q − 32)), pairs <= 2·32·127, 4 steps
  // (one sub-block of 16); Q2_K (q <= 3) and Q3_K (q <= 7, offset −4 applied as −4·Σ s_j·bsum_j)
  // 4 steps (one sub-block of 16).
  static void kernel4(const uint8_t* const* e, const uint8_t* g, int64_t nb, __m256* out) {
    __m256 acc[4];
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_ps();
    constexpr int kRun = kT == BK::Q4_K ? 8 : 4;
    constexpr int kSub = k16 ? 4 : 8;  // steps per scale
    for (int64_t b = 0; b < nb; ++b, g += kXB) {
      __m256i is[4];
      const uint8_t* eb[4];
      for (int r = 0; r < 4; ++r) {
        is[r] = _mm256_setzero_si256();
        eb[r] = e[r] + b * kEB;
      }
      for (int s0 = 0; s0 < 64; s0 += kRun) {
        __m256i a[4];
#pragma GCC unroll 8
        for (int s = s0; s < s0 + kRun; ++s) {
          const __m256i xv = loadu(g + 32 * s);
#pragma GCC unroll 4
          for (int r = 0; r < 4; ++r) {
            const __m256i w = bcast32(eb[r] + 4 * s);
            const __m256i p = _mm256_maddubs_epi16(w, kT == BK::Q6_K ? _mm256_sign_epi8(xv, bcast32(eb[r] + 256 + 4 * s)) : xv);
            a[r] = s == s0 ? p : chain(_mm256_add_epi16(a[r], p));
          }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
          is[r] = chain(_mm256_add_epi32(is[r], _mm256_madd_epi16(a[r], bcast32(eb[r] + kQB + 4 * (s0 / kSub)))));
      }
      const __m256 dx = _mm256_loadu_ps(reinterpret_cast<const float*>(g + 2048));
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        const float* dd = reinterpret_cast<const float*>(eb[r] + kEB - 8);
        // Σ_j m_j·B_j (mins) or Σ_j s_j·bsum_j (Q3_K offset), per token lane
        __m256i sm = _mm256_setzero_si256();
        if (kByte16) {
          for (int k = 0; k < 8; ++k) sm = _mm256_add_epi32(sm, _mm256_madd_epi16(loadu(g + 2208 + 32 * k), bcast32(eb[r] + kQB + 64 + 4 * k)));
        } else if (kMins) {
          for (int k = 0; k < 4; ++k) sm = _mm256_add_epi32(sm, _mm256_madd_epi16(loadu(g + 2080 + 32 * k), bcast32(eb[r] + kQB + 32 + 4 * k)));
        }
        if (kT == BK::Q3_K) is[r] = _mm256_sub_epi32(is[r], _mm256_slli_epi32(sm, 2));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]), _mm256_mul_ps(_mm256_broadcast_ss(dd), dx), acc[r]);
        if (kMins) acc[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(sm), _mm256_mul_ps(_mm256_broadcast_ss(dd + 1), dx), acc[r]);
      }
    }
    for (int r = 0; r < 4; ++r) out[r] = acc[r];
  }
};

// ------------------------------------------------------------------ driver

template <class G>
int64_t run_gemm(const void* w, const void* xq, float* y, int64_t T, int64_t nb, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t groups = T / 8 + (T % 8 >= kMinGroup ? 1 : 0);
  if (groups == 0) return 0;
  // Rows expanded at a time (L2-resident), and token groups transposed at a time (bounds the
  // per-thread buffers: 32 groups of a K = 8192 Q4_0 row are 2.6 MB).
  constexpr int64_t kRowChunk = 16, kGroupBatch = 32;
  const int64_t wrb = nb * G::kWBytes, arb = nb * G::kXBytes;
  const int64_t gbytes = nb * G::kXB, ebytes = G::row_bytes(nb);
  thread_local std::vector<uint8_t> xbuf, ebuf;
  const int64_t gcap = std::min(groups, kGroupBatch);
  if (xbuf.size() < static_cast<size_t>(gcap * gbytes)) xbuf.resize(static_cast<size_t>(gcap * gbytes));
  if (ebuf.size() < static_cast<size_t>(kRowChunk * ebytes)) ebuf.resize(static_cast<size_t>(kRowChunk * ebytes));
  const auto* xb = static_cast<const uint8_t*>(xq);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t g0 = 0; g0 < groups; g0 += kGroupBatch) {
    const int64_t g1 = std::min(groups, g0 + kGroupBatch);
    for (int64_t gi = g0; gi < g1; ++gi)
      G::prep_group(xb + gi * 8 * arb, arb, std::min<int64_t>(8, T - gi * 8), nb, xbuf.data() + (gi - g0) * gbytes);
    for (int64_t c0 = n0; c0 < n1; c0 += kRowChunk) {
      const int64_t c1 = std::min(n1, c0 + kRowChunk);
      for (int64_t n = c0; n < c1; ++n) G::expand_row(wb + n * wrb, nb, ebuf.data() + (n - c0) * ebytes);
      for (int64_t gi = g0; gi < g1; ++gi) {
        const int64_t tv = std::min<int64_t>(8, T - gi * 8);
        for (int64_t n = c0; n < c1; n += 4) {
          const uint8_t* e[4];  // rows past c1 repeat the last one (outputs discarded)
          for (int r = 0; r < 4; ++r) e[r] = ebuf.data() + std::min<int64_t>(n + r - c0, c1 - 1 - c0) * ebytes;
          __m256 acc[4];
          G::kernel4(e, xbuf.data() + (gi - g0) * gbytes, nb, acc);
          alignas(32) float out[4][8];
          for (int r = 0; r < 4; ++r) _mm256_store_ps(out[r], acc[r]);
          for (int r = 0; r < 4 && n + r < c1; ++r)
            for (int64_t t = 0; t < tv; ++t) y[(gi * 8 + t) * ldy + n + r] = out[r][t];
        }
      }
    }
  }
  return std::min(T, groups * 8);
}

}  // namespace

// Tokens [0, returned) of y computed here (0: none, the GEMV kernels do all).
int64_t qgemm_gemm_avx2(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                        int64_t n0, int64_t n1) {
  if (T < kMinGroup) return 0;
  switch (wtype) {
    case DType::Q4_0: return run_gemm<G32<B32::Q4_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q4_1: return run_gemm<G32<B32::Q4_1>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q5_0: return run_gemm<G32<B32::Q5_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q5_1: return run_gemm<G32<B32::Q5_1>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q8_0: return run_gemm<G32<B32::Q8_0>>(w, xq, y, T, K / 32, ldy, n0, n1);
    case DType::Q2_K: return run_gemm<GK<BK::Q2_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q3_K: return run_gemm<GK<BK::Q3_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q4_K: return run_gemm<GK<BK::Q4_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q5_K: return run_gemm<GK<BK::Q5_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    case DType::Q6_K: return run_gemm<GK<BK::Q6_K>>(w, xq, y, T, K / 256, ldy, n0, n1);
    default: return 0;
  }
}

}  // namespace qm::cpu
