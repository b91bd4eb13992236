// AVX-512 dense attention kernels. Compiled with -mavx2 -mfma -mf16c -mavx512f -mavx512bw
// -mavx512vl -mavx512dq -mavx512vnni; only called when the CPU has them.
//
// The flash-attention driver is the one every ISA shares (attention_impl.h: keys in pieces of
// kAttnBlockK with the online softmax of FlashAttention-2, Dao 2023: running max m, running sum l,
// O rescaled by e^(m_old − m_new), one division at the end). This file supplies its 512-bit `Ops`:
//  - qk: score tiles of NR rows × NK keys (4×4; 1×16, 2×8, 3×5 for the 1–3 rows left over). Each
//    (row, key) accumulator holds 16 partial sums of q·k (lane i: d ≡ i mod 16, in order of d; a D
//    tail by masked loads), and a transpose-reduce tree (blend + shuffle + add per level) folds the
//    16 accumulators into one vector of scores (lane r·NK + j), stored with masked stores. A
//    score's arithmetic (the partial sums, then lanes i + 8, i + 4, i + 2, i + 1 of the tree) is
//    the same for every tile shape and does not depend on the other rows of the task, so a row's
//    output never depends on which task it is in (chunked prefill equals one-shot, batched decode
//    equals single decode) and, unlike the AVX2 kernel, no rows are padded: a one-row decode task
//    computes one row. (The tree costs ~2.8 vector ops per score next to D/16 FMAs. A broadcast
//    GEMM over a transposed K block would need no tree, but transposing K costs more than the
//    scores at decode's 1–8 rows, and every row count must share one arithmetic.)
//  - qk_i8: VNNI vpdpbusd on (k ⊕ 0x80) · q = Σ k·q + 128·Σ q, minus 128·Σ q per row: the exact
//    integer dots of the scalar / AVX2 kernels (exact for the whole int8 range, −128 included).
//  - pv: O += P·V with 4 rows × 64 dims (1–2 rows × 128 dims) of accumulators in registers, a fma
//    chain over the keys per output element (independent of the row grouping, as in AVX2).
//  - exp: the AVX2 kernel's Cephes polynomial on 16 lanes (relative error ~2e-7; 0 below −87.3,
//    NaN stays NaN), the 2^n factor by vscalefps.
//  - key / D tails by masked loads and stores; f16 staging by vcvtph2ps. Tasks of <= 4 rows (decode)
//    skip the staging: qk / pv read the f16 cache and convert in registers (load16), prefetching
//    the next key block into L2 (decode attention over 640 keys: 10.8 -> ~7 ms per token for 16
//    layers on one Zen 4 core, most of the rest DRAM reads of the cache).
// Scores and outputs differ from the AVX2 kernel's by float rounding only (summation order).
// Single thread on Sapphire Rapids, causal prefill D = 128 (tasks of 64 rows), T = 2048 / 8192,
// f32 or f16 K/V: ~80 GFLOP/s, ~1.5x the AVX2 kernel (fma_peak: ~175 vs ~93 GFLOP/s); f16 decode
// of 1–8 rows: ~1.4–1.7x.
// GCC 12 at -O3 reports the _mm512_undefined_*() pass-through operands inside avx512fintrin.h
// (shuffle_f32x4, cvtepi32_ps, reduce_add, ...) as (maybe) used uninitialized: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../fp16.h"
#include "attention.h"

namespace qm::cpu {

namespace {

inline __mmask16 lanes16(int64_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u); }

// ---- transpose-reduce of 16 accumulators: lane p of the result = Σ lanes of a[p] -------------------
// Level h (8, 4, 2, 1) pairs x with y: a lane p with (p & h) == 0 gets x[p] + x[p + h], the others
// y[p − h] + y[p]. Pairing a[k] with a[k + h] puts a[p]'s total in lane p.
template <bool kInt>
inline __m512 add16(__m512 a, __m512 b) {
  if constexpr (kInt)
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  else
    return _mm512_add_ps(a, b);
}

template <bool kInt>
inline __m512 reduce16(__m512* a) {
  const __m512i idx4 = _mm512_setr_epi32(4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 24, 25, 26, 27);
  const __m512i idx1 = _mm512_setr_epi32(1, 16, 3, 18, 5, 20, 7, 22, 9, 24, 11, 26, 13, 28, 15, 30);
#pragma GCC unroll 16
  for (int k = 0; k < 8; ++k)
    a[k] = add16<kInt>(_mm512_mask_blend_ps(0xFF00, a[k], a[k + 8]), _mm512_shuffle_f32x4(a[k], a[k + 8], 0x4E));
#pragma GCC unroll 16
  for (int k = 0; k < 4; ++k)
    a[k] = add16<kInt>(_mm512_mask_blend_ps(0xF0F0, a[k], a[k + 4]), _mm512_permutex2var_ps(a[k], idx4, a[k + 4]));
#pragma GCC unroll 16
  for (int k = 0; k < 2; ++k)
    a[k] = add16<kInt>(_mm512_mask_blend_ps(0xCCCC, a[k], a[k + 2]), _mm512_shuffle_ps(a[k], a[k + 2], 0x4E));
  return add16<kInt>(_mm512_mask_blend_ps(0xAAAA, a[0], a[1]), _mm512_permutex2var_ps(a[0], idx1, a[1]));
}

// Stores lanes r·NK .. r·NK + nv − 1 of s to S[r·ldS + 0 .. nv) (ldS ≥ NK).
template <int NR, int NK>
inline void store_tile(__m512 s, float* S, int ldS, int nv) {
  const unsigned keys = (1u << nv) - 1u;
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    _mm512_mask_storeu_ps(S + r * ldS - r * NK, static_cast<__mmask16>(keys << (r * NK)), s);
}

// ---- K / V element loads: f32, or f16 converted in registers (exact: every f16 is a float) ----------
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline __m512 load16(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(__mmask16 m, const uint16_t* p) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

// Rows read straight from an f16 cache (the decode path, see Ops::kDirectF16Rows) prefetch the same
// row of the next key block; staged f32 rows were prefetched by stage_f16 already.
inline void prefetch_row(const float*, int64_t, int64_t) {}
inline void prefetch_row(const uint16_t* row, int64_t stride, int64_t D) { prefetch_next_block(row, stride, D); }

// ---- scores: NR rows × NK keys (keys f32 or f16) ----------------------------------------------------
template <int NR, int NK, class KT>
inline void qk_tile(const float* const* q, const KT* const* kp, int64_t D, __m512 vscale, float* S, int ldS, int nv) {
  static_assert(NR * NK <= 16, "one vector of scores per tile");
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    __m512 kv[NK];
#pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = load16(kp[j] + d);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 qv = _mm512_loadu_ps(q[r] + d);
#pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[r * NK + j] = _mm512_fmadd_ps(qv, kv[j], acc[r * NK + j]);
    }
  }
  if (d < D) {
    const __mmask16 m = lanes16(D - d);
    __m512 kv[NK];
#pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = load16(m, kp[j] + d);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q[r] + d);
#pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[r * NK + j] = _mm512_fmadd_ps(qv, kv[j], acc[r * NK + j]);
    }
  }
  store_tile<NR, NK>(_mm512_mul_ps(vscale, reduce16<false>(acc)), S, ldS, nv);
}

// One row × 16 keys (decode without GQA: one query per KV head). The general tile walks the 16 key
// rows side by side, 16 dims at a time, and needs 16 accumulators + 16 converted keys + q: more
// than 32 registers, so it spilled. Here q (up to 128 dims) stays in registers and each key row is
// read front to back into its own accumulator, in the same per-lane order (bit-identical scores).
template <class KT>
inline void qk_tile_row1(const float* q, const KT* const* kp, int64_t D, __m512 vscale, float* S, int nv) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t d0 = 0; d0 < D; d0 += 128) {
    const int64_t n = std::min<int64_t>(128, D - d0);
    const int full = static_cast<int>(n / 16);
    const __mmask16 tail = lanes16(n - 16 * full);
    __m512 qv[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)
      qv[c] = c < full ? _mm512_loadu_ps(q + d0 + 16 * c) : _mm512_maskz_loadu_ps(c == full ? tail : 0, q + d0 + 16 * c);
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const KT* k = kp[j] + d0;
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        if (c < full)
          acc[j] = _mm512_fmadd_ps(qv[c], load16(k + 16 * c), acc[j]);
        else if (c == full && tail)
          acc[j] = _mm512_fmadd_ps(qv[c], load16(tail, k + 16 * c), acc[j]);
      }
    }
  }
  store_tile<1, 16>(_mm512_mul_ps(vscale, reduce16<false>(acc)), S, 16, nv);
}

template <int NR, int NK, class KT>
inline void qk_rows(const float* const* q, const KT* k, int64_t ks, int nk, int64_t D, __m512 vscale, float* S,
                    int ldS) {
  const KT* kp[NK];
  int j = 0;
  for (; j + NK <= nk; j += NK) {
#pragma GCC unroll 16
    for (int t = 0; t < NK; ++t) {
      kp[t] = k + (j + t) * ks;
      prefetch_row(kp[t], ks, D);
    }
    if constexpr (NR == 1 && NK == 16)
      qk_tile_row1(q[0], kp, D, vscale, S + j, NK);
    else
      qk_tile<NR, NK>(q, kp, D, vscale, S + j, ldS, NK);
  }
  if (j < nk) {
    // last keys: a full tile ending at nk when there is one (recomputing a few scores, bit for bit
    // the same), else the last key repeated, its lanes not stored
    if (nk >= NK) {
      j = nk - NK;
#pragma GCC unroll 16
      for (int t = 0; t < NK; ++t) kp[t] = k + (j + t) * ks;
      qk_tile<NR, NK>(q, kp, D, vscale, S + j, ldS, NK);
    } else {
#pragma GCC unroll 16
      for (int t = 0; t < NK; ++t) kp[t] = k + std::min(j + t, nk - 1) * ks;
      qk_tile<NR, NK>(q, kp, D, vscale, S + j, ldS, nk - j);
    }
  }
}

// ---- INT8 scores (VNNI) -------------------------------------------------------------------------------
// vpdpbusd multiplies unsigned by signed bytes: (k ⊕ 0x80) is k + 128 as an unsigned byte, so the
// dot is Σ k·q + 128·Σ q, exact in i32; corr holds 128·Σq of each lane's row.
template <int NR, int NK>
inline void qk8_tile(const int8_t* const* q, const int8_t* const* kp, int64_t ks, __m512i corr, float* S, int ldS,
                     int nv) {
  static_assert(NR * NK <= 16, "one vector of scores per tile");
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_si512();
  int64_t d = 0;
  for (; d + 64 <= ks; d += 64) {
    __m512i kv[NK];
#pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = _mm512_xor_si512(_mm512_loadu_si512(kp[j] + d), bias);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512i qv = _mm512_loadu_si512(q[r] + d);
#pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[r * NK + j] = _mm512_dpbusd_epi32(acc[r * NK + j], kv[j], qv);
    }
  }
  if (d < ks) {  // 32 bytes left (rows are multiples of 32); masked-off q bytes are 0
    const __mmask64 m = (1ull << (ks - d)) - 1ull;
    __m512i kv[NK];
#pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, kp[j] + d), bias);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512i qv = _mm512_maskz_loadu_epi8(m, q[r] + d);
#pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[r * NK + j] = _mm512_dpbusd_epi32(acc[r * NK + j], kv[j], qv);
    }
  }
  __m512 a[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) a[i] = _mm512_castsi512_ps(acc[i]);
  const __m512i dot = _mm512_sub_epi32(_mm512_castps_si512(reduce16<true>(a)), corr);
  store_tile<NR, NK>(_mm512_cvtepi32_ps(dot), S, ldS, nv);
}

template <int NR, int NK>
inline void qk8_rows(const int8_t* const* q, const int32_t* qsum, const int8_t* k, int64_t ks, int nk, float* S,
                     int ldS) {
  alignas(64) int32_t c[16];
#pragma GCC unroll 16
  for (int p = 0; p < 16; ++p) c[p] = 128 * qsum[std::min(p / NK, NR - 1)];
  const __m512i corr = _mm512_load_si512(c);
  const int8_t* kp[NK];
  int j = 0;
  for (; j + NK <= nk; j += NK) {
#pragma GCC unroll 16
    for (int t = 0; t < NK; ++t) kp[t] = k + (j + t) * ks;
    qk8_tile<NR, NK>(q, kp, ks, corr, S + j, ldS, NK);
  }
  if (j < nk) {
#pragma GCC unroll 16
    for (int t = 0; t < NK; ++t) kp[t] = k + std::min(j + t, nk - 1) * ks;
    qk8_tile<NR, NK>(q, kp, ks, corr, S + j, ldS, nk - j);
  }
}

// ---- P·V: rows × (NV vectors of 16 dims); MASK: the last vector is a D tail ---------------------------
template <int NR, int NV, bool MASK, class VT>
inline void pv_cols(const float* const* p, float* const* o, const VT* V, int64_t vs, int nk, int64_t d0, int64_t D,
                    __mmask16 last) {
  __m512 acc[NR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      acc[r][v] = MASK && v == NV - 1 ? _mm512_maskz_loadu_ps(last, o[r] + d0 + 16 * v) : _mm512_loadu_ps(o[r] + d0 + 16 * v);
  for (int j = 0; j < nk; ++j) {
    const VT* vj = V + j * vs + d0;
    if (d0 == 0) prefetch_row(vj, vs, D);
    __m512 vv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) vv[v] = MASK && v == NV - 1 ? load16(last, vj + 16 * v) : load16(vj + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 pj = _mm512_set1_ps(p[r][j]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(pj, vv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      if (MASK && v == NV - 1)
        _mm512_mask_storeu_ps(o[r] + d0 + 16 * v, last, acc[r][v]);
      else
        _mm512_storeu_ps(o[r] + d0 + 16 * v, acc[r][v]);
    }
}

template <int NR, class VT>
inline void pv_rows(const int* srow, const int* orow, const float* P, int ldP, const VT* V, int64_t vs, int nk,
                    int64_t D, float* O) {
  constexpr int NV = NR <= 2 ? 8 : 4;
  const float* p[NR];
  float* o[NR];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) {
    p[r] = P + static_cast<size_t>(srow[r]) * ldP;
    o[r] = O + static_cast<size_t>(orow[r]) * D;
  }
  int64_t d = 0;
  for (; d + 16 * NV <= D; d += 16 * NV) pv_cols<NR, NV, false>(p, o, V, vs, nk, d, D, 0xFFFF);
  const int64_t rest = D - d;  // < 16·NV
  if (rest == 0) return;
  const int nvec = static_cast<int>((rest + 15) / 16);
  const __mmask16 last = lanes16(rest - 16 * (nvec - 1));
  switch (nvec) {
    case 1: pv_cols<NR, 1, true>(p, o, V, vs, nk, d, D, last); break;
    case 2: pv_cols<NR, 2, true>(p, o, V, vs, nk, d, D, last); break;
    case 3: pv_cols<NR, 3, true>(p, o, V, vs, nk, d, D, last); break;
    case 4: pv_cols<NR, 4, true>(p, o, V, vs, nk, d, D, last); break;
    case 5: pv_cols<NR, 5, true>(p, o, V, vs, nk, d, D, last); break;
    case 6: pv_cols<NR, 6, true>(p, o, V, vs, nk, d, D, last); break;
    case 7: pv_cols<NR, 7, true>(p, o, V, vs, nk, d, D, last); break;
    case 8: pv_cols<NR, 8, true>(p, o, V, vs, nk, d, D, last); break;
    default: break;
  }
}

// ---- softmax pieces -----------------------------------------------------------------------------------
// e^x, same Cephes polynomial as exp8 (simd_avx2.h): relative error ~2e-7; 0 for x < −87.3
// (−inf included); NaN stays NaN.
inline __m512 exp16(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_set1_ps(88.3f), x);  // NaN in the second operand is returned
  x = _mm512_max_ps(_mm512_set1_ps(-87.3f), x);
  const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
  __m512 y = _mm512_set1_ps(1.9875691500E-4f);
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
  y = _mm512_scalef_ps(y, fx);  // · 2^fx (fx in [−126, 127]: exact, as the AVX2 exponent-bits product)
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), y);
}

inline float hsum16(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

struct Ops {
  // Tasks of at most this many rows read an f16 cache directly (qk / pv on uint16_t rows, converted
  // in registers) instead of staging each block as f32: every key is then converted once per tile
  // of 4 rows either way, and decode (1 row per KV head, or a few with GQA) skips the store and
  // reload of the staging, which cost more than the scores themselves. Same arithmetic either way.
  static constexpr int kDirectF16Rows = 4;
  template <class KT>
  static void qk(const float* const* q, int R, const KT* k, int64_t ks, int nk, int64_t D, float scale, float* S,
                 int ldS) {
    const __m512 vs = _mm512_set1_ps(scale);
    int r = 0;
    for (; r + 4 <= R; r += 4) qk_rows<4, 4>(q + r, k, ks, nk, D, vs, S + r * ldS, ldS);
    switch (R - r) {
      case 3: qk_rows<3, 5>(q + r, k, ks, nk, D, vs, S + r * ldS, ldS); break;
      case 2: qk_rows<2, 8>(q + r, k, ks, nk, D, vs, S + r * ldS, ldS); break;
      case 1: qk_rows<1, 16>(q + r, k, ks, nk, D, vs, S + r * ldS, ldS); break;
      default: break;
    }
  }
  static void qk_i8(const int8_t* const* q, int R, const int8_t* k, int64_t ks, int nk, float* S, int ldS) {
    int32_t qsum[kAttnMaxRows];
    const __m512i ones = _mm512_set1_epi8(1);
    for (int r = 0; r < R; ++r) {
      __m512i a = _mm512_setzero_si512();
      for (int64_t d = 0; d < ks; d += 64) {
        const __mmask64 m = ks - d >= 64 ? ~0ull : (1ull << (ks - d)) - 1ull;
        a = _mm512_dpbusd_epi32(a, ones, _mm512_maskz_loadu_epi8(m, q[r] + d));
      }
      qsum[r] = _mm512_reduce_add_epi32(a);
    }
    int r = 0;
    for (; r + 4 <= R; r += 4) qk8_rows<4, 4>(q + r, qsum + r, k, ks, nk, S + r * ldS, ldS);
    switch (R - r) {
      case 3: qk8_rows<3, 5>(q + r, qsum + r, k, ks, nk, S + r * ldS, ldS); break;
      case 2: qk8_rows<2, 8>(q + r, qsum + r, k, ks, nk, S + r * ldS, ldS); break;
      case 1: qk8_rows<1, 16>(q + r, qsum + r, k, ks, nk, S + r * ldS, ldS); break;
      default: break;
    }
  }
  static void stage_f16(const uint16_t* src, int64_t stride, int nk, int64_t D, float* dst) {
    const __mmask16 last = lanes16(D % 16);
    const int64_t D16 = D / 16 * 16;
    for (int j = 0; j < nk; ++j) {
      const uint16_t* s = src + j * stride;
      prefetch_next_block(s, stride, D);
      float* t = dst + j * D;
      int64_t d = 0;
      for (; d < D16; d += 16)
        _mm512_storeu_ps(t + d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + d))));
      if (d < D) _mm512_mask_storeu_ps(t + d, last, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(last, s + d)));
    }
  }
  static float row_max(const float* s, int n) {
    const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512 m = ninf;
    int j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
    if (j < n) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, lanes16(n - j), s + j));
    __m256 a = _mm256_max_ps(_mm512_castps512_ps256(m), _mm512_extractf32x8_ps(m, 1));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  static float exp_sum(float* s, int n, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 acc = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
      _mm512_storeu_ps(s + j, e);
      acc = _mm512_add_ps(acc, e);
    }
    if (j < n) {
      // lanes beyond n contribute exactly 0 (even when s − m would be NaN, e.g. m = −inf)
      const __mmask16 t = lanes16(n - j);
      const __m512 e = _mm512_maskz_mov_ps(t, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vm)));
      _mm512_mask_storeu_ps(s + j, t, e);
      acc = _mm512_add_ps(acc, e);
    }
    return hsum16(acc);
  }
  static void scale(float* o, int64_t D, float a) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), va));
    if (d < D) {
      const __mmask16 t = lanes16(D - d);
      _mm512_mask_storeu_ps(o + d, t, _mm512_mul_ps(_mm512_maskz_loadu_ps(t, o + d), va));
    }
  }
  static void scale_store(float* dst, const float* o, int64_t D, float a) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) _mm512_storeu_ps(dst + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), va));
    if (d < D) {
      const __mmask16 t = lanes16(D - d);
      _mm512_mask_storeu_ps(dst + d, t, _mm512_mul_ps(_mm512_maskz_loadu_ps(t, o + d), va));
    }
  }
  template <class VT>
  static void pv(const int* srow, const int* orow, int n, const float* P, int ldP, const VT* V, int64_t vs, int nk,
                 int64_t D, float* O) {
    int i = 0;
    for (; i + 4 <= n; i += 4) pv_rows<4>(srow + i, orow + i, P, ldP, V, vs, nk, D, O);
    switch (n - i) {
      case 3: pv_rows<3>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      case 2: pv_rows<2>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      case 1: pv_rows<1>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      default: break;
    }
  }
};

#include "attention_impl.h"

}  // namespace

void attn_rows_avx512(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                      int n_blocks, int64_t block_k, AttnStats* stats) {
  attn_rows_impl<Ops>(c, kv, rows, R, blocks, n_blocks, block_k, stats);
}

}  // namespace qm::cpu

namespace qm::cpu {
// vcvtps2ph (round to nearest even), 16 lanes; the last n mod 16 by a masked conversion. The AVX2
// version converts n mod 8 trailing values with the scalar f32_to_f16, which differs from
// vcvtps2ph only for NaN (it writes sign | 0x7e00, dropping the payload): those lanes get the same
// fix-up here, so the bits are identical to f32_to_f16_row_avx2 for every input.
void f32_to_f16_row_avx512(const float* src, uint16_t* dst, int64_t n) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), kRound));
  if (i < n) {
    const __mmask16 t = lanes16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(t, src + i);
    __m256i h = _mm512_cvtps_ph(v, kRound);
    const __mmask16 scalar_tail = static_cast<__mmask16>(t & ~lanes16(n / 8 * 8 - i));
    const __mmask16 nan = _mm512_mask_cmp_ps_mask(scalar_tail, v, v, _CMP_UNORD_Q);
    if (nan) {
      const __m256i sign = _mm256_and_si256(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)),
                                            _mm256_set1_epi16(static_cast<short>(0x8000)));
      h = _mm256_mask_blend_epi16(nan, h, _mm256_or_si256(sign, _mm256_set1_epi16(0x7e00)));
    }
    _mm256_mask_storeu_epi16(dst + i, t, h);
  }
}
}  // namespace qm::cpu

namespace qm::cpu {
// The same measurement as fma_peak_avx2 with zmm FMAs: `iters` rounds of 192 flops (so
// kFmaPeakFlopsPerIterAvx2 stays the count per iteration), i.e. 6 16-wide FMAs per round, run
// as 12 independent chains updated every other round (latency 4 × 2 FMA ports needs ≥ 8 chains).
float fma_peak_avx512(int64_t iters) {
  static_assert(kFmaPeakFlopsPerIterAvx2 == 2 * 16 * 6, "one round = 6 zmm FMAs");
  __m512 a[12];
#pragma GCC unroll 16
  for (int j = 0; j < 12; ++j) a[j] = _mm512_set1_ps(1.0f + j);
  const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  int64_t i = 0;
  for (; i + 2 <= iters; i += 2)
#pragma GCC unroll 16
    for (int j = 0; j < 12; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  if (i < iters)
#pragma GCC unroll 16
    for (int j = 0; j < 6; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  __m512 s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, a[j]);
  return hsum16(s);
}
}  // namespace qm::cpu
