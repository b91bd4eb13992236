// AVX2 activation quantizers (Q8_0, Q8_1, Q8_K), byte-identical to the reference ones in quants.cc
// (same IEEE operations: max of |x|, d = amax/127, id = 1/d, roundf(x·id) as round-half-away;
// Q8_K: the first element of largest |x|, nearest_int = round-half-even, bsums), just vectorized.
// A block with a NaN or Inf gets the same NaN scale and zero quants as the reference.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "qgemm.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

namespace {

constexpr uint16_t kHalfNaN = 0x7e00;

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// True when all n (multiple of 8) values are finite: x − x is 0 exactly for finite x, NaN otherwise.
inline bool all_finite(const float* x, int n) {
  __m256 z = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    z = _mm256_or_ps(z, _mm256_sub_ps(v, v));
  }
  return _mm256_movemask_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_NEQ_UQ)) == 0;
}

// roundf (half away from zero) of v, as int32: trunc, then ±1 where |v − trunc(v)| >= 0.5.
inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_cmp_ps(abs8(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

// 32 int32 (4 vectors, in order) -> their 32 low bytes, as the reference's (int8_t) conversions
// keep them (out-of-range conversions, e.g. of an infinite x·id, give 0x80000000: low byte 0).
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i m = _mm256_set1_epi32(0xFF);
  const __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m));
  const __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, m), _mm256_and_si256(d, m));
  const __m256i p = _mm256_packus_epi16(ab, cd);
  // packs interleave 128-bit lanes: dwords come out as 0 4 1 5 2 6 3 7
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// One 32-block: quants into qs, returns d (amax / 127); sum of quants in *sum when asked.
inline float q8_block(const float* x, int8_t* qs, int* sum) {
  const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
               v3 = _mm256_loadu_ps(x + 24);
  const float amax = hmax8(_mm256_max_ps(_mm256_max_ps(abs8(v0), abs8(v1)), _mm256_max_ps(abs8(v2), abs8(v3))));
  const float d = amax / ((1 << 7) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  const __m256 m = _mm256_set1_ps(id);
  const __m256i q = pack32(round_away(_mm256_mul_ps(v0, m)), round_away(_mm256_mul_ps(v1, m)),
                           round_away(_mm256_mul_ps(v2, m)), round_away(_mm256_mul_ps(v3, m)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), q);
  if (sum) {
    const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
    __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    *sum = _mm_cvtsi128_si32(s);
  }
  return d;
}

void act_q8_0(const float* x, block_q8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_0; ++i) {
    const float* xb = x + i * QK8_0;
    if (!all_finite(xb, QK8_0)) {
      y[i].d = kHalfNaN;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    y[i].d = f2h(q8_block(xb, y[i].qs, nullptr));
  }
}

void act_q8_1(const float* x, block_q8_1* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_1; ++i) {
    const float* xb = x + i * QK8_1;
    if (!all_finite(xb, QK8_1)) {
      y[i].d = kHalfNaN;
      y[i].s = kHalfNaN;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    int sum = 0;
    const float d = q8_block(xb, y[i].qs, &sum);
    y[i].d = f2h(d);
    y[i].s = f2h(static_cast<float>(sum) * d);
  }
}

void act_q8_K(const float* x, block_q8_K* y, int64_t k) {
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const float* xb = x + i * QK_K;
    if (!all_finite(xb, QK_K)) {
      y[i].d = std::nanf("");
      std::memset(y[i].qs, 0, QK_K);
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    __m256 am = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) am = _mm256_max_ps(am, abs8(_mm256_loadu_ps(xb + j)));
    const float amax = hmax8(am);
    if (!amax) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, QK_K);
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // the first element whose |x| is amax (the reference keeps the first strict maximum)
    float max = 0;
    const __m256 va = _mm256_set1_ps(amax);
    for (int j = 0; j < QK_K; j += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(xb + j)), va, _CMP_EQ_OQ));
      if (mask) {
        max = xb[j + __builtin_ctz(static_cast<unsigned>(mask))];
        break;
      }
    }
    const float iscale = -127.f / max;
    if (!std::isfinite(iscale)) {  // max tiny enough for −127/max to overflow: every x·iscale is ±inf or
      std::memset(y[i].qs, 0, QK_K);  // NaN, which the reference's nearest_int maps to 0 (low byte)
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      y[i].d = 1 / iscale;
      continue;
    }
    const __m256 m = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i q[4];
      for (int u = 0; u < 4; ++u)
        q[u] = _mm256_min_epi32(lim, _mm256_cvtps_epi32(_mm256_mul_ps(m, _mm256_loadu_ps(xb + j + 8 * u))));
      const __m256i p = pack32(q[0], q[1], q[2], q[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), p);
      // bsums of the two 16-element halves
      const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
      const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));  // 8 sums of 4
      const __m256i h = _mm256_hadd_epi32(s32, s32);                       // lane: s01 s23 s01 s23 | s45 s67 ..
      const __m256i h2 = _mm256_hadd_epi32(h, h);                           // lane 0: sum of 16 (low), lane 4: (high)
      y[i].bsums[j / 16] = static_cast<int16_t>(_mm256_cvtsi256_si32(h2));
      y[i].bsums[j / 16 + 1] = static_cast<int16_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(h2, 1)));
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace

void quantize_act_row_avx2(DType wtype, const float* x, void* out, int64_t K) {
  switch (act_type_for(wtype)) {
    case DType::F32: std::memcpy(out, x, static_cast<size_t>(K) * sizeof(float)); return;
    case DType::Q8_0: return act_q8_0(x, static_cast<block_q8_0*>(out), K);
    case DType::Q8_1: return act_q8_1(x, static_cast<block_q8_1*>(out), K);
    case DType::Q8_K: return act_q8_K(x, static_cast<block_q8_K*>(out), K);
    default: fail("E_DTYPE", "qgemm: no activation quantizer");
  }
}

}  // namespace qm::cpu
