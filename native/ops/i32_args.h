// Shared argument reader for the attention / norm_rope families: an index list given either as an
// Int32Array or as a 1-D i32 Tensor, copied out (small: one entry per token or sequence).
#pragma once
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "../binding.h"

namespace qm {

inline std::vector<int32_t> read_i32_list(const Napi::Value& v, const std::string& what) {
  std::vector<int32_t> out;
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array) fail("E_ARGUMENT", what + " must be an Int32Array or an i32 Tensor");
    auto a = v.As<Napi::Int32Array>();
    out.resize(a.ElementLength());
    if (!out.empty()) std::memcpy(out.data(), a.Data(), out.size() * sizeof(int32_t));
    return out;
  }
  if (Tensor::IsTensor(v.Env(), v)) {
    Tensor* t = Tensor::Unwrap(v.As<Napi::Object>());
    if (t->disposed()) fail("E_DISPOSED", what + " was disposed");
    require_cpu(t, what.c_str());
    require_dtype(t, DType::I32, what.c_str());
    if (t->shape().size() != 1) fail("E_SHAPE", what + " must be 1-D, got " + t->describe());
    out.resize(static_cast<size_t>(t->shape()[0]));
    if (!out.empty()) std::memcpy(out.data(), t->data(), out.size() * sizeof(int32_t));
    return out;
  }
  fail("E_ARGUMENT", what + " must be an Int32Array or an i32 Tensor");
}

inline std::vector<int32_t> arg_i32_list(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length()) fail("E_ARGUMENT", std::string(what) + " is required");
  return read_i32_list(info[i], what);
}

}  // namespace qm
