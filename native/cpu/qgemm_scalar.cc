// Portable scalar qgemm: one dot-product function per weight type (llama.cpp's generic
// ggml_vec_dot_*: exact int32 sums per block / sub-block, then one float multiply-add per block),
// tiled over tokens and rows for cache reuse. Each output element is one call of the same function
// on (weight row, activation row), so results are independent of T, tiles and threads.
#include <algorithm>
#include <cstring>

#include "../fp16.h"
#include "matmul.h"
#include "qgemm.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

namespace {

inline float h2f(uint16_t v) { return f16_to_f32(v); }

float dot_q4_0(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q4_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sumf = 0;
  for (int64_t ib = 0; ib < K / QK4_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((w[ib].qs[j] & 0x0F) - 8) * x[ib].qs[j];
      sumi += ((w[ib].qs[j] >> 4) - 8) * x[ib].qs[j + QK4_0 / 2];
    }
    sumf += static_cast<float>(sumi) * (h2f(w[ib].d) * h2f(x[ib].d));
  }
  return sumf;
}

float dot_q4_1(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q4_1*>(vw);
  const auto* x = static_cast<const block_q8_1*>(vx);
  float sumf = 0;
  for (int64_t ib = 0; ib < K / QK4_1; ++ib) {
    int sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
      sumi += (w[ib].qs[j] & 0x0F) * x[ib].qs[j];
      sumi += (w[ib].qs[j] >> 4) * x[ib].qs[j + QK4_1 / 2];
    }
    sumf += static_cast<float>(sumi) * (h2f(w[ib].d) * h2f(x[ib].d)) + h2f(w[ib].m) * h2f(x[ib].s);
  }
  return sumf;
}

float dot_q5_0(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q5_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sumf = 0;
  for (int64_t ib = 0; ib < K / QK5_0; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, w[ib].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const int xh1 = ((qh >> (j + 12))) & 0x10;
      sumi += (((w[ib].qs[j] & 0x0F) | xh0) - 16) * x[ib].qs[j];
      sumi += (((w[ib].qs[j] >> 4) | xh1) - 16) * x[ib].qs[j + QK5_0 / 2];
    }
    sumf += static_cast<float>(sumi) * (h2f(w[ib].d) * h2f(x[ib].d));
  }
  return sumf;
}

float dot_q5_1(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q5_1*>(vw);
  const auto* x = static_cast<const block_q8_1*>(vx);
  float sumf = 0;
  for (int64_t ib = 0; ib < K / QK5_1; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, w[ib].qh, sizeof(qh));
    int sumi = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const int xh1 = ((qh >> (j + 12))) & 0x10;
      sumi += ((w[ib].qs[j] & 0x0F) | xh0) * x[ib].qs[j];
      sumi += ((w[ib].qs[j] >> 4) | xh1) * x[ib].qs[j + QK5_1 / 2];
    }
    sumf += static_cast<float>(sumi) * (h2f(w[ib].d) * h2f(x[ib].d)) + h2f(w[ib].m) * h2f(x[ib].s);
  }
  return sumf;
}

float dot_q8_0(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q8_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sumf = 0;
  for (int64_t ib = 0; ib < K / QK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += w[ib].qs[j] * x[ib].qs[j];
    sumf += static_cast<float>(sumi) * (h2f(w[ib].d) * h2f(x[ib].d));
  }
  return sumf;
}

float dot_q2_K(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sumf = 0;
  for (int64_t i = 0; i < K / QK_K; ++i) {
    const uint8_t* q2 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    const uint8_t* sc = w[i].scales;
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += x[i].bsums[j] * (sc[j] >> 4);
    const float dall = x[i].d * h2f(w[i].d);
    const float dmin = x[i].d * h2f(w[i].dmin);
    int isum = 0, is = 0;
    for (int k = 0; k < QK_K / 128; ++k) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        int d = sc[is++] & 0xF;
        int isuml = 0;
        for (int l = 0; l < 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
        d = sc[is++] & 0xF;
        isuml = 0;
        for (int l = 16; l < 32; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
        shift += 2;
        q8 += 32;
      }
      q2 += 32;
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

float dot_q3_K(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sumf = 0;
  int8_t scales[16];
  for (int64_t i = 0; i < K / QK_K; ++i) {
    q3k_scales(w[i].scales, scales);
    const uint8_t* q = w[i].qs;
    const uint8_t* hm = w[i].hmask;
    const int8_t* q8 = x[i].qs;
    int isum = 0, is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K / 128; ++n) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int half = 0; half < 2; ++half) {
          int s = 0;
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            s += v * q8[l];
          }
          isum += scales[is++] * s;
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
        q8 += 32;
      }
      q += 32;
    }
    sumf += (h2f(w[i].d) * x[i].d) * static_cast<float>(isum);
  }
  return sumf;
}

float dot_q4_K(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q4_K*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sumf = 0;
  for (int64_t i = 0; i < K / QK_K; ++i) {
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    int isum = 0, summ = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc1, m1, sc2, m2;
      get_scale_min_k4(2 * c, w[i].scales, &sc1, &m1);
      get_scale_min_k4(2 * c + 1, w[i].scales, &sc2, &m2);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += (q4[l] & 0xF) * q8[l];
        s2 += (q4[l] >> 4) * q8[l + 32];
      }
      isum += sc1 * s1 + sc2 * s2;
      summ += m1 * (x[i].bsums[4 * c] + x[i].bsums[4 * c + 1]) + m2 * (x[i].bsums[4 * c + 2] + x[i].bsums[4 * c + 3]);
      q4 += 32;
      q8 += 64;
    }
    const float d = x[i].d * h2f(w[i].d);
    const float dmin = x[i].d * h2f(w[i].dmin);
    sumf += d * static_cast<float>(isum) - dmin * static_cast<float>(summ);
  }
  return sumf;
}

float dot_q5_K(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q5_K*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sumf = 0;
  for (int64_t i = 0; i < K / QK_K; ++i) {
    const uint8_t* ql = w[i].qs;
    const uint8_t* qh = w[i].qh;
    const int8_t* q8 = x[i].qs;
    int isum = 0, summ = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc1, m1, sc2, m2;
      get_scale_min_k4(2 * c, w[i].scales, &sc1, &m1);
      get_scale_min_k4(2 * c + 1, w[i].scales, &sc2, &m2);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) * q8[l];
        s2 += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * q8[l + 32];
      }
      isum += sc1 * s1 + sc2 * s2;
      summ += m1 * (x[i].bsums[4 * c] + x[i].bsums[4 * c + 1]) + m2 * (x[i].bsums[4 * c + 2] + x[i].bsums[4 * c + 3]);
      ql += 32;
      q8 += 64;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
    const float d = x[i].d * h2f(w[i].d);
    const float dmin = x[i].d * h2f(w[i].dmin);
    sumf += d * static_cast<float>(isum) - dmin * static_cast<float>(summ);
  }
  return sumf;
}

float dot_q6_K(int64_t K, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sumf = 0;
  for (int64_t i = 0; i < K / QK_K; ++i) {
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    const int8_t* sc = w[i].scales;
    const int8_t* q8 = x[i].qs;
    int isum = 0;
    for (int n = 0; n < QK_K / 128; ++n) {
      int s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        s[is + 0] += q1 * q8[l + 0];
        s[is + 2] += q2 * q8[l + 32];
        s[is + 4] += q3 * q8[l + 64];
        s[is + 6] += q4 * q8[l + 96];
      }
      for (int j = 0; j < 8; ++j) isum += sc[j] * s[j];
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    sumf += (h2f(w[i].d) * x[i].d) * static_cast<float>(isum);
  }
  return sumf;
}

}  // namespace

VecDotFn scalar_vec_dot(DType wtype) {
  switch (wtype) {
    case DType::Q4_0: return dot_q4_0;
    case DType::Q4_1: return dot_q4_1;
    case DType::Q5_0: return dot_q5_0;
    case DType::Q5_1: return dot_q5_1;
    case DType::Q8_0: return dot_q8_0;
    case DType::Q2_K: return dot_q2_K;
    case DType::Q3_K: return dot_q3_K;
    case DType::Q4_K: return dot_q4_K;
    case DType::Q5_K: return dot_q5_K;
    case DType::Q6_K: return dot_q6_K;
    default: return nullptr;
  }
}

double read_sum_f32_scalar(const float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; ++i) acc[i & 7] += x[i];
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

void qgemm_rows_scalar(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1) {
  if (wtype == DType::F32 || wtype == DType::F16 || wtype == DType::BF16) {
    // Float weights: the dense matmul kernel (f32 activations), N standing in as the output stride.
    MatmulArgs a{static_cast<const float*>(xq), w, wtype, y, T, K, ldy};
    matmul_rows_scalar(a, n0, n1);
    return;
  }
  const VecDotFn dot = scalar_vec_dot(wtype);
  const int64_t wrb = row_bytes(wtype, K), arb = act_row_bytes(wtype, K);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
    const int64_t t1 = std::min(T, t0 + kTokenTile);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t t = t0; t < t1; ++t) y[t * ldy + n] = dot(K, wb + n * wrb, xb + t * arb);
  }
}

}  // namespace qm::cpu
