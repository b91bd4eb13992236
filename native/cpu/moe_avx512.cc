// MoE activation (act(gate)·up) for AVX-512 builds: the AVX2 code path (the activation is a tiny
// part of the layer; the GEMMs underneath pick their own AVX-512 kernels).
#include "moe.h"

namespace qm::cpu {

void moe_glu_avx512(MoeAct act, const float* g, const float* u, float* h, int64_t n) { moe_glu_avx2(act, g, u, h, n); }

}  // namespace qm::cpu
