// The qgemm.h interface: activation types, activation quantization, ISA dispatch.
#include "qgemm.h"

#include <cstring>

#include "../ops/dispatch.h"
#include "qgemm_kernels.h"
#include "quants.h"

namespace qm::cpu {

DType act_type_for(DType wtype) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16: return DType::F32;
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: return DType::Q8_0;
    case DType::Q4_1: case DType::Q5_1: return DType::Q8_1;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return DType::Q8_K;
    default: {
      const DTypeInfo* i = dtype_info(wtype);
      fail("E_DTYPE", std::string("qgemm: unsupported weight dtype ") + (i ? i->name : std::to_string(static_cast<int>(wtype))) +
                          " (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k)");
    }
  }
}

bool qgemm_supports(DType wtype) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default: return false;
  }
}

int64_t act_row_bytes(DType wtype, int64_t K) {
  row_bytes(wtype, K);  // E_SHAPE unless K is a multiple of the weight block size
  return row_bytes(act_type_for(wtype), K);
}

void quantize_act_row_scalar(DType wtype, const float* x, void* out, int64_t K) {
  switch (act_type_for(wtype)) {
    case DType::F32: std::memcpy(out, x, static_cast<size_t>(K) * sizeof(float)); return;
    case DType::Q8_0: return quantize_act_q8_0(x, static_cast<block_q8_0*>(out), K);
    case DType::Q8_1: return quantize_act_q8_1(x, static_cast<block_q8_1*>(out), K);
    case DType::Q8_K: return quantize_act_q8_K(x, static_cast<block_q8_K*>(out), K);
    default: fail("E_DTYPE", "qgemm: no activation quantizer");
  }
}

void quantize_act_row(DType wtype, const float* x, void* out, int64_t K) {
  QM_PICK(quantize_act_row)(wtype, x, out, K);
}

void qgemm_rows(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy, int64_t n0,
                int64_t n1) {
  if (!qgemm_supports(wtype)) act_type_for(wtype);  // throws E_DTYPE
  if (T <= 0 || n1 <= n0) return;
  QM_PICK(qgemm_rows)(wtype, w, xq, y, T, K, ldy, n0, n1);
}

}  // namespace qm::cpu
