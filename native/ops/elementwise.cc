// Element-wise ops and zero-copy views:
//   add(a, b, { out? }) -> a + b (same shape f32; `out` may be a, for in-place)
//   addRowBias(x [.., N], bias f32|f16|bf16 [N]) -> x, in place
//   gatedAct(gate, up, { activation: 'silu'|'gelu'|'gelu_tanh', out? }) -> act(gate) * up
//   scale(a, s, { out? }) -> a * s
//   view(t, shape) -> a tensor sharing t's memory with another shape of the same byte size
//   slice(t, start, end) -> rows [start, end) of dim 0, sharing memory
#include "../binding.h"
#include "../cpu/elementwise.h"
#include "../fp16.h"
#include "ops.h"

namespace qm {

namespace {

void require_f32_cpu(const Tensor* t, const char* what) {
  require_cpu(t, what);
  require_dtype(t, DType::F32, what);
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  Tensor* a = arg_tensor(info, 0, "a");
  Tensor* b = arg_tensor(info, 1, "b");
  Napi::Object opts = arg_object(info, 2, "options", true);
  require_f32_cpu(a, "a");
  require_f32_cpu(b, "b");
  if (a->shape() != b->shape()) fail("E_SHAPE", "add: " + a->describe() + " and " + b->describe() + " differ in shape");
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, a->shape(), &y);
  cpu::add_f32(a->as<float>(), b->as<float>(), y->as<float>(), a->numel());
  return out;
}

Napi::Value AddRowBias(const Napi::CallbackInfo& info) {
  Tensor* x = arg_tensor(info, 0, "x");
  Tensor* bias = arg_tensor(info, 1, "bias");
  require_f32_cpu(x, "x");
  require_cpu(bias, "bias");
  require_rank(bias, 1, "bias");
  if (bias->dtype() != DType::F32 && bias->dtype() != DType::F16 && bias->dtype() != DType::BF16)
    fail("E_DTYPE", "addRowBias: bias must be f32, f16 or bf16, got " + bias->describe());
  if (x->shape().empty() || x->shape().back() != bias->shape()[0])
    fail("E_SHAPE", "addRowBias: bias " + bias->describe() + " does not match the last dim of x " + x->describe());
  const int64_t cols = bias->shape()[0];
  std::vector<float> b(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    if (bias->dtype() == DType::F32) b[j] = bias->as<float>()[j];
    else if (bias->dtype() == DType::F16) b[j] = f16_to_f32(bias->as<uint16_t>()[j]);
    else b[j] = bf16_to_f32(bias->as<uint16_t>()[j]);
  }
  cpu::add_row_bias_f32(x->as<float>(), b.data(), cols ? x->numel() / cols : 0, cols);
  return info[0];
}

Napi::Value GatedAct(const Napi::CallbackInfo& info) {
  Tensor* g = arg_tensor(info, 0, "gate");
  Tensor* u = arg_tensor(info, 1, "up");
  Napi::Object opts = arg_object(info, 2, "options", true);
  require_f32_cpu(g, "gate");
  require_f32_cpu(u, "up");
  if (g->shape() != u->shape()) fail("E_SHAPE", "gatedAct: " + g->describe() + " and " + u->describe() + " differ in shape");
  std::string act = opt_string(opts, "activation", "silu");
  int code = act == "silu" ? 0 : act == "gelu" ? 1 : act == "gelu_tanh" ? 2 : -1;
  if (code < 0) fail("E_ARGUMENT", "gatedAct: activation must be 'silu', 'gelu' or 'gelu_tanh', got '" + act + "'");
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, g->shape(), &y);
  cpu::gated_act_f32(g->as<float>(), u->as<float>(), y->as<float>(), g->numel(), code);
  return out;
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  Tensor* a = arg_tensor(info, 0, "a");
  double s = arg_number(info, 1, "s");
  Napi::Object opts = arg_object(info, 2, "options", true);
  require_f32_cpu(a, "a");
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, a->shape(), &y);
  cpu::scale_f32(a->as<float>(), static_cast<float>(s), y->as<float>(), a->numel());
  return out;
}

Napi::Value View(const Napi::CallbackInfo& info) {
  Tensor* t = arg_tensor(info, 0, "t");
  if (info.Length() < 2) fail("E_ARGUMENT", "view(t, shape) takes 2 arguments");
  std::vector<int64_t> shape = arg_shape(info[1], "shape");
  if (tensor_bytes(t->dtype(), shape) != t->byte_size())
    fail("E_SHAPE", "view: " + t->describe() + " cannot be viewed as " + shape_str(shape) + " (byte sizes differ)");
  return Tensor::New(info.Env(), t->dtype(), shape, t->storage(), t->offset());
}

Napi::Value Slice(const Napi::CallbackInfo& info) {
  Tensor* t = arg_tensor(info, 0, "t");
  double s = arg_number(info, 1, "start"), e = arg_number(info, 2, "end");
  if (t->shape().empty()) fail("E_SHAPE", "slice: a scalar cannot be sliced");
  const int64_t rows = t->shape()[0];
  if (!(s >= 0 && s <= e && e <= static_cast<double>(rows)) || s != static_cast<int64_t>(s) || e != static_cast<int64_t>(e))
    fail("E_ARGUMENT", "slice: [" + std::to_string(s) + ", " + std::to_string(e) + ") is not a row range of " + t->describe());
  std::vector<int64_t> shape = t->shape();
  shape[0] = static_cast<int64_t>(e) - static_cast<int64_t>(s);
  const size_t row_bytes = rows ? t->byte_size() / static_cast<size_t>(rows) : 0;
  return Tensor::New(info.Env(), t->dtype(), shape, t->storage(), t->offset() + row_bytes * static_cast<size_t>(s));
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("add", Napi::Function::New<exported<Add>>(env, "add"));
  exports.Set("addRowBias", Napi::Function::New<exported<AddRowBias>>(env, "addRowBias"));
  exports.Set("gatedAct", Napi::Function::New<exported<GatedAct>>(env, "gatedAct"));
  exports.Set("scale", Napi::Function::New<exported<Scale>>(env, "scale"));
  exports.Set("view", Napi::Function::New<exported<View>>(env, "view"));
  exports.Set("slice", Napi::Function::New<exported<Slice>>(env, "slice"));
}

}  // namespace qm
