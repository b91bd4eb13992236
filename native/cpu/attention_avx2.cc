// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has them.
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

#include "simd_avx2.h"

// 4 query rows × 2 keys share every load; D tail by masked loads (zeros beyond D).
template <int NR, int NK>
inline void qk_tile(const float* const* q, const float* k, int64_t ks, int64_t D, float scale, float* S, int ldS) {
  __m256 acc[NR][NK];
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < NK; ++j) acc[r][j] = _mm256_setzero_ps();
  const int64_t D8 = D / 8 * 8;
  for (int64_t d = 0; d < D8; d += 8) {
    __m256 kv[NK];
    for (int j = 0; j < NK; ++j) kv[j] = _mm256_loadu_ps(k + j * ks + d);
    for (int r = 0; r < NR; ++r) {
      const __m256 qv = _mm256_loadu_ps(q[r] + d);
      for (int j = 0; j < NK; ++j) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
    }
  }
  if (D8 < D) {
    const __m256i msk = tail_mask8(D - D8);
    __m256 kv[NK];
    for (int j = 0; j < NK; ++j) kv[j] = _mm256_maskload_ps(k + j * ks + D8, msk);
    for (int r = 0; r < NR; ++r) {
      const __m256 qv = _mm256_maskload_ps(q[r] + D8, msk);
      for (int j = 0; j < NK; ++j) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
    }
  }
  static_assert(NR == 4, "rows are always processed in groups of 4 (padded), so a row's score never depends on its group");
  // one combined reduction per key for the 4 rows
  const __m128 vs = _mm_set1_ps(scale);
  for (int j = 0; j < NK; ++j) {
    alignas(16) float t[4];
    _mm_store_ps(t, _mm_mul_ps(vs, hsum4x8(acc[0][j], acc[1][j], acc[2][j], acc[3][j])));
    for (int r = 0; r < 4; ++r) S[r * ldS + j] = t[r];
  }
}

template <int NR>
inline void qk_rows(const float* const* q, const float* k, int64_t ks, int nk, int64_t D, float scale, float* S,
                    int ldS) {
  int j = 0;
  for (; j + 2 <= nk; j += 2) qk_tile<NR, 2>(q, k + j * ks, ks, D, scale, S + j, ldS);
  if (j < nk) qk_tile<NR, 1>(q, k + j * ks, ks, D, scale, S + j, ldS);
}

// O[orow] += Σ_j P[srow][j] · V[j]: 4 rows × 16 dims of accumulators stay in registers over the keys.
template <int NR>
inline void pv_tile(const int* srow, const int* orow, const float* P, int ldP, const float* V, int64_t vs, int nk,
                    int64_t D, float* O) {
  const float* p[NR];
  float* o[NR];
  for (int r = 0; r < NR; ++r) {
    p[r] = P + static_cast<size_t>(srow[r]) * ldP;
    o[r] = O + static_cast<size_t>(orow[r]) * D;
  }
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    __m256 a0[NR], a1[NR];
    for (int r = 0; r < NR; ++r) {
      a0[r] = _mm256_loadu_ps(o[r] + d);
      a1[r] = _mm256_loadu_ps(o[r] + d + 8);
    }
    for (int j = 0; j < nk; ++j) {
      const __m256 v0 = _mm256_loadu_ps(V + j * vs + d), v1 = _mm256_loadu_ps(V + j * vs + d + 8);
      for (int r = 0; r < NR; ++r) {
        const __m256 pj = _mm256_broadcast_ss(p[r] + j);
        a0[r] = _mm256_fmadd_ps(pj, v0, a0[r]);
        a1[r] = _mm256_fmadd_ps(pj, v1, a1[r]);
      }
    }
    for (int r = 0; r < NR; ++r) {
      _mm256_storeu_ps(o[r] + d, a0[r]);
      _mm256_storeu_ps(o[r] + d + 8, a1[r]);
    }
  }
  for (; d < D; d += 8) {
    const __m256i msk = tail_mask8(std::min<int64_t>(8, D - d));
    __m256 a0[NR];
    for (int r = 0; r < NR; ++r) a0[r] = _mm256_maskload_ps(o[r] + d, msk);
    for (int j = 0; j < nk; ++j) {
      const __m256 v0 = _mm256_maskload_ps(V + j * vs + d, msk);
      for (int r = 0; r < NR; ++r) a0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p[r] + j), v0, a0[r]);
    }
    for (int r = 0; r < NR; ++r) _mm256_maskstore_ps(o[r] + d, msk, a0[r]);
  }
}

// INT8 scores, 4 rows × 2 keys: |q| · (k with q's sign) by maddubs (≤ 2·127² per i16 lane, no
// saturation since both sides are clamped to ±127), widened by madd into i32 lanes.
template <int NR, int NK>
inline void qk8_tile(const int8_t* const* q, const int8_t* k, int64_t ks, float* S, int ldS) {
  __m256i acc[NR][NK];
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < NK; ++j) acc[r][j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t d = 0; d < ks; d += 32) {
    __m256i kv[NK];
    for (int j = 0; j < NK; ++j) kv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + j * ks + d));
    for (int r = 0; r < NR; ++r) {
      const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[r] + d));
      const __m256i qa = _mm256_abs_epi8(qv);
      for (int j = 0; j < NK; ++j) {
        const __m256i p16 = _mm256_maddubs_epi16(qa, _mm256_sign_epi8(kv[j], qv));
        acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(p16, ones));
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < NK; ++j) {
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(acc[r][j]), _mm256_extracti128_si256(acc[r][j], 1));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
      S[r * ldS + j] = static_cast<float>(_mm_cvtsi128_si32(t));
    }
}

template <int NR>
inline void qk8_rows(const int8_t* const* q, const int8_t* k, int64_t ks, int nk, float* S, int ldS) {
  int j = 0;
  for (; j + 2 <= nk; j += 2) qk8_tile<NR, 2>(q, k + j * ks, ks, S + j, ldS);
  if (j < nk) qk8_tile<NR, 1>(q, k + j * ks, ks, S + j, ldS);
}

struct Ops {
  static void qk_i8(const int8_t* const* q, int R, const int8_t* k, int64_t ks, int nk, float* S, int ldS) {
    int r = 0;
    for (; r + 4 <= R; r += 4) qk8_rows<4>(q + r, k, ks, nk, S + r * ldS, ldS);
    switch (R - r) {
      case 3: qk8_rows<3>(q + r, k, ks, nk, S + r * ldS, ldS); break;
      case 2: qk8_rows<2>(q + r, k, ks, nk, S + r * ldS, ldS); break;
      case 1: qk8_rows<1>(q + r, k, ks, nk, S + r * ldS, ldS); break;
      default: break;
    }
  }
  static constexpr int kDirectF16Rows = 0;  // f16 K/V always staged as f32
  static void stage_f16(const uint16_t* src, int64_t stride, int nk, int64_t D, float* dst) {
    const int64_t D8 = D / 8 * 8;
    for (int j = 0; j < nk; ++j) {
      const uint16_t* s = src + j * stride;
      prefetch_next_block(s, stride, D);
      float* t = dst + j * D;
      int64_t d = 0;
      for (; d < D8; d += 8) _mm256_storeu_ps(t + d, load_f16x8(s + d));
      for (; d < D; ++d) t[d] = f16_to_f32(s[d]);
    }
  }
  static void qk(const float* const* q, int R, const float* k, int64_t ks, int nk, int64_t D, float scale, float* S,
                 int ldS) {
    int r = 0;
    for (; r + 4 <= R; r += 4) qk_rows<4>(q + r, k, ks, nk, D, scale, S + r * ldS, ldS);
    if (r < R) {
      // 1..3 rows left: pad to 4 with repeats of the last row, writing the extra rows to scratch
      alignas(32) float pad[4 * kAttnBlockK];
      const float* qp[4];
      for (int i = 0; i < 4; ++i) qp[i] = q[std::min(r + i, R - 1)];
      qk_rows<4>(qp, k, ks, nk, D, scale, pad, kAttnBlockK);
      for (int i = 0; r + i < R; ++i) std::memcpy(S + (r + i) * ldS, pad + i * kAttnBlockK, nk * sizeof(float));
    }
  }
  static float row_max(const float* s, int n) {
    __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    int j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; j < n; ++j) r = s[j] > r ? s[j] : r;
    return r;
  }
  static float exp_sum(float* s, int n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
      _mm256_storeu_ps(s + j, e);
      acc = _mm256_add_ps(acc, e);
    }
    if (j < n) {
      float tmp[8];
      for (int i = 0; i < 8; ++i) tmp[i] = j + i < n ? s[j + i] - m : -std::numeric_limits<float>::infinity();
      const __m256 e = exp8(_mm256_loadu_ps(tmp));
      _mm256_storeu_ps(tmp, e);
      acc = _mm256_add_ps(acc, e);
      for (int i = 0; j + i < n; ++i) s[j + i] = tmp[i];
    }
    return hsum8(acc);
  }
  static void scale(float* o, int64_t D, float a) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t d = 0;
    for (; d + 8 <= D; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), va));
    for (; d < D; ++d) o[d] *= a;
  }
  static void scale_store(float* dst, const float* o, int64_t D, float a) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t d = 0;
    for (; d + 8 <= D; d += 8) _mm256_storeu_ps(dst + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), va));
    for (; d < D; ++d) dst[d] = o[d] * a;
  }
  static void pv(const int* srow, const int* orow, int n, const float* P, int ldP, const float* V, int64_t vs, int nk,
                 int64_t D, float* O) {
    int i = 0;
    for (; i + 4 <= n; i += 4) pv_tile<4>(srow + i, orow + i, P, ldP, V, vs, nk, D, O);
    switch (n - i) {
      case 3: pv_tile<3>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      case 2: pv_tile<2>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      case 1: pv_tile<1>(srow + i, orow + i, P, ldP, V, vs, nk, D, O); break;
      default: break;
    }
  }
};

#include "attention_impl.h"

}  // namespace

void attn_rows_avx2(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                    int n_blocks, int64_t block_k, AttnStats* stats) {
  attn_rows_impl<Ops>(c, kv, rows, R, blocks, n_blocks, block_k, stats);
}

}  // namespace qm::cpu

namespace qm::cpu {
void f32_to_f16_row_avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}
}  // namespace qm::cpu

namespace qm::cpu {
float fma_peak_avx2(int64_t iters) {
  __m256 a[12];
  for (int j = 0; j < 12; ++j) a[j] = _mm256_set1_ps(1.0f + j);
  const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
  __m256 s = a[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_ps(s, a[j]);
  return hsum8(s);
}
}  // namespace qm::cpu
