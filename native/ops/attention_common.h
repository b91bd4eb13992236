// Shared by the 'attention' and 'sparse_attention' families: KV-cache tensor layout and checks,
// option parsing for the attention configuration, and the task runner over query-row groups.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../binding.h"
#include "../cpu/attention.h"
#include "../threadpool.h"
#include "dispatch.h"

namespace qm {

// The KV cache is a plain tensor f32|f16 [layers, maxSeqs, 2, kvHeads, capacity, headDim]:
// for one (layer, seq, k|v, kv head) the keys are contiguous rows of headDim.
struct CacheView {
  Tensor* t = nullptr;
  int64_t L = 0, S = 0, H = 0, C = 0, D = 0;
  DType dtype = DType::F32;
  size_t elem = 4;
  // kind 0 = K, 1 = V
  uint8_t* head(int64_t layer, int64_t seq, int kind, int64_t h) const {
    return t->data() + ((((layer * S + seq) * 2 + kind) * H + h) * C * D) * static_cast<int64_t>(elem);
  }
};

inline CacheView check_cache(Tensor* t, const char* what = "cache") {
  require_cpu(t, what);
  if (t->dtype() != DType::F32 && t->dtype() != DType::F16)
    fail("E_DTYPE", std::string(what) + " must be an f32 or f16 KV cache made by kvCacheCreate, got " + t->describe());
  const auto& s = t->shape();
  if (s.size() != 6 || s[2] != 2)
    fail("E_SHAPE", std::string(what) + " must be [layers, maxSeqs, 2, kvHeads, capacity, headDim] (kvCacheCreate), got " +
                        t->describe());
  CacheView c;
  c.t = t;
  c.L = s[0];
  c.S = s[1];
  c.H = s[3];
  c.C = s[4];
  c.D = s[5];
  c.dtype = t->dtype();
  c.elem = t->dtype() == DType::F16 ? 2 : 4;
  return c;
}

inline int64_t index_arg(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t n) {
  double x = arg_number(info, i, what);
  if (!(x >= 0 && x < static_cast<double>(n)) || x != std::floor(x))
    fail("E_ARGUMENT", std::string(what) + " must be an integer in [0, " + std::to_string(n) + "), got " + std::to_string(x));
  return static_cast<int64_t>(x);
}

// q-like tensor: f32 [T, H, D].
inline void check_qkv(const Tensor* t, const char* what) {
  require_cpu(t, what);
  require_dtype(t, DType::F32, what);
  require_rank(t, 3, what);
}

struct AttnOptions {
  cpu::AttnConfig cfg{};
  std::vector<float> sinks;  // [Hq] or empty
  int threads = 1;
};

inline AttnOptions read_attn_options(const Napi::Object& opts, int64_t D, int64_t Hq) {
  AttnOptions o;
  o.cfg.D = D;
  const double scale = opt_number(opts, "scale", 1.0 / std::sqrt(static_cast<double>(D)));
  if (!std::isfinite(scale)) fail("E_ARGUMENT", "option 'scale' must be finite");
  o.cfg.scale = static_cast<float>(scale);
  o.cfg.causal = opt_bool(opts, "causal", true);
  const double win = opt_number(opts, "slidingWindow", 0);
  if (!(win >= 0) || win != std::floor(win) || win > 9.0e15)
    fail("E_ARGUMENT", "option 'slidingWindow' must be a non-negative integer (0 = off)");
  o.cfg.window = static_cast<int64_t>(win);
  const double cap = opt_number(opts, "softcap", 0);
  if (!(cap >= 0) || !std::isfinite(cap)) fail("E_ARGUMENT", "option 'softcap' must be a finite number >= 0 (0 = off)");
  o.cfg.softcap = static_cast<float>(cap);
  o.cfg.pv_threshold = std::numeric_limits<float>::infinity();
  if (opts.Has("sinks") && !opts.Get("sinks").IsUndefined() && !opts.Get("sinks").IsNull()) {
    Napi::Value v = opts.Get("sinks");
    if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
      auto a = v.As<Napi::Float32Array>();
      o.sinks.assign(a.Data(), a.Data() + a.ElementLength());
    } else {
      Tensor* t = opt_tensor(opts, "sinks");
      require_cpu(t, "sinks");
      require_dtype(t, DType::F32, "sinks");
      o.sinks.assign(t->as<float>(), t->as<float>() + t->numel());
    }
    if (static_cast<int64_t>(o.sinks.size()) != Hq)
      fail("E_SHAPE", "option 'sinks' must have one logit per query head (" + std::to_string(Hq) + "), got " +
                          std::to_string(o.sinks.size()));
  }
  o.threads = opt_threads(opts);
  return o;
}

inline void check_heads(int64_t Hq, int64_t Hkv, const char* fn) {
  if (Hkv <= 0 || Hq <= 0 || Hq % Hkv != 0)
    fail("E_SHAPE", std::string(fn) + ": query heads (" + std::to_string(Hq) + ") must be a positive multiple of KV heads (" +
                        std::to_string(Hkv) + ")");
}

// A group of query rows reading one KV head: tokens [t0, t1) × query heads [h0, h1).
struct RowTask {
  int64_t kvh, h0, h1, t0, t1;
};

// Splits T tokens × Hq heads into tasks of ≤ kAttnMaxRows rows sharing a KV head, enough of them
// to keep `threads` busy; causal work grows with the token index, so later tiles come first.
inline std::vector<RowTask> plan_row_tasks(int64_t T, int64_t Hq, int64_t Hkv, int threads, int64_t max_tq = 1 << 30) {
  std::vector<RowTask> tasks;
  const int64_t G = Hq / Hkv;
  const int64_t hp = std::min<int64_t>(G, cpu::kAttnMaxRows);
  const int64_t nsub = (G + hp - 1) / hp;
  int64_t tq = std::max<int64_t>(1, cpu::kAttnMaxRows / hp);
  tq = std::min(tq, max_tq);
  const int64_t want = 4 * static_cast<int64_t>(threads);
  if (T > 0 && Hkv * nsub * ((T + tq - 1) / tq) < want) tq = std::max<int64_t>(1, (T * Hkv * nsub) / want);
  if (T == 0) return tasks;
  const int64_t ntiles = (T + tq - 1) / tq;
  for (int64_t tile = ntiles - 1; tile >= 0; --tile)
    for (int64_t kvh = 0; kvh < Hkv; ++kvh)
      for (int64_t s = 0; s < nsub; ++s)
        tasks.push_back({kvh, kvh * G + s * hp, std::min(kvh * G + G, kvh * G + (s + 1) * hp), tile * tq,
                         std::min(T, (tile + 1) * tq)});
  return tasks;
}

}  // namespace qm
