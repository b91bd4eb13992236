// The qgemm.h interface: activation types, activation quantization, ISA dispatch.
#include "qgemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../ops/dispatch.h"
#include "qgemm_kernels.h"
#include "quants.h"
#include "repack.h"

namespace qm::cpu {

DType act_type_for(DType wtype) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16: return DType::F32;
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: return DType::Q8_0;
    case DType::Q4_0_R16: case DType::Q8_0_R16: return DType::Q8_0;
    case DType::Q4_1: case DType::Q5_1: return DType::Q8_1;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return DType::Q8_K;
    default: {
      const DTypeInfo* i = dtype_info(wtype);
      fail("E_DTYPE", std::string("qgemm: unsupported weight dtype ") + (i ? i->name : std::to_string(static_cast<int>(wtype))) +
                          " (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, "
                          "q4_0_r16, q8_0_r16)");
    }
  }
}

bool qgemm_supports(DType wtype) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::Q4_0_R16: case DType::Q8_0_R16:
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

namespace {

using QgemmRowsFn = void (*)(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                             int64_t n0, int64_t n1);

// Rows [n0, n1) of an r16 weight on an ISA without r16 kernels (AVX2, scalar): plain_rows (that
// ISA's qgemm_rows) on plain copies of the rows, 128 at a time (the copy stays in L2, <= 272 KB at
// K = 2048, and a many-token call's activation transpose is amortized over them). Same bits as the
// plain weight.
void qgemm_rows_r16_via_plain(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                              int64_t n0, int64_t n1, QgemmRowsFn plain_rows) {
  constexpr int64_t kChunk = 128;
  const DType plain = plain_of(wtype);
  const int64_t wrb = row_bytes(plain, K);
  thread_local std::vector<uint8_t> rows;
  if (rows.size() < static_cast<size_t>(kChunk * wrb)) rows.resize(static_cast<size_t>(kChunk * wrb));
  for (int64_t c0 = n0; c0 < n1; c0 += kChunk) {
    const int64_t c1 = std::min(n1, c0 + kChunk);
    unpack_r16_rows(wtype, static_cast<const uint8_t*>(w), K, c0, c1, rows.data());
    plain_rows(plain, rows.data(), xq, y + c0, T, K, ldy, 0, c1 - c0);
  }
}

}  // namespace

void qgemm_rows(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy, int64_t n0,
                int64_t n1) {
  if (!qgemm_supports(wtype)) act_type_for(wtype);  // throws E_DTYPE
  if (T <= 0 || n1 <= n0) return;
  // r16 weights have their own kernels on AVX-512 only (repack.h); elsewhere plain copies of the rows.
  if (is_r16(wtype) && active_isa() != Isa::Avx512)
    return qgemm_rows_r16_via_plain(wtype, w, xq, y, T, K, ldy, n0, n1, QM_PICK(qgemm_rows));
  QM_PICK(qgemm_rows)(wtype, w, xq, y, T, K, ldy, n0, n1);
}

}  // namespace qm::cpu
