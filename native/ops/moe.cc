// Op family 'moe': the fused MoE layer.
//   moe(x: f32[T,D], { routerWeight?: [E,D] | routerLogits?: f32[T,E], topK, func, normTopk, ...routing
//        options (routing.h), experts: { gate, up, down }, activation?, shared?, threads?, out?,
//        returnRouting? }) -> { y: f32[T,D], counts: Int32Array[E], ids?: i32[T,k], weights?: f32[T,k] }
// experts.gate / experts.up: one stacked tensor [E,F,D] or an array of E tensors [F,D];
// experts.down: [E,D,F] or E tensors [D,F]; any qgemm weight type, per expert types may differ.
// shared: { gate [Fs,D], up [Fs,D], down [D,Fs], gateWeight? [1,D] } or an array of them.
// Every argument is validated here before native/cpu/moe.cc touches memory.
#include <algorithm>
#include <string>
#include <vector>

#include "../binding.h"
#include "../cpu/moe.h"
#include "../cpu/qgemm.h"
#include "routing.h"
#include "ops.h"

namespace qm {

namespace {

const char* dname(DType t) {
  const DTypeInfo* i = dtype_info(t);
  return i ? i->name : "?";
}

// A tensor read from a JS value (an option or an array element).
Tensor* value_tensor(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  if (v.IsEmpty() || !Tensor::IsTensor(env, v)) fail("E_ARGUMENT", "moe: " + what + " must be a Tensor");
  Tensor* t = Tensor::Unwrap(v.As<Napi::Object>());
  if (t->disposed()) fail("E_DISPOSED", "moe: " + what + " was disposed");
  require_cpu(t, ("moe: " + what).c_str());
  return t;
}

Napi::Value get_key(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return Napi::Value();
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Value();
  return v;
}

// A weight matrix usable by qgemm_rows: supported dtype, aligned, rows of K fitting the block size.
void check_weight(const Tensor* t, int64_t K, const std::string& what) {
  if (!cpu::qgemm_supports(t->dtype()))
    fail("E_DTYPE", "moe: " + what + " has dtype " + dname(t->dtype()) +
                        ", not a weight type (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k..q6_k)");
  const size_t al = t->dtype() == DType::F32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(t->data()) % al != 0)
    fail("E_ARGUMENT", "moe: " + what + " data is not " + std::to_string(al) + "-byte aligned (" + t->describe() + ")");
  const DTypeInfo* i = dtype_info(t->dtype());
  if (K % i->block_size != 0)
    fail("E_SHAPE", "moe: " + what + " " + t->describe() + ": row length " + std::to_string(K) + " is not a multiple of the " +
                        i->name + " block size " + std::to_string(i->block_size));
}

// E per-expert matrices [rows, K] from a stacked [E, rows, K] tensor or an array of E [rows, K]
// tensors. rows < 0: taken from the tensor(s) (and returned); K is always known.
std::vector<cpu::MoeMatrix> read_experts(const Napi::Env& env, const Napi::Object& experts, const char* key, int64_t E,
                                         int64_t& rows, int64_t K, const char* layout, std::vector<const Tensor*>& inputs) {
  const std::string name = std::string("experts.") + key;
  Napi::Value v = get_key(experts, key);
  if (v.IsEmpty()) fail("E_ARGUMENT", "moe: " + name + " is required (a stacked " + layout + " tensor or an array of E tensors)");
  std::vector<cpu::MoeMatrix> m(static_cast<size_t>(E));
  auto want = [&](const Tensor* t, int64_t r, int64_t c, const std::string& what, const std::string& expect) {
    if (rows < 0) rows = r;
    if (r != rows || c != K || r < 1)
      fail("E_SHAPE", "moe: " + what + " must be " + expect + ", got " + t->describe());
  };
  if (v.IsArray()) {
    Napi::Array arr = v.As<Napi::Array>();
    if (static_cast<int64_t>(arr.Length()) != E)
      fail("E_SHAPE", "moe: " + name + " has " + std::to_string(arr.Length()) + " tensors for " + std::to_string(E) + " experts");
    for (uint32_t e = 0; e < arr.Length(); ++e) {
      const std::string what = name + "[" + std::to_string(e) + "]";
      Tensor* t = value_tensor(env, arr.Get(e), what);
      check_weight(t, K, what);
      if (t->shape().size() != 2) fail("E_SHAPE", "moe: " + what + " must be 2-D (" + layout + " without the E), got " + t->describe());
      want(t, t->shape()[0], t->shape()[1], what, std::string(layout) + " without the E");
      m[e] = {t->data(), t->dtype()};
      inputs.push_back(t);
    }
    return m;
  }
  Tensor* t = value_tensor(env, v, name);
  check_weight(t, K, name);
  if (t->shape().size() != 3 || t->shape()[0] != E)
    fail("E_SHAPE", "moe: " + name + " must be " + layout + " with E=" + std::to_string(E) + ", got " + t->describe());
  want(t, t->shape()[1], t->shape()[2], name, layout);
  const int64_t stride = rows * row_bytes(t->dtype(), K);
  for (int64_t e = 0; e < E; ++e) m[static_cast<size_t>(e)] = {t->data() + e * stride, t->dtype()};
  inputs.push_back(t);
  return m;
}

cpu::MoeShared read_shared(const Napi::Env& env, const Napi::Value& v, const std::string& name, int64_t D,
                           std::vector<const Tensor*>& inputs) {
  if (!v.IsObject() || v.IsArray() || Tensor::IsTensor(env, v))
    fail("E_ARGUMENT", "moe: " + name + " must be an object { gate, up, down, gateWeight? }");
  Napi::Object o = v.As<Napi::Object>();
  cpu::MoeShared s;
  auto mat = [&](const char* key, int64_t rows, int64_t K, const char* expect) -> cpu::MoeMatrix {
    const std::string what = name + "." + key;
    Napi::Value tv = get_key(o, key);
    if (tv.IsEmpty()) fail("E_ARGUMENT", "moe: " + what + " is required");
    Tensor* t = value_tensor(env, tv, what);
    check_weight(t, K, what);
    if (t->shape().size() != 2 || t->shape()[0] != rows || t->shape()[1] != K)
      fail("E_SHAPE", "moe: " + what + " must be " + expect + ", got " + t->describe());
    inputs.push_back(t);
    return {t->data(), t->dtype()};
  };
  {
    Napi::Value g = get_key(o, "gate");
    if (g.IsEmpty()) fail("E_ARGUMENT", "moe: " + name + ".gate is required");
    Tensor* t = value_tensor(env, g, name + ".gate");
    if (t->shape().size() != 2 || t->shape()[0] < 1)
      fail("E_SHAPE", "moe: " + name + ".gate must be [Fs, D], got " + t->describe());
    s.F = t->shape()[0];
  }
  const std::string fs = "[" + std::to_string(s.F) + "," + std::to_string(D) + "]";
  const std::string ds = "[" + std::to_string(D) + "," + std::to_string(s.F) + "]";
  s.w.gate = mat("gate", s.F, D, fs.c_str());
  s.w.up = mat("up", s.F, D, fs.c_str());
  s.w.down = mat("down", D, s.F, ds.c_str());
  Napi::Value gw = get_key(o, "gateWeight");
  if (!gw.IsEmpty()) {
    const std::string what = name + ".gateWeight";
    Tensor* t = value_tensor(env, gw, what);
    check_weight(t, D, what);
    const auto& sh = t->shape();
    const bool ok = (sh.size() == 2 && sh[0] == 1 && sh[1] == D) || (sh.size() == 1 && sh[0] == D);
    if (!ok) fail("E_SHAPE", "moe: " + what + " must be [1," + std::to_string(D) + "], got " + t->describe());
    inputs.push_back(t);
    s.gate_inp = {t->data(), t->dtype()};
  }
  return s;
}

bool overlaps(const Tensor* a, const Tensor* b) {
  if (a->byte_size() == 0 || b->byte_size() == 0) return false;
  const uint8_t *a0 = a->data(), *b0 = b->data();
  return a0 < b0 + b->byte_size() && b0 < a0 + a->byte_size();
}

Napi::Value Moe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor* x = arg_tensor(info, 0, "moe: x");
  Napi::Object opts = arg_object(info, 1, "moe: options", false);
  require_cpu(x, "moe: x");
  require_dtype(x, DType::F32, "moe: x");
  require_rank(x, 2, "moe: x");
  const int64_t T = x->shape()[0], D = x->shape()[1];
  if (D < 1) fail("E_SHAPE", "moe: x must have a positive hidden size, got " + x->describe());
  std::vector<const Tensor*> inputs{x};

  // Router.
  Tensor* rw = opt_tensor(opts, "routerWeight");
  Tensor* rl = opt_tensor(opts, "routerLogits");
  if ((rw != nullptr) == (rl != nullptr))
    fail("E_ARGUMENT", "moe: give exactly one of options.routerWeight ([E,D] weights) or options.routerLogits (f32[T,E])");
  int64_t E = 0;
  cpu::MoeArgs a;
  if (rw) {
    require_cpu(rw, "moe: routerWeight");
    check_weight(rw, D, "routerWeight");
    if (rw->shape().size() != 2 || rw->shape()[1] != D || rw->shape()[0] < 1)
      fail("E_SHAPE", "moe: routerWeight must be [E," + std::to_string(D) + "], got " + rw->describe());
    E = rw->shape()[0];
    a.router = {rw->data(), rw->dtype()};
    inputs.push_back(rw);
  } else {
    require_cpu(rl, "moe: routerLogits");
    require_dtype(rl, DType::F32, "moe: routerLogits");
    if (rl->shape().size() != 2 || rl->shape()[0] != T || rl->shape()[1] < 1)
      fail("E_SHAPE", "moe: routerLogits must be f32[" + std::to_string(T) + ",E], got " + rl->describe());
    E = rl->shape()[1];
    a.router_logits = rl->as<float>();
    inputs.push_back(rl);
  }
  a.route = parse_route_options(opts, E, "moe");
  if (Tensor* b = opt_tensor(opts, "correctionBias")) inputs.push_back(b);
  const int64_t k = a.route.k;

  // Experts.
  Napi::Value ev = get_key(opts, "experts");
  if (ev.IsEmpty() || !ev.IsObject() || ev.IsArray() || Tensor::IsTensor(env, ev))
    fail("E_ARGUMENT", "moe: options.experts must be an object { gate, up, down }");
  Napi::Object eo = ev.As<Napi::Object>();
  int64_t F = -1, Drows = D;
  std::vector<cpu::MoeMatrix> gate = read_experts(env, eo, "gate", E, F, D, "[E,F,D]", inputs);
  std::vector<cpu::MoeMatrix> up = read_experts(env, eo, "up", E, F, D, "[E,F,D] (same F as gate)", inputs);
  std::vector<cpu::MoeMatrix> down = read_experts(env, eo, "down", E, Drows, F, "[E,D,F]", inputs);
  std::vector<cpu::MoeFfnWeights> experts(static_cast<size_t>(E));
  for (size_t e = 0; e < experts.size(); ++e) experts[e] = {gate[e], up[e], down[e]};

  // Shared experts.
  std::vector<cpu::MoeShared> shared;
  Napi::Value sv = get_key(opts, "shared");
  if (!sv.IsEmpty()) {
    if (sv.IsArray()) {
      Napi::Array arr = sv.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i)
        shared.push_back(read_shared(env, arr.Get(i), "shared[" + std::to_string(i) + "]", D, inputs));
    } else {
      shared.push_back(read_shared(env, sv, "shared", D, inputs));
    }
  }

  const std::string act = opt_string(opts, "activation", "silu");
  if (act == "silu") a.act = cpu::MoeAct::Silu;
  else if (act == "gelu") a.act = cpu::MoeAct::Gelu;
  else if (act == "gelu_tanh") a.act = cpu::MoeAct::GeluTanh;
  else fail("E_ARGUMENT", "moe: option 'activation' must be 'silu', 'gelu' or 'gelu_tanh', got '" + act + "'");
  const int threads = opt_threads(opts);
  const bool return_routing = opt_bool(opts, "returnRouting", false);

  // Outputs.
  Tensor* y = nullptr;
  Napi::Object y_obj = make_output(env, opt_tensor(opts, "out"), DType::F32, {T, D}, &y);
  for (const Tensor* t : inputs)
    if (overlaps(y, t)) fail("E_ARGUMENT", "moe: out must not overlap an input (" + t->describe() + ")");
  Napi::Int32Array counts = Napi::Int32Array::New(env, static_cast<size_t>(E));
  Napi::Object ids_obj, w_obj;
  std::vector<int32_t> ids_tmp;
  std::vector<float> w_tmp;
  if (return_routing) {
    const std::vector<int64_t> sh{T, k};
    ids_obj = Tensor::New(env, DType::I32, sh, alloc_cpu_storage(tensor_bytes(DType::I32, sh), false));
    w_obj = Tensor::New(env, DType::F32, sh, alloc_cpu_storage(tensor_bytes(DType::F32, sh), false));
    a.ids = Tensor::Unwrap(ids_obj)->as<int32_t>();
    a.weights = Tensor::Unwrap(w_obj)->as<float>();
  } else {
    ids_tmp.resize(static_cast<size_t>(std::max<int64_t>(1, T * k)));
    w_tmp.resize(ids_tmp.size());
    a.ids = ids_tmp.data();
    a.weights = w_tmp.data();
  }

  a.x = x->as<float>();
  a.T = T;
  a.D = D;
  a.E = E;
  a.F = F;
  a.experts = experts.data();
  a.shared = shared.data();
  a.n_shared = static_cast<int64_t>(shared.size());
  a.y = y->as<float>();
  a.counts = counts.Data();
  a.threads = threads;
  cpu::moe_forward(a);

  Napi::Object r = Napi::Object::New(env);
  r.Set("y", y_obj);
  r.Set("counts", counts);
  if (return_routing) {
    r.Set("ids", ids_obj);
    r.Set("weights", w_obj);
  }
  return r;
}

}  // namespace

void register_moe(Napi::Env env, Napi::Object exports) {
  exports.Set("moe", Napi::Function::New<exported<Moe>>(env, "moe"));
}

}  // namespace qm
