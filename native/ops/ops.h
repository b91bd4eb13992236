// One registration function per op family; each validates its arguments and dispatches to the
// CPU kernels (native/cpu) or the CUDA kernels (native/cuda).
#pragma once
#include <napi.h>

namespace qm {
void register_tensor_ops(Napi::Env env, Napi::Object exports);
void register_backends(Napi::Env env, Napi::Object exports);
void register_matmul(Napi::Env env, Napi::Object exports);
void register_qgemm(Napi::Env env, Napi::Object exports);             // quantized GEMM, (de)quantize, get_rows
void register_routing(Napi::Env env, Napi::Object exports);           // top-k gating variants
void register_moe(Napi::Env env, Napi::Object exports);               // fused MoE layer
void register_attention(Napi::Env env, Napi::Object exports);         // dense flash attention + KV cache
void register_sparse_attention(Napi::Env env, Napi::Object exports);  // SpargeAttn block-sparse attention
void register_norm_rope(Napi::Env env, Napi::Object exports);         // RMSNorm/LayerNorm, RoPE
void register_elementwise(Napi::Env env, Napi::Object exports);       // add, mul, activations, softmax
}  // namespace qm
