// AVX-512 entry points for norms and RoPE: these row kernels are memory-bound, so the AVX-512
// build runs the AVX2 code (this TU is compiled with AVX2+AVX-512 flags; only called when the
// CPU has AVX-512, which implies AVX2/FMA/F16C).
#include "norm_rope.h"

namespace qm::cpu {

void rms_norm_rows_avx512(const NormArgs& a, int64_t r0, int64_t r1) { rms_norm_rows_avx2(a, r0, r1); }
void layer_norm_rows_avx512(const NormArgs& a, int64_t r0, int64_t r1) { layer_norm_rows_avx2(a, r0, r1); }
void rope_rows_avx512(const RopeArgs& a, int64_t r0, int64_t r1) { rope_rows_avx2(a, r0, r1); }

}  // namespace qm::cpu
