// AVX-512 entry point for dense attention: runs the AVX2 kernels (this TU is only called on CPUs
// with AVX-512, which implies AVX2/FMA/F16C). A native AVX-512 tile is future work.
#include "attention.h"

namespace qm::cpu {

void attn_rows_avx512(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                      int n_blocks, int64_t block_k, AttnStats* stats) {
  attn_rows_avx2(c, kv, rows, R, blocks, n_blocks, block_k, stats);
}

}  // namespace qm::cpu

namespace qm::cpu {
void f32_to_f16_row_avx512(const float* src, uint16_t* dst, int64_t n) { f32_to_f16_row_avx2(src, dst, n); }
}  // namespace qm::cpu

namespace qm::cpu {
float fma_peak_avx512(int64_t iters) { return fma_peak_avx2(iters); }
}  // namespace qm::cpu
