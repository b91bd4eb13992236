#include "common.h"

namespace qm {

// Block layouts: ggml-common.h (llama.cpp). K-quants use 256-element super-blocks.
static const DTypeInfo kInfos[] = {
    {DType::F32, "f32", 1, 4},     {DType::F16, "f16", 1, 2},     {DType::BF16, "bf16", 1, 2},
    {DType::Q4_0, "q4_0", 32, 18}, {DType::Q4_1, "q4_1", 32, 20}, {DType::Q5_0, "q5_0", 32, 22},
    {DType::Q5_1, "q5_1", 32, 24}, {DType::Q8_0, "q8_0", 32, 34}, {DType::Q8_1, "q8_1", 32, 36},
    {DType::Q2_K, "q2_k", 256, 84}, {DType::Q3_K, "q3_k", 256, 110}, {DType::Q4_K, "q4_k", 256, 144},
    {DType::Q5_K, "q5_k", 256, 176}, {DType::Q6_K, "q6_k", 256, 210}, {DType::Q8_K, "q8_k", 256, 292},
    {DType::I8, "i8", 1, 1},       {DType::I16, "i16", 1, 2},     {DType::I32, "i32", 1, 4},
    {DType::I64, "i64", 1, 8},     {DType::F64, "f64", 1, 8},
    // r16 layouts (cpu/repack.h): the same bytes per row as the plain type
    {DType::Q4_0_R16, "q4_0_r16", 32, 18}, {DType::Q8_0_R16, "q8_0_r16", 32, 34},
};

const DTypeInfo* dtype_info(DType t) {
  for (const auto& i : kInfos)
    if (i.type == t) return &i;
  return nullptr;
}

const DTypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& i : kInfos)
    if (name == i.name) return &i;
  return nullptr;
}

bool is_quantized(DType t) {
  const DTypeInfo* i = dtype_info(t);
  return i && i->block_size > 1;
}

bool is_r16(DType t) { return t == DType::Q4_0_R16 || t == DType::Q8_0_R16; }

DType plain_of(DType t) {
  switch (t) {
    case DType::Q4_0_R16: return DType::Q4_0;
    case DType::Q8_0_R16: return DType::Q8_0;
    default: return t;
  }
}

int64_t row_bytes(DType t, int64_t n) {
  const DTypeInfo* i = dtype_info(t);
  if (!i) fail("E_DTYPE", "unknown dtype id " + std::to_string(static_cast<int>(t)));
  if (n % i->block_size != 0)
    fail("E_SHAPE", std::string("a row of ") + std::to_string(n) + " elements is not a multiple of the " +
                        i->name + " block size " + std::to_string(i->block_size));
  return n / i->block_size * i->type_size;
}

}  // namespace qm
