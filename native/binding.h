// Helpers for the N-API boundary: every exported function validates its arguments here before any
// kernel touches memory, and every C++ error becomes a JS Error with a stable `code`.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "common.h"
#include "tensor.h"

namespace qm {

// Per-environment (main thread or each worker thread) state: class constructors. Keeping them
// here rather than in statics makes the addon safe to load in several worker threads.
struct InstanceData {
  Napi::FunctionReference tensor_ctor;
  Napi::FunctionReference mapped_file_ctor;
  // (code, message) => Error: set by lib/native.ts so that native errors are QuantMoeErrors.
  Napi::FunctionReference error_factory;
};
InstanceData* instance(Napi::Env env);

// Native classes accept only this token in their JS constructor; objects are made by factories.
extern const char* const kInternalToken;

// Converts qm::Error / std::bad_alloc / std::exception thrown by fn into a JS exception.
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& fn);

// Wraps a C++ callback so that it can be exported with guarded() applied.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value exported(const Napi::CallbackInfo& info) {
  return guarded(info, [&] { return F(info); });
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& msg);

// Argument readers: `what` names the argument in error messages.
Tensor* arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* what);
Tensor* opt_tensor(const Napi::Object& opts, const char* key);  // nullptr when absent/undefined
Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* what, bool optional);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* what);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* what);
std::vector<int64_t> arg_shape(const Napi::Value& v, const char* what);
DType parse_dtype(const Napi::Value& v, const char* what);

// Options readers (missing or undefined -> default).
int opt_int(const Napi::Object& opts, const char* key, int def, int lo, int hi);
double opt_number(const Napi::Object& opts, const char* key, double def);
bool opt_bool(const Napi::Object& opts, const char* key, bool def);
std::string opt_string(const Napi::Object& opts, const char* key, const std::string& def);
int opt_threads(const Napi::Object& opts);  // `threads`, default: all hardware threads

// Validation helpers.
void require_cpu(const Tensor* t, const char* what);
void require_dtype(const Tensor* t, DType d, const char* what);
void require_rank(const Tensor* t, size_t rank, const char* what);
std::string shape_str(const std::vector<int64_t>& s);

// Allocates an output tensor, or validates the caller's `out` (dtype, shape, device).
Napi::Object make_output(Napi::Env env, Tensor* out, DType dtype, const std::vector<int64_t>& shape,
                         Tensor** result);

}  // namespace qm
