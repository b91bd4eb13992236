// matmul(x: f32[T,K] (or [K]), w: f32|f16|bf16 [N,K], { threads, out, device }) -> f32[T,N]
#include <algorithm>

#include "../binding.h"
#include "../cpu/matmul.h"
#include "../cuda/cuda_backend.h"
#include "../threadpool.h"
#include "dispatch.h"
#include "ops.h"

namespace qm {

namespace {

struct Checked {
  int64_t T, K, N;
  std::vector<int64_t> out_shape;
};

Checked check_matmul(const Tensor* x, const Tensor* w) {
  require_cpu(x, "x");
  require_cpu(w, "w");
  require_dtype(x, DType::F32, "x");
  if (w->dtype() != DType::F32 && w->dtype() != DType::F16 && w->dtype() != DType::BF16)
    fail("E_DTYPE", "matmul: w must be f32, f16 or bf16 (quantized weights use qmatmul), got " + w->describe());
  require_rank(w, 2, "w");
  const auto& xs = x->shape();
  if (xs.size() != 1 && xs.size() != 2) fail("E_SHAPE", "matmul: x must be [K] or [T,K], got " + x->describe());
  Checked c;
  c.K = xs.back();
  c.T = xs.size() == 2 ? xs[0] : 1;
  c.N = w->shape()[0];
  if (w->shape()[1] != c.K)
    fail("E_SHAPE", "matmul: x " + x->describe() + " and w " + w->describe() + " disagree on K (w is [N,K])");
  c.out_shape = xs.size() == 2 ? std::vector<int64_t>{c.T, c.N} : std::vector<int64_t>{c.N};
  return c;
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Tensor* x = arg_tensor(info, 0, "x");
  Tensor* w = arg_tensor(info, 1, "w");
  Napi::Object opts = arg_object(info, 2, "options", true);
  Checked c = check_matmul(x, w);
  const int threads = opt_threads(opts);
  const std::string device = opt_string(opts, "device", "cpu");
  if (device != "cpu" && device != "cuda") fail("E_ARGUMENT", "option 'device' must be 'cpu' or 'cuda'");
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, c.out_shape, &y);
  if (y == x || y == w) fail("E_ARGUMENT", "matmul: out must not alias an input");
  if (device == "cuda") {
    cuda_matmul(x->as<float>(), w->data(), w->dtype(), y->as<float>(), c.T, c.K, c.N);
    return out;
  }
  cpu::MatmulArgs a{x->as<float>(), w->data(), w->dtype(), y->as<float>(), c.T, c.K, c.N};
  auto rows = QM_PICK(cpu::matmul_rows);
  // Chunks of rows: enough tasks to balance threads, big enough to amortise the task overhead.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(64, c.N / (8 * std::max(1, threads)) + 1));
  const int64_t tasks = (c.N + chunk - 1) / chunk;
  parallel_for(tasks, threads, [&](int64_t task, int) {
    const int64_t n0 = task * chunk;
    rows(a, n0, std::min(c.N, n0 + chunk));
  });
  return out;
}

}  // namespace

void register_matmul(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New<exported<Matmul>>(env, "matmul"));
}

}  // namespace qm
