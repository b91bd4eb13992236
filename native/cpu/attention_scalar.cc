// Portable attention kernels (reference-like path; also what non-x86 builds run).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../fp16.h"
#include "attention.h"

namespace qm::cpu {

namespace {

struct Ops {
  static constexpr int kDirectF16Rows = 0;  // f16 K/V always staged as f32
  static void stage_f16(const uint16_t* src, int64_t stride, int nk, int64_t D, float* dst) {
    for (int j = 0; j < nk; ++j)
      for (int64_t d = 0; d < D; ++d) dst[j * D + d] = f16_to_f32(src[j * stride + d]);
  }
  static void qk(const float* const* q, int R, const float* k, int64_t ks, int nk, int64_t D, float scale, float* S,
                 int ldS) {
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < nk; ++j) {
        const float* kj = k + j * ks;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t d = 0; d < D; ++d) acc[d & 7] += q[r][d] * kj[d];
        S[r * ldS + j] = scale * (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])));
      }
  }
  static void qk_i8(const int8_t* const* q, int R, const int8_t* k, int64_t ks, int nk, float* S, int ldS) {
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < nk; ++j) {
        const int8_t* kj = k + j * ks;
        int32_t acc = 0;
        for (int64_t d = 0; d < ks; ++d) acc += static_cast<int32_t>(q[r][d]) * kj[d];
        S[r * ldS + j] = static_cast<float>(acc);
      }
  }
  static float row_max(const float* s, int n) {
    float m = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < n; ++j) m = s[j] > m ? s[j] : m;
    return m;
  }
  static float exp_sum(float* s, int n, float m) {
    float sum = 0;
    for (int j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - m);
      sum += s[j];
    }
    return sum;
  }
  static void scale(float* o, int64_t D, float a) {
    for (int64_t d = 0; d < D; ++d) o[d] *= a;
  }
  static void scale_store(float* dst, const float* o, int64_t D, float a) {
    for (int64_t d = 0; d < D; ++d) dst[d] = o[d] * a;
  }
  static void pv(const int* srow, const int* orow, int n, const float* P, int ldP, const float* V, int64_t vs, int nk,
                 int64_t D, float* O) {
    for (int i = 0; i < n; ++i) {
      const float* p = P + static_cast<size_t>(srow[i]) * ldP;
      float* o = O + static_cast<size_t>(orow[i]) * D;
      for (int j = 0; j < nk; ++j) {
        const float pj = p[j];
        const float* vj = V + j * vs;
        for (int64_t d = 0; d < D; ++d) o[d] += pj * vj[d];
      }
    }
  }
};

#include "attention_impl.h"

}  // namespace

void attn_rows_scalar(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                      int n_blocks, int64_t block_k, AttnStats* stats) {
  attn_rows_impl<Ops>(c, kv, rows, R, blocks, n_blocks, block_k, stats);
}

}  // namespace qm::cpu

namespace qm::cpu {
void f32_to_f16_row_scalar(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}
}  // namespace qm::cpu

namespace qm::cpu {
float fma_peak_scalar(int64_t iters) {
  float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  const float m = 0.9999999f, c = 1e-7f;
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 8; ++j) a[j] = a[j] * m + c;
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}
}  // namespace qm::cpu
