// Op family 'norm_rope': RMSNorm, LayerNorm, per-head q/k RMSNorm and rotary embeddings.
//   rmsNorm(x f32 [..., n], weight f32|f16|bf16 [n] | null, { eps=1e-6, addUnitOffset, out, threads })
//   layerNorm(x f32 [..., n], weight [n] | null, bias [n] | null, { eps=1e-5, out, threads })
//   headRmsNorm(x f32 [T, H, D], weight [D] (per head) | [H*D] (whole row, OLMoE) | null,
//               { eps=1e-6, addUnitOffset, out, threads })
//   rope(x f32 [T, H, D], positions Int32Array | i32 Tensor [T], { theta=10000, ropeDim=D,
//        style: 'neox' | 'adjacent', scaling, freqFactors?, inPlace, out, threads })
// `out` may be x itself (all of these are row-local).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../binding.h"
#include "../cpu/norm_rope.h"
#include "../threadpool.h"
#include "dispatch.h"
#include "i32_args.h"
#include "ops.h"

namespace qm {

namespace {

const void* opt_weight(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t n, DType* dt) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  Tensor* w = arg_tensor(info, i, what);
  require_cpu(w, what);
  if (w->dtype() != DType::F32 && w->dtype() != DType::F16 && w->dtype() != DType::BF16)
    fail("E_DTYPE", std::string(what) + " must be f32, f16 or bf16, got " + w->describe());
  if (w->numel() != n || w->shape().size() != 1)
    fail("E_SHAPE", std::string(what) + " must be [" + std::to_string(n) + "], got " + w->describe());
  *dt = w->dtype();
  return w->data();
}

Tensor* checked_x(const Napi::CallbackInfo& info, const char* fn) {
  Tensor* x = arg_tensor(info, 0, "x");
  require_cpu(x, "x");
  require_dtype(x, DType::F32, "x");
  if (x->shape().empty() || x->shape().back() == 0)
    fail("E_SHAPE", std::string(fn) + ": x must have at least one dimension and a non-empty last dimension, got " + x->describe());
  return x;
}

// Output tensor: `out` (may be x) or a new one of x's shape.
Napi::Object output_like(Napi::Env env, const Napi::Object& opts, Tensor* x, Tensor** y) {
  Tensor* out = opt_tensor(opts, "out");
  if (opt_bool(opts, "inPlace", false)) {
    if (out && out != x) fail("E_ARGUMENT", "options 'inPlace' and 'out' disagree");
    out = x;
  }
  return make_output(env, out, DType::F32, x->shape(), y);
}

void run_rows(int64_t rows, int64_t row_elems, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  // chunks of ~16K elements
  const int64_t chunk = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_elems));
  const int64_t tasks = (rows + chunk - 1) / chunk;
  parallel_for(tasks, threads, [&](int64_t t, int) { fn(t * chunk, std::min(rows, (t + 1) * chunk)); });
}

float checked_eps(const Napi::Object& opts, double def) {
  double eps = opt_number(opts, "eps", def);
  if (!(eps >= 0) || !std::isfinite(eps)) fail("E_ARGUMENT", "option 'eps' must be a finite number >= 0");
  return static_cast<float>(eps);
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Tensor* x = checked_x(info, "rmsNorm");
  const int64_t n = x->shape().back(), rows = x->numel() / n;
  cpu::NormArgs a{};
  a.wtype = DType::F32;
  a.w = opt_weight(info, 1, "weight", n, &a.wtype);
  Napi::Object opts = arg_object(info, 2, "options", true);
  a.eps = checked_eps(opts, 1e-6);
  a.unit_offset = opt_bool(opts, "addUnitOffset", false);
  const int threads = opt_threads(opts);
  Tensor* y = nullptr;
  Napi::Object out = output_like(info.Env(), opts, x, &y);
  a.x = x->as<float>();
  a.y = y->as<float>();
  a.n = a.w_len = n;
  auto fn = QM_PICK(cpu::rms_norm_rows);
  run_rows(rows, n, threads, [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return out;
}

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Tensor* x = checked_x(info, "layerNorm");
  const int64_t n = x->shape().back(), rows = x->numel() / n;
  cpu::NormArgs a{};
  a.wtype = a.btype = DType::F32;
  a.w = opt_weight(info, 1, "weight", n, &a.wtype);
  a.b = opt_weight(info, 2, "bias", n, &a.btype);
  Napi::Object opts = arg_object(info, 3, "options", true);
  a.eps = checked_eps(opts, 1e-5);
  a.unit_offset = opt_bool(opts, "addUnitOffset", false);
  const int threads = opt_threads(opts);
  Tensor* y = nullptr;
  Napi::Object out = output_like(info.Env(), opts, x, &y);
  a.x = x->as<float>();
  a.y = y->as<float>();
  a.n = a.w_len = n;
  auto fn = QM_PICK(cpu::layer_norm_rows);
  run_rows(rows, n, threads, [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return out;
}

Napi::Value HeadRmsNorm(const Napi::CallbackInfo& info) {
  Tensor* x = checked_x(info, "headRmsNorm");
  require_rank(x, 3, "x");
  const int64_t T = x->shape()[0], H = x->shape()[1], D = x->shape()[2];
  cpu::NormArgs a{};
  a.wtype = DType::F32;
  int64_t group = D;  // elements normalised together
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    Tensor* w = arg_tensor(info, 1, "weight");
    const int64_t wn = w->numel();
    if (w->shape().size() == 1 && wn == H * D && H > 1) group = H * D;  // OLMoE: whole projection row
    a.w = opt_weight(info, 1, "weight", group, &a.wtype);
  }
  Napi::Object opts = arg_object(info, 2, "options", true);
  a.eps = checked_eps(opts, 1e-6);
  a.unit_offset = opt_bool(opts, "addUnitOffset", false);
  const int threads = opt_threads(opts);
  Tensor* y = nullptr;
  Napi::Object out = output_like(info.Env(), opts, x, &y);
  a.x = x->as<float>();
  a.y = y->as<float>();
  a.n = a.w_len = group;
  const int64_t rows = T * H * D / group;
  auto fn = QM_PICK(cpu::rms_norm_rows);
  run_rows(rows, group, threads, [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return out;
}

// ---- RoPE -------------------------------------------------------------------------------------

struct RopeScaling {
  int type = 0;  // 0 none, 1 linear, 2 yarn
  double factor = 1, orig_ctx = 0, beta_fast = 32, beta_slow = 1, ext_factor = 1, attn_factor = 1;
};

RopeScaling read_scaling(const Napi::Object& opts) {
  RopeScaling s;
  if (!opts.Has("scaling")) return s;
  Napi::Value v = opts.Get("scaling");
  if (v.IsUndefined() || v.IsNull()) return s;
  if (!v.IsObject()) fail("E_ARGUMENT", "option 'scaling' must be an object { type, ... }");
  Napi::Object o = v.As<Napi::Object>();
  const std::string type = opt_string(o, "type", "none");
  auto positive = [&](const char* key, double def) {
    double d = opt_number(o, key, def);
    if (!(d > 0) || !std::isfinite(d)) fail("E_ARGUMENT", std::string("scaling.") + key + " must be a finite number > 0");
    return d;
  };
  if (type == "none") return s;
  if (type == "linear") {
    s.type = 1;
    s.factor = positive("factor", 1);
    s.attn_factor = opt_number(o, "attnFactor", 1);
    return s;
  }
  if (type == "yarn") {
    s.type = 2;
    s.factor = positive("factor", 1);
    if (!o.Has("originalContextLength")) fail("E_ARGUMENT", "scaling.originalContextLength is required for yarn");
    s.orig_ctx = positive("originalContextLength", 1);
    s.beta_fast = positive("betaFast", 32);
    s.beta_slow = positive("betaSlow", 1);
    s.ext_factor = opt_number(o, "extFactor", 1);
    s.attn_factor = opt_number(o, "attnFactor", 1);
    if (!std::isfinite(s.ext_factor) || !std::isfinite(s.attn_factor))
      fail("E_ARGUMENT", "scaling.extFactor and scaling.attnFactor must be finite");
    return s;
  }
  fail("E_ARGUMENT", "scaling.type must be 'none', 'linear' or 'yarn', got '" + type + "'");
}

// cos/sin table [T, rope_dim/2, 2] in double precision (angles up to ~1e5 rad lose too much in
// float). YaRN follows ggml's rope_yarn / ggml_rope_yarn_corr_dims exactly:
//   theta_extrap = p · base^(-2i/n) / freq_factor[i];  theta_interp = theta_extrap / factor
//   ramp = 1 − clamp((i − low) / max(0.001, high − low), 0, 1),  mix = ramp · ext_factor
//   theta = theta_interp·(1 − mix) + theta_extrap·mix;  mscale = attn_factor·(1 + 0.1·ln(factor))
//   low = max(0, floor(corr(beta_fast))), high = min(n − 1, ceil(corr(beta_slow))),
//   corr(b) = n·ln(orig_ctx / (2π·b)) / (2·ln(base)).
std::vector<float> rope_table(const std::vector<int32_t>& pos, int64_t n, double base, const RopeScaling& s,
                              const std::vector<float>& ff) {
  const int64_t half = n / 2;
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    inv[i] = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(n));
    if (!ff.empty()) inv[i] /= ff[i];
  }
  double low = 0, high = 0, mscale = s.attn_factor;
  const double freq_scale = 1.0 / s.factor;
  if (s.type == 2) {
    auto corr = [&](double b) { return n * std::log(s.orig_ctx / (b * 2 * M_PI)) / (2 * std::log(base)); };
    low = std::max(0.0, std::floor(corr(s.beta_fast)));
    high = std::min(static_cast<double>(n - 1), std::ceil(corr(s.beta_slow)));
    if (s.ext_factor != 0) mscale *= 1.0 + 0.1 * std::log(1.0 / freq_scale);
  }
  std::vector<float> cs(pos.size() * half * 2);
  for (size_t t = 0; t < pos.size(); ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double te = static_cast<double>(pos[t]) * inv[i];
      double th = te;
      if (s.type == 1) th = te * freq_scale;
      if (s.type == 2) {
        const double ti = te * freq_scale;
        th = ti;
        if (s.ext_factor != 0) {
          const double y = (static_cast<double>(i) - low) / std::max(0.001, high - low);
          const double mix = (1 - std::min(1.0, std::max(0.0, y))) * s.ext_factor;
          th = ti * (1 - mix) + te * mix;
        }
      }
      cs[(t * half + i) * 2] = static_cast<float>(std::cos(th) * mscale);
      cs[(t * half + i) * 2 + 1] = static_cast<float>(std::sin(th) * mscale);
    }
  }
  return cs;
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  Tensor* x = checked_x(info, "rope");
  require_rank(x, 3, "x");
  const int64_t T = x->shape()[0], H = x->shape()[1], D = x->shape()[2];
  std::vector<int32_t> pos = arg_i32_list(info, 1, "positions");
  if (static_cast<int64_t>(pos.size()) != T)
    fail("E_SHAPE", "rope: positions has " + std::to_string(pos.size()) + " entries, x " + x->describe() + " has T=" + std::to_string(T));
  Napi::Object opts = arg_object(info, 2, "options", true);
  const double theta = opt_number(opts, "theta", 10000);
  if (!(theta > 1) || !std::isfinite(theta)) fail("E_ARGUMENT", "option 'theta' must be a finite number > 1");
  const int64_t rope_dim = opt_int(opts, "ropeDim", static_cast<int>(std::min<int64_t>(D, 1 << 30)), 0, 1 << 30);
  if (rope_dim % 2 != 0 || rope_dim > D)
    fail("E_ARGUMENT", "option 'ropeDim' must be even and <= D=" + std::to_string(D) + ", got " + std::to_string(rope_dim));
  const std::string style = opt_string(opts, "style", "neox");
  if (style != "neox" && style != "adjacent") fail("E_ARGUMENT", "option 'style' must be 'neox' or 'adjacent'");
  RopeScaling sc = read_scaling(opts);
  std::vector<float> ff;
  if (opts.Has("freqFactors") && !opts.Get("freqFactors").IsUndefined() && !opts.Get("freqFactors").IsNull()) {
    Napi::Value v = opts.Get("freqFactors");
    if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
      auto a = v.As<Napi::Float32Array>();
      ff.assign(a.Data(), a.Data() + a.ElementLength());
    } else if (Tensor::IsTensor(info.Env(), v)) {
      Tensor* t = opt_tensor(opts, "freqFactors");
      require_cpu(t, "freqFactors");
      require_dtype(t, DType::F32, "freqFactors");
      ff.assign(t->as<float>(), t->as<float>() + t->numel());
    } else {
      fail("E_ARGUMENT", "option 'freqFactors' must be a Float32Array or an f32 Tensor");
    }
    if (static_cast<int64_t>(ff.size()) != rope_dim / 2)
      fail("E_SHAPE", "option 'freqFactors' must have ropeDim/2 = " + std::to_string(rope_dim / 2) + " entries");
  }
  const int threads = opt_threads(opts);
  Tensor* y = nullptr;
  Napi::Object out = output_like(info.Env(), opts, x, &y);
  if (T == 0 || H == 0) return out;
  std::vector<float> cs = rope_table(pos, rope_dim, theta, sc, ff);
  cpu::RopeArgs a{x->as<float>(), y->as<float>(), cs.data(), D, rope_dim, H, style == "neox"};
  auto fn = QM_PICK(cpu::rope_rows);
  run_rows(T * H, D, threads, [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return out;
}

}  // namespace

void register_norm_rope(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsNorm", Napi::Function::New<exported<RmsNorm>>(env, "rmsNorm"));
  exports.Set("layerNorm", Napi::Function::New<exported<LayerNorm>>(env, "layerNorm"));
  exports.Set("headRmsNorm", Napi::Function::New<exported<HeadRmsNorm>>(env, "headRmsNorm"));
  exports.Set("rope", Napi::Function::New<exported<Rope>>(env, "rope"));
}

}  // namespace qm
