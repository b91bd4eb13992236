// Reference (de)quantizers for the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) and
// the plain float types, plus the activation quantizers. Mirrors llama.cpp ggml-quants.c
// (quantize_row_*_ref / dequantize_row_*) operation for operation, so the bytes are identical.
// This file is compiled without FMA flags, so no multiply-add is fused differently from llama.cpp.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "../fp16.h"
#include "quants.h"

namespace qm::cpu {

int nearest_int(float fval) {
  float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

namespace {

inline uint16_t h(float f) { return f32_to_f16(f); }
inline float f(uint16_t v) { return f16_to_f32(v); }

// roundf() to int8 without undefined behaviour (x86 conversion semantics out of range).
inline int8_t round_i8(float v) { return trunc_i8(std::roundf(v)); }

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t k) {
  const int qk = QK4_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < qk; j++) {
      const float v = x[i * qk + j];
      if (amax < std::fabs(v)) { amax = std::fabs(v); max = v; }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const int8_t a = trunc_i8(x0 + 8.5f), b = trunc_i8(x1 + 8.5f);
      const uint8_t xi0 = static_cast<uint8_t>(a < 15 ? a : 15);
      const uint8_t xi1 = static_cast<uint8_t>(b < 15 ? b : 15);
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t k) {
  const int qk = QK4_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < qk; j++) {
      const float v = x[i * qk + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    y[i].m = h(min);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const int8_t a = trunc_i8(x0 + 0.5f), b = trunc_i8(x1 + 0.5f);
      const uint8_t xi0 = static_cast<uint8_t>(a < 15 ? a : 15);
      const uint8_t xi1 = static_cast<uint8_t>(b < 15 ? b : 15);
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t k) {
  const int qk = QK5_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < qk; j++) {
      const float v = x[i * qk + j];
      if (amax < std::fabs(v)) { amax = std::fabs(v); max = v; }
    }
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const int8_t a = trunc_i8(x0 + 16.5f), b = trunc_i8(x1 + 16.5f);
      const uint8_t xi0 = static_cast<uint8_t>(a < 31 ? a : 31);
      const uint8_t xi1 = static_cast<uint8_t>(b < 31 ? b : 31);
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t k) {
  const int qk = QK5_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < qk; j++) {
      const float v = x[i * qk + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    y[i].m = h(min);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      // llama.cpp: (uint8_t)(x0 + 0.5f); the value is in [0.5, 31.5] for finite input.
      const uint8_t xi0 = static_cast<uint8_t>(trunc_i8(x0 + 0.5f));
      const uint8_t xi1 = static_cast<uint8_t>(trunc_i8(x1 + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t k) {
  const int64_t nb = k / QK8_0;
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
      const float v = std::fabs(x[i * QK8_0 + j]);
      amax = amax > v ? amax : v;  // MAX(amax, fabsf(v))
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = round_i8(x[i * QK8_0 + j] * id);
  }
}

void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t k) {
  const int64_t nb = k / QK8_1;
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_1; j++) {
      const float v = std::fabs(x[i * QK8_1 + j]);
      amax = amax > v ? amax : v;
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = h(d);
    int sum = 0;
    for (int j = 0; j < QK8_1 / 2; ++j) {
      y[i].qs[j] = round_i8(x[i * QK8_1 + j] * id);
      y[i].qs[QK8_1 / 2 + j] = round_i8(x[i * QK8_1 + QK8_1 / 2 + j] * id);
      sum += y[i].qs[j];
      sum += y[i].qs[QK8_1 / 2 + j];
    }
    y[i].s = h(sum * d);
  }
}

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k) {
  const int qk = QK4_0;
  for (int64_t i = 0; i < k / qk; i++) {
    const float d = f(x[i].d);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * qk + j + 0] = x0 * d;
      y[i * qk + j + qk / 2] = x1 * d;
    }
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k) {
  const int qk = QK4_1;
  for (int64_t i = 0; i < k / qk; i++) {
    const float d = f(x[i].d), m = f(x[i].m);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F);
      const int x1 = (x[i].qs[j] >> 4);
      y[i * qk + j + 0] = x0 * d + m;
      y[i * qk + j + qk / 2] = x1 * d + m;
    }
  }
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k) {
  const int qk = QK5_0;
  for (int64_t i = 0; i < k / qk; i++) {
    const float d = f(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < qk / 2; ++j) {
      const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
      const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
      const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
      y[i * qk + j + 0] = x0 * d;
      y[i * qk + j + qk / 2] = x1 * d;
    }
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k) {
  const int qk = QK5_1;
  for (int64_t i = 0; i < k / qk; i++) {
    const float d = f(x[i].d), m = f(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < qk / 2; ++j) {
      const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
      const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
      const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
      const int x1 = (x[i].qs[j] >> 4) | xh_1;
      y[i * qk + j + 0] = x0 * d + m;
      y[i * qk + j + qk / 2] = x1 * d + m;
    }
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_0; i++) {
    const float d = f(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = x[i].qs[j] * d;
  }
}

void dequantize_row_q8_1(const block_q8_1* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_1; i++) {
    const float d = f(x[i].d);
    for (int j = 0; j < QK8_1; ++j) y[i * QK8_1 + j] = x[i].qs[j] * d;
  }
}

// 0 when every value is finite, NaN otherwise (x*0 is NaN exactly for NaN and ±Inf).
inline bool all_finite(const float* x, int n) {
  float z = 0.0f;
  for (int j = 0; j < n; ++j) z += x[j] * 0.0f;
  return z == 0.0f;
}

constexpr uint16_t kHalfNaN = 0x7e00;

}  // namespace

bool quant_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q8_1:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::Q8_K:
      return true;
    default: return false;
  }
}

void quantize_row_ref(DType t, const float* x, void* dst, int64_t K) {
  switch (t) {
    case DType::F32: std::memcpy(dst, x, static_cast<size_t>(K) * 4); return;
    case DType::F16: {
      auto* o = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < K; ++i) o[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::BF16: {
      auto* o = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < K; ++i) o[i] = f32_to_bf16(x[i]);
      return;
    }
    case DType::Q4_0: return quantize_row_q4_0_ref(x, static_cast<block_q4_0*>(dst), K);
    case DType::Q4_1: return quantize_row_q4_1_ref(x, static_cast<block_q4_1*>(dst), K);
    case DType::Q5_0: return quantize_row_q5_0_ref(x, static_cast<block_q5_0*>(dst), K);
    case DType::Q5_1: return quantize_row_q5_1_ref(x, static_cast<block_q5_1*>(dst), K);
    case DType::Q8_0: return quantize_row_q8_0_ref(x, static_cast<block_q8_0*>(dst), K);
    case DType::Q8_1: return quantize_row_q8_1_ref(x, static_cast<block_q8_1*>(dst), K);
    case DType::Q2_K: return quantize_row_q2_K_ref(x, static_cast<block_q2_K*>(dst), K);
    case DType::Q3_K: return quantize_row_q3_K_ref(x, static_cast<block_q3_K*>(dst), K);
    case DType::Q4_K: return quantize_row_q4_K_ref(x, static_cast<block_q4_K*>(dst), K);
    case DType::Q5_K: return quantize_row_q5_K_ref(x, static_cast<block_q5_K*>(dst), K);
    case DType::Q6_K: return quantize_row_q6_K_ref(x, static_cast<block_q6_K*>(dst), K);
    case DType::Q8_K: return quantize_row_q8_K_ref(x, static_cast<block_q8_K*>(dst), K);
    default: fail("E_DTYPE", std::string("quantize: unsupported dtype ") + (dtype_info(t) ? dtype_info(t)->name : "?"));
  }
}

void dequantize_row(DType t, const void* src, float* y, int64_t K) {
  switch (t) {
    case DType::F32: std::memcpy(y, src, static_cast<size_t>(K) * 4); return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < K; ++i) y[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < K; ++i) y[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::Q4_0: return dequantize_row_q4_0(static_cast<const block_q4_0*>(src), y, K);
    case DType::Q4_1: return dequantize_row_q4_1(static_cast<const block_q4_1*>(src), y, K);
    case DType::Q5_0: return dequantize_row_q5_0(static_cast<const block_q5_0*>(src), y, K);
    case DType::Q5_1: return dequantize_row_q5_1(static_cast<const block_q5_1*>(src), y, K);
    case DType::Q8_0: return dequantize_row_q8_0(static_cast<const block_q8_0*>(src), y, K);
    case DType::Q8_1: return dequantize_row_q8_1(static_cast<const block_q8_1*>(src), y, K);
    case DType::Q2_K: return dequantize_row_q2_K(static_cast<const block_q2_K*>(src), y, K);
    case DType::Q3_K: return dequantize_row_q3_K(static_cast<const block_q3_K*>(src), y, K);
    case DType::Q4_K: return dequantize_row_q4_K(static_cast<const block_q4_K*>(src), y, K);
    case DType::Q5_K: return dequantize_row_q5_K(static_cast<const block_q5_K*>(src), y, K);
    case DType::Q6_K: return dequantize_row_q6_K(static_cast<const block_q6_K*>(src), y, K);
    case DType::Q8_K: return dequantize_row_q8_K(static_cast<const block_q8_K*>(src), y, K);
    default: fail("E_DTYPE", std::string("dequantize: unsupported dtype ") + (dtype_info(t) ? dtype_info(t)->name : "?"));
  }
}

// Activations: llama.cpp's reference arithmetic block by block; a non-finite block gets d = NaN
// and zero quants (so NaN reaches every output of the row instead of garbage).
void quantize_act_q8_0(const float* x, block_q8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_0; ++i) {
    const float* xb = x + i * QK8_0;
    if (!all_finite(xb, QK8_0)) {
      y[i].d = kHalfNaN;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    quantize_row_q8_0_ref(xb, &y[i], QK8_0);
  }
}

void quantize_act_q8_1(const float* x, block_q8_1* y, int64_t k) {
  for (int64_t i = 0; i < k / QK8_1; ++i) {
    const float* xb = x + i * QK8_1;
    if (!all_finite(xb, QK8_1)) {
      y[i].d = kHalfNaN;
      y[i].s = kHalfNaN;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    quantize_row_q8_1_ref(xb, &y[i], QK8_1);
  }
}

void quantize_act_q8_K(const float* x, block_q8_K* y, int64_t k) {
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const float* xb = x + i * QK_K;
    if (!all_finite(xb, QK_K)) {
      y[i].d = std::nanf("");
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    quantize_row_q8_K_ref(xb, &y[i], QK_K);
  }
}

}  // namespace qm::cpu
