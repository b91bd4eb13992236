#include <cstring>

#include "../fp16.h"
#include "matmul.h"

namespace qm::cpu {

namespace {
inline float load_w(const void* w, DType t, int64_t i) {
  switch (t) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
    default: return static_cast<const float*>(w)[i];
  }
}
}  // namespace

// 8 interleaved partial sums (lane = k mod 8) then a fixed pairwise reduction.
void matmul_rows_scalar(const MatmulArgs& a, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t wrow = n * a.K;
    for (int64_t t = 0; t < a.T; ++t) {
      const float* x = a.x + t * a.K;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t k = 0; k < a.K; ++k) acc[k & 7] += x[k] * load_w(a.w, a.wtype, wrow + k);
      float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
      a.y[t * a.N + n] = s;
    }
  }
}

}  // namespace qm::cpu
