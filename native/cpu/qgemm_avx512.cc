// Compiled with AVX-512 flags; only called when the CPU has them. The quantized kernels reuse the
// AVX2 code paths (every AVX-512 CPU has AVX2); float weights use the AVX-512 dense matmul.
#include "matmul.h"
#include "qgemm_kernels.h"

namespace qm::cpu {

void qgemm_rows_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1) {
  if (wtype == DType::F32 || wtype == DType::F16 || wtype == DType::BF16) {
    MatmulArgs a{static_cast<const float*>(xq), w, wtype, y, T, K, ldy};
    matmul_rows_avx512(a, n0, n1);
    return;
  }
  qgemm_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
}

void quantize_act_row_avx512(DType wtype, const float* x, void* out, int64_t K) {
  quantize_act_row_avx2(wtype, x, out, K);
}

}  // namespace qm::cpu
