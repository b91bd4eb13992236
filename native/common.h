// Shared definitions for all native code: dtypes (GGML type ids, so a GGUF tensor's type is our
// dtype), the typed error that the binding turns into a JS error with a stable `code`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace qm {

// Same numeric ids as ggml_type (ggml.h) / GGUF tensor infos.
enum class DType : int32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
  // Not GGUF types: Q4_0 / Q8_0 rows repacked at load for the AVX-512 GEMV (cpu/repack.h); never
  // written to a file. Ids far from GGML's.
  Q4_0_R16 = 1000, Q8_0_R16 = 1001,
};

struct DTypeInfo {
  DType type;
  const char* name;     // lower-case name used in JS ('f32', 'q4_k', ...)
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t type_size;    // bytes per block
};

// nullptr when the id is not a dtype we know.
const DTypeInfo* dtype_info(DType t);
const DTypeInfo* dtype_by_name(const std::string& name);
bool is_quantized(DType t);
// The r16 layouts (cpu/repack.h): is_r16(Q4_0_R16 / Q8_0_R16); plain_of maps them to Q4_0 / Q8_0
// (any other type to itself).
bool is_r16(DType t);
DType plain_of(DType t);

// Bytes for a row of n elements; throws E_SHAPE when n is not a multiple of the block size.
int64_t row_bytes(DType t, int64_t n);

// Error with a stable code (E_SHAPE, E_DTYPE, ...); converted to a JS error at the binding.
struct Error : std::runtime_error {
  std::string code;
  Error(std::string c, const std::string& msg) : std::runtime_error(msg), code(std::move(c)) {}
};

[[noreturn]] inline void fail(const char* code, const std::string& msg) { throw Error(code, msg); }

}  // namespace qm
