// Module entry. Initialisation is per environment (main thread and each worker thread get their
// own class constructors); the only process-wide state is the CPU thread pool and the CUDA context.
#include <napi.h>

#include "ops/ops.h"

namespace qm {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  register_tensor_ops(env, exports);
  register_backends(env, exports);
  register_matmul(env, exports);
  register_qgemm(env, exports);
  register_routing(env, exports);
  register_moe(env, exports);
  register_attention(env, exports);
  register_sparse_attention(env, exports);
  register_norm_rope(env, exports);
  register_elementwise(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace qm

static Napi::Object InitQuantmoe(Napi::Env env, Napi::Object exports) { return qm::Init(env, exports); }

NODE_API_MODULE(quantmoe, InitQuantmoe)
