// Op family 'routing': route(logits f32[T,E], options) -> { ids i32[T,k], weights f32[T,k], counts Int32Array[E] }
// See native/cpu/routing.h for the scoring functions, tie-breaking and NaN behaviour.
#include "routing.h"

#include <cmath>
#include <cstring>

#include "../binding.h"
#include "ops.h"

namespace qm {

cpu::RouteParams parse_route_options(const Napi::Object& opts, int64_t E, const char* fn) {
  const std::string f(fn);
  cpu::RouteParams p;
  if (opts.IsEmpty() || !opts.Has("topK") || opts.Get("topK").IsUndefined())
    fail("E_ARGUMENT", f + ": option 'topK' (experts per token) is required");
  p.k = opt_int(opts, "topK", 1, 1, 1 << 20);
  if (p.k > E)
    fail("E_ARGUMENT", f + ": topK " + std::to_string(p.k) + " exceeds the number of experts " + std::to_string(E));

  const std::string func = opt_string(opts, "func", "softmax");
  if (func == "softmax") p.func = cpu::RouteFunc::Softmax;
  else if (func == "topk_softmax") p.func = cpu::RouteFunc::TopkSoftmax;
  else if (func == "sigmoid") p.func = cpu::RouteFunc::Sigmoid;
  else fail("E_ARGUMENT", f + ": option 'func' must be 'softmax', 'topk_softmax' or 'sigmoid', got '" + func + "'");

  p.norm_topk = opt_bool(opts, "normTopk", false);
  p.scale = opt_number(opts, "routedScalingFactor", 1.0);
  if (!std::isfinite(p.scale)) fail("E_ARGUMENT", f + ": option 'routedScalingFactor' must be finite");

  if (Tensor* b = opt_tensor(opts, "correctionBias")) {
    require_cpu(b, "correctionBias");
    require_dtype(b, DType::F32, "correctionBias");
    if (b->shape().size() != 1 || b->shape()[0] != E)
      fail("E_SHAPE", f + ": correctionBias must be f32[" + std::to_string(E) + "] (one per expert), got " + b->describe());
    p.bias = b->as<float>();
  }

  p.n_group = opt_int(opts, "nGroup", 1, 1, 1 << 20);
  p.topk_group = opt_int(opts, "topkGroup", static_cast<int>(p.n_group), 1, 1 << 20);
  if (p.n_group > 1) {
    if (E % p.n_group != 0)
      fail("E_ARGUMENT", f + ": nGroup " + std::to_string(p.n_group) + " does not divide the " + std::to_string(E) +
                             " experts into equal groups");
    if (p.topk_group > p.n_group)
      fail("E_ARGUMENT", f + ": topkGroup " + std::to_string(p.topk_group) + " exceeds nGroup " + std::to_string(p.n_group));
    if (p.topk_group * (E / p.n_group) < p.k)
      fail("E_ARGUMENT", f + ": topkGroup " + std::to_string(p.topk_group) + " groups of " + std::to_string(E / p.n_group) +
                             " experts hold fewer than topK " + std::to_string(p.k) + " experts");
  } else if (p.topk_group != 1) {
    fail("E_ARGUMENT", f + ": topkGroup needs nGroup > 1");
  }
  const std::string gs = opt_string(opts, "groupScore", "top2sum");
  if (gs == "top2sum") p.group_score = cpu::GroupScore::Top2Sum;
  else if (gs == "max") p.group_score = cpu::GroupScore::Max;
  else fail("E_ARGUMENT", f + ": option 'groupScore' must be 'top2sum' or 'max', got '" + gs + "'");
  return p;
}

namespace {

Napi::Value Route(const Napi::CallbackInfo& info) {
  Tensor* logits = arg_tensor(info, 0, "logits");
  Napi::Object opts = arg_object(info, 1, "options", false);
  require_cpu(logits, "logits");
  require_dtype(logits, DType::F32, "logits");
  require_rank(logits, 2, "logits");
  const int64_t T = logits->shape()[0], E = logits->shape()[1];
  if (E < 1) fail("E_SHAPE", "route: logits must have at least one expert column, got " + logits->describe());
  cpu::RouteParams p = parse_route_options(opts, E, "route");
  const int threads = opt_threads(opts);

  Napi::Env env = info.Env();
  const std::vector<int64_t> shape{T, p.k};
  Napi::Object ids_obj = Tensor::New(env, DType::I32, shape, alloc_cpu_storage(tensor_bytes(DType::I32, shape), false));
  Napi::Object w_obj = Tensor::New(env, DType::F32, shape, alloc_cpu_storage(tensor_bytes(DType::F32, shape), false));
  Napi::Int32Array counts = Napi::Int32Array::New(env, static_cast<size_t>(E));
  cpu::route_all(p, logits->as<float>(), T, E, Tensor::Unwrap(ids_obj)->as<int32_t>(), Tensor::Unwrap(w_obj)->as<float>(),
                 counts.Data(), threads);
  Napi::Object r = Napi::Object::New(env);
  r.Set("ids", ids_obj);
  r.Set("weights", w_obj);
  r.Set("counts", counts);
  return r;
}

}  // namespace

void register_routing(Napi::Env env, Napi::Object exports) {
  exports.Set("route", Napi::Function::New<exported<Route>>(env, "route"));
}

}  // namespace qm
