// One registration function per op family; each validates its arguments and dispatches to the
// CPU kernels (native/cpu) or the CUDA kernels (native/cuda).
#pragma once
#include <napi.h>

namespace qm {
void register_tensor_ops(Napi::Env env, Napi::Object exports);
void register_backends(Napi::Env env, Napi::Object exports);
void register_matmul(Napi::Env env, Napi::Object exports);
}  // namespace qm
