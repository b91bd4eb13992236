// GGUF block types (layouts exactly as ggml-common.h in llama.cpp) and their reference
// quantizers / dequantizers. The quantizers mirror llama.cpp's quantize_row_*_ref arithmetic, so a
// GGUF file we write decodes identically in llama.cpp (Q4_0 / Q8_0 are byte-identical by test).
//
// Block pointers into weight memory must be 2-byte aligned (4 for Q8_K): the op layer checks it.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32, QK_K = 256;
constexpr int K_SCALE_SIZE = 12;

// ggml_half is an IEEE binary16 stored as uint16_t.
struct block_q4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
struct block_q4_1 { uint16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct block_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct block_q8_0 { uint16_t d; int8_t qs[QK8_0]; };
struct block_q8_1 { uint16_t d, s; int8_t qs[QK8_1]; };  // s = d * sum(qs), rounded to half
// K-quants: 256-element super-blocks.
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct block_q4_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct block_q5_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(block_q4_0) == 18, "q4_0");
static_assert(sizeof(block_q4_1) == 20, "q4_1");
static_assert(sizeof(block_q5_0) == 22, "q5_0");
static_assert(sizeof(block_q5_1) == 24, "q5_1");
static_assert(sizeof(block_q8_0) == 34, "q8_0");
static_assert(sizeof(block_q8_1) == 36, "q8_1");
static_assert(sizeof(block_q2_K) == 84, "q2_K");
static_assert(sizeof(block_q3_K) == 110, "q3_K");
static_assert(sizeof(block_q4_K) == 144, "q4_K");
static_assert(sizeof(block_q5_K) == 176, "q5_K");
static_assert(sizeof(block_q6_K) == 210, "q6_K");
static_assert(sizeof(block_q8_K) == 292, "q8_K");

// Types quantize_row_ref / dequantize_row handle: F32, F16, BF16, the 13 GGUF weight types above
// and the activation types Q8_1 / Q8_K.
bool quant_supported(DType t);

// Reference round-to-nearest quantizer: x[K] -> row_bytes(t, K) bytes. K must be a multiple of the
// block size (callers validate). Non-finite inputs never cause undefined behaviour (the op layer
// rejects them for weights; llama.cpp would produce garbage there too).
void quantize_row_ref(DType t, const float* x, void* dst, int64_t K);

// Reference dequantizer: row_bytes(t, K) bytes -> y[K] (llama.cpp's dequantize_row_* arithmetic).
void dequantize_row(DType t, const void* src, float* y, int64_t K);

// K-quant pieces (quants_k.cc).
void quantize_row_q2_K_ref(const float* x, block_q2_K* y, int64_t k);
void quantize_row_q3_K_ref(const float* x, block_q3_K* y, int64_t k);
void quantize_row_q4_K_ref(const float* x, block_q4_K* y, int64_t k);
void quantize_row_q5_K_ref(const float* x, block_q5_K* y, int64_t k);
void quantize_row_q6_K_ref(const float* x, block_q6_K* y, int64_t k);
void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t k);
void dequantize_row_q2_K(const block_q2_K* x, float* y, int64_t k);
void dequantize_row_q3_K(const block_q3_K* x, float* y, int64_t k);
void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t k);
void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t k);
void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t k);
void dequantize_row_q8_K(const block_q8_K* x, float* y, int64_t k);

// Q4_K / Q5_K 6-bit scale and min of sub-block j (llama.cpp get_scale_min_k4).
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// Q3_K: the 16 6-bit scales (already minus 32).
void q3k_scales(const uint8_t* packed12, int8_t out[16]);

// llama.cpp's nearest_int: round to nearest even via the 1.5*2^23 trick (no UB for any input).
int nearest_int(float fval);

// float -> int8 the way x86 code compiled from `(int8_t)f` behaves (cvttss2si, low byte), with no
// undefined behaviour for NaN / out-of-range values.
inline int8_t trunc_i8(float v) {
  int32_t i = (v == v && v > -2147483648.f && v < 2147483648.f) ? static_cast<int32_t>(v) : INT32_MIN;
  return static_cast<int8_t>(static_cast<uint8_t>(static_cast<uint32_t>(i) & 0xff));
}

// Activation quantizers used by quantize_act_row (deterministic; a block with a NaN or Inf gets a
// NaN scale, so the dot products of that row become NaN).
void quantize_act_q8_0(const float* x, block_q8_0* y, int64_t k);
void quantize_act_q8_1(const float* x, block_q8_1* y, int64_t k);
void quantize_act_q8_K(const float* x, block_q8_K* y, int64_t k);

}  // namespace qm::cpu
