// Op family 'attention': dense flash-style attention (GQA, causal, sliding window, sinks,
// softcap) over plain K/V tensors or a preallocated KV cache, plus batched decode.
//   kvCacheCreate({ layers, maxSeqs, capacity, kvHeads, headDim, dtype: 'f32'|'f16' })
//       -> Tensor [layers, maxSeqs, 2, kvHeads, capacity, headDim] (zeroed)
//   kvCacheWrite(cache, layer, seq, pos, k f32 [T,Hkv,D], v f32 [T,Hkv,D], { threads })
//   kvCacheClear(cache, seq) (zeroes the sequence and frees its pages)   kvCacheCopy(cache, srcSeq, dstSeq, length)
//   attention(q f32 [T,Hq,D], cache, layer, seq, { startPos, scale, causal, slidingWindow, sinks,
//             softcap, threads, out }) -> f32 [T,Hq,D]
//   attentionDecodeBatch(q f32 [B,Hq,D], cache, layer, seqs, positions, { ...same }) -> [B,Hq,D]
//   attentionDense(q f32 [T,Hq,D], k f32|f16 [S,Hkv,D], v [S,Hkv,D], { startPos = S−T, ...same })
// Query t sits at position startPos + t; with causal it sees keys 0..startPos+t.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "../binding.h"
#include "../threadpool.h"
#include "attention_common.h"
#include "dispatch.h"
#include "i32_args.h"
#include "ops.h"

namespace qm {

namespace {

constexpr float kNoSink = -std::numeric_limits<float>::infinity();

Napi::Value KvCacheCreate(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, 0, "options", false);
  auto dim = [&](const char* key) {
    if (!o.Has(key) || o.Get(key).IsUndefined()) fail("E_ARGUMENT", std::string("kvCacheCreate: option '") + key + "' is required");
    return static_cast<int64_t>(opt_int(o, key, 1, 1, 1 << 30));
  };
  const int64_t L = dim("layers"), S = dim("maxSeqs"), C = dim("capacity"), H = dim("kvHeads"), D = dim("headDim");
  const std::string dt = opt_string(o, "dtype", "f16");
  if (dt != "f32" && dt != "f16") fail("E_DTYPE", "kvCacheCreate: dtype must be 'f32' or 'f16', got '" + dt + "'");
  const DType dtype = dt == "f32" ? DType::F32 : DType::F16;
  std::vector<int64_t> shape{L, S, 2, H, C, D};
  const double bytes = static_cast<double>(L) * S * 2 * H * C * D * (dtype == DType::F32 ? 4 : 2);
  if (bytes > 1.0e15) fail("E_OUT_OF_MEMORY", "kvCacheCreate: " + shape_str(shape) + " is too large");
  return Tensor::New(info.Env(), dtype, shape, alloc_cpu_storage(tensor_bytes(dtype, shape), true));
}

Napi::Value KvCacheWrite(const Napi::CallbackInfo& info) {
  Tensor* ct = arg_tensor(info, 0, "cache");
  CacheView c = check_cache(ct);
  const int64_t layer = index_arg(info, 1, "layer", c.L);
  const int64_t seq = index_arg(info, 2, "seq", c.S);
  const double posd = arg_number(info, 3, "pos");
  if (!(posd >= 0) || posd != std::floor(posd)) fail("E_ARGUMENT", "kvCacheWrite: pos must be a non-negative integer");
  Tensor* k = arg_tensor(info, 4, "k");
  Tensor* v = arg_tensor(info, 5, "v");
  check_qkv(k, "k");
  check_qkv(v, "v");
  Napi::Object opts = arg_object(info, 6, "options", true);
  const int threads = opt_threads(opts);
  if (k->shape() != v->shape()) fail("E_SHAPE", "kvCacheWrite: k " + k->describe() + " and v " + v->describe() + " differ");
  const int64_t T = k->shape()[0];
  if (k->shape()[1] != c.H || k->shape()[2] != c.D)
    fail("E_SHAPE", "kvCacheWrite: k must be [T, " + std::to_string(c.H) + ", " + std::to_string(c.D) + "] for this cache, got " +
                        k->describe());
  if (posd + static_cast<double>(T) > static_cast<double>(c.C))
    fail("E_CONTEXT_OVERFLOW", "kvCacheWrite: positions " + std::to_string(static_cast<int64_t>(posd)) + ".." +
                                   std::to_string(static_cast<int64_t>(posd) + T - 1) + " exceed the cache capacity " +
                                   std::to_string(c.C) + " (create the cache with a larger capacity)");
  const int64_t pos = static_cast<int64_t>(posd);
  auto conv = QM_PICK(cpu::f32_to_f16_row);
  // task = (k|v, head): T rows of D each
  parallel_for(2 * c.H, threads, [&](int64_t task, int) {
    const int kind = static_cast<int>(task / c.H);
    const int64_t h = task % c.H;
    const float* src = (kind == 0 ? k : v)->as<float>();
    uint8_t* dst = c.head(layer, seq, kind, h);
    for (int64_t t = 0; t < T; ++t) {
      const float* s = src + (t * c.H + h) * c.D;
      if (c.dtype == DType::F32) std::memcpy(reinterpret_cast<float*>(dst) + (pos + t) * c.D, s, c.D * sizeof(float));
      else conv(s, reinterpret_cast<uint16_t*>(dst) + (pos + t) * c.D, c.D);
    }
  });
  return info.Env().Undefined();
}

Napi::Value KvCacheClear(const Napi::CallbackInfo& info) {
  Tensor* ct = arg_tensor(info, 0, "cache");
  CacheView c = check_cache(ct);
  const int64_t seq = index_arg(info, 1, "seq", c.S);
  const size_t bytes = static_cast<size_t>(2 * c.H * c.C * c.D) * c.elem;
  // (pages a long sequence had filled go back to the system: a freed slot costs no memory)
  for (int64_t l = 0; l < c.L; ++l) zero_and_release(*ct->storage(), reinterpret_cast<uint8_t*>(c.head(l, seq, 0, 0)), bytes);
  return info.Env().Undefined();
}

Napi::Value KvCacheCopy(const Napi::CallbackInfo& info) {
  Tensor* ct = arg_tensor(info, 0, "cache");
  CacheView c = check_cache(ct);
  const int64_t src = index_arg(info, 1, "srcSeq", c.S);
  const int64_t dst = index_arg(info, 2, "dstSeq", c.S);
  const double n = arg_number(info, 3, "length");
  if (!(n >= 0) || n != std::floor(n)) fail("E_ARGUMENT", "kvCacheCopy: length must be a non-negative integer");
  if (n > static_cast<double>(c.C))
    fail("E_CONTEXT_OVERFLOW", "kvCacheCopy: length " + std::to_string(static_cast<int64_t>(n)) + " exceeds the capacity " +
                                   std::to_string(c.C));
  if (src == dst) return info.Env().Undefined();
  const size_t bytes = static_cast<size_t>(n) * c.D * c.elem;
  for (int64_t l = 0; l < c.L; ++l)
    for (int kind = 0; kind < 2; ++kind)
      for (int64_t h = 0; h < c.H; ++h) std::memcpy(c.head(l, dst, kind, h), c.head(l, src, kind, h), bytes);
  return info.Env().Undefined();
}

// Runs the planned row tasks; kv_for(kvh) gives the KV view of a KV head.
template <class KvFor>
void run_prefill(const Tensor* q, Tensor* y, int64_t start_pos, const AttnOptions& o, int64_t Hkv, KvFor kv_for) {
  const int64_t T = q->shape()[0], Hq = q->shape()[1], D = q->shape()[2];
  auto fn = QM_PICK(cpu::attn_rows);
  std::vector<RowTask> tasks = plan_row_tasks(T, Hq, Hkv, o.threads);
  const float* qd = q->as<float>();
  float* yd = y->as<float>();
  parallel_for(static_cast<int64_t>(tasks.size()), o.threads, [&](int64_t ti, int) {
    const RowTask& tk = tasks[ti];
    cpu::AttnRow rows[cpu::kAttnMaxRows];
    int R = 0;
    for (int64_t t = tk.t0; t < tk.t1; ++t)
      for (int64_t h = tk.h0; h < tk.h1; ++h) {
        rows[R].q = qd + (t * Hq + h) * D;
        rows[R].o = yd + (t * Hq + h) * D;
        rows[R].pos = start_pos + t;
        rows[R].sink = o.sinks.empty() ? kNoSink : o.sinks[h];
        ++R;
      }
    cpu::AttnKV kv = kv_for(tk.kvh);
    fn(o.cfg, kv, rows, R, nullptr, 0, 0, nullptr);
  });
}

Napi::Value AttentionDense(const Napi::CallbackInfo& info) {
  Tensor* q = arg_tensor(info, 0, "q");
  Tensor* k = arg_tensor(info, 1, "k");
  Tensor* v = arg_tensor(info, 2, "v");
  check_qkv(q, "q");
  for (Tensor* t : {k, v}) {
    const char* what = t == k ? "k" : "v";
    require_cpu(t, what);
    if (t->dtype() != DType::F32 && t->dtype() != DType::F16) fail("E_DTYPE", std::string(what) + " must be f32 or f16, got " + t->describe());
    require_rank(t, 3, what);
  }
  if (k->shape() != v->shape() || k->dtype() != v->dtype())
    fail("E_SHAPE", "attentionDense: k " + k->describe() + " and v " + v->describe() + " must match");
  const int64_t T = q->shape()[0], Hq = q->shape()[1], D = q->shape()[2];
  const int64_t S = k->shape()[0], Hkv = k->shape()[1];
  if (k->shape()[2] != D) fail("E_SHAPE", "attentionDense: q " + q->describe() + " and k " + k->describe() + " differ in head dim");
  if (D == 0) fail("E_SHAPE", "attentionDense: head dim must be > 0");
  check_heads(Hq, Hkv, "attentionDense");
  Napi::Object opts = arg_object(info, 3, "options", true);
  AttnOptions o = read_attn_options(opts, D, Hq);
  const double sp = opt_number(opts, "startPos", static_cast<double>(S - T));
  if (!(sp >= 0) || sp != std::floor(sp) || sp > 9.0e15)
    fail("E_ARGUMENT", "attentionDense: startPos must be a non-negative integer (default S − T; give it when T > S)");
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, q->shape(), &y);
  if (y == q || y == k || y == v) fail("E_ARGUMENT", "attentionDense: out must not alias an input");
  const DType kdt = k->dtype();
  const size_t es = kdt == DType::F16 ? 2 : 4;
  run_prefill(q, y, static_cast<int64_t>(sp), o, Hkv, [&](int64_t kvh) {
    return cpu::AttnKV{k->data() + kvh * D * es, v->data() + kvh * D * es, kdt, Hkv * D, S};
  });
  return out;
}

void check_q_against_cache(const Tensor* q, const CacheView& c, const char* fn) {
  check_qkv(q, "q");
  if (q->shape()[2] != c.D)
    fail("E_SHAPE", std::string(fn) + ": q " + q->describe() + " head dim differs from the cache's " + std::to_string(c.D));
  check_heads(q->shape()[1], c.H, fn);
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Tensor* q = arg_tensor(info, 0, "q");
  Tensor* ct = arg_tensor(info, 1, "cache");
  CacheView c = check_cache(ct);
  check_q_against_cache(q, c, "attention");
  const int64_t layer = index_arg(info, 2, "layer", c.L);
  const int64_t seq = index_arg(info, 3, "seq", c.S);
  Napi::Object opts = arg_object(info, 4, "options", true);
  const int64_t T = q->shape()[0], Hq = q->shape()[1];
  AttnOptions o = read_attn_options(opts, c.D, Hq);
  const double sp = opt_number(opts, "startPos", 0);
  if (!(sp >= 0) || sp != std::floor(sp)) fail("E_ARGUMENT", "attention: startPos must be a non-negative integer");
  if (sp + static_cast<double>(T) > static_cast<double>(c.C))
    fail("E_CONTEXT_OVERFLOW", "attention: positions up to " + std::to_string(static_cast<int64_t>(sp) + T - 1) +
                                   " exceed the cache capacity " + std::to_string(c.C));
  const int64_t start = static_cast<int64_t>(sp);
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, q->shape(), &y);
  if (y == q || y == ct) fail("E_ARGUMENT", "attention: out must not alias an input");
  const int64_t n_keys = start + T;  // keys 0..startPos+T-1 are in the cache
  auto kv_for = [&](int64_t kvh) {
    return cpu::AttnKV{c.head(layer, seq, 0, kvh), c.head(layer, seq, 1, kvh), c.dtype, c.D, n_keys};
  };
  if (!opts.Has("kvBlocks") || opts.Get("kvBlocks").IsUndefined() || opts.Get("kvBlocks").IsNull()) {
    run_prefill(q, y, start, o, c.H, kv_for);
    return out;
  }
  // Block-sparse read (decode with selectDecodeBlocks): head h reads only its listed key blocks.
  Napi::Value kbv = opts.Get("kvBlocks");
  if (!kbv.IsObject()) fail("E_ARGUMENT", "option 'kvBlocks' must be { blockK, blocks: Int32Array[] }");
  Napi::Object kb = kbv.As<Napi::Object>();
  const int64_t BK = opt_int(kb, "blockK", 64, 1, 1 << 16);
  const int64_t nkb = (n_keys + BK - 1) / BK;
  Napi::Value lv = kb.Get("blocks");
  if (!lv.IsArray() || lv.As<Napi::Array>().Length() != static_cast<uint32_t>(Hq))
    fail("E_ARGUMENT", "kvBlocks.blocks must be an array of " + std::to_string(Hq) + " Int32Arrays (one per query head)");
  std::vector<std::vector<int32_t>> lists(Hq);
  for (int64_t h = 0; h < Hq; ++h) {
    lists[h] = read_i32_list(lv.As<Napi::Array>().Get(static_cast<uint32_t>(h)), "kvBlocks.blocks[" + std::to_string(h) + "]");
    for (size_t i = 0; i < lists[h].size(); ++i)
      if (lists[h][i] < 0 || lists[h][i] >= nkb || (i > 0 && lists[h][i] <= lists[h][i - 1]))
        fail("E_ARGUMENT", "kvBlocks.blocks[" + std::to_string(h) + "] must be ascending block ids in [0, " + std::to_string(nkb) + ")");
  }
  auto fn = QM_PICK(cpu::attn_rows);
  const int64_t D = c.D, G = Hq / c.H;
  const int64_t tq = cpu::kAttnMaxRows, ntiles = (T + tq - 1) / tq;
  const float* qd = q->as<float>();
  float* yd = y->as<float>();
  parallel_for(ntiles * Hq, o.threads, [&](int64_t task, int) {
    const int64_t h = task % Hq, t0 = (task / Hq) * tq, t1 = std::min(T, t0 + tq);
    cpu::AttnRow rows[cpu::kAttnMaxRows];
    int R = 0;
    for (int64_t t = t0; t < t1; ++t, ++R) {
      rows[R].q = qd + (t * Hq + h) * D;
      rows[R].o = yd + (t * Hq + h) * D;
      rows[R].pos = start + t;
      rows[R].sink = o.sinks.empty() ? kNoSink : o.sinks[h];
    }
    fn(o.cfg, kv_for(h / G), rows, R, lists[h].data(), static_cast<int>(lists[h].size()), BK, nullptr);
  });
  return out;
}

Napi::Value AttentionDecodeBatch(const Napi::CallbackInfo& info) {
  Tensor* q = arg_tensor(info, 0, "q");
  Tensor* ct = arg_tensor(info, 1, "cache");
  CacheView c = check_cache(ct);
  check_q_against_cache(q, c, "attentionDecodeBatch");
  const int64_t layer = index_arg(info, 2, "layer", c.L);
  std::vector<int32_t> seqs = arg_i32_list(info, 3, "seqs");
  std::vector<int32_t> pos = arg_i32_list(info, 4, "positions");
  const int64_t B = q->shape()[0], Hq = q->shape()[1], D = c.D;
  if (static_cast<int64_t>(seqs.size()) != B || static_cast<int64_t>(pos.size()) != B)
    fail("E_SHAPE", "attentionDecodeBatch: seqs and positions need one entry per row of q (" + std::to_string(B) + ")");
  for (int64_t b = 0; b < B; ++b) {
    if (seqs[b] < 0 || seqs[b] >= c.S)
      fail("E_ARGUMENT", "attentionDecodeBatch: seqs[" + std::to_string(b) + "] = " + std::to_string(seqs[b]) +
                             " is outside [0, " + std::to_string(c.S) + ")");
    if (pos[b] < 0) fail("E_ARGUMENT", "attentionDecodeBatch: positions[" + std::to_string(b) + "] is negative");
    if (pos[b] >= c.C)
      fail("E_CONTEXT_OVERFLOW", "attentionDecodeBatch: positions[" + std::to_string(b) + "] = " + std::to_string(pos[b]) +
                                     " is beyond the cache capacity " + std::to_string(c.C));
  }
  Napi::Object opts = arg_object(info, 5, "options", true);
  AttnOptions o = read_attn_options(opts, D, Hq);
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, q->shape(), &y);
  if (y == q || y == ct) fail("E_ARGUMENT", "attentionDecodeBatch: out must not alias an input");
  const int64_t Hkv = c.H, G = Hq / Hkv;
  const int64_t hp = std::min<int64_t>(G, cpu::kAttnMaxRows), nsub = (G + hp - 1) / hp;
  auto fn = QM_PICK(cpu::attn_rows);
  const float* qd = q->as<float>();
  float* yd = y->as<float>();
  parallel_for(B * Hkv * nsub, o.threads, [&](int64_t task, int) {
    const int64_t b = task / (Hkv * nsub), kvh = (task / nsub) % Hkv, s = task % nsub;
    const int64_t h0 = kvh * G + s * hp, h1 = std::min(kvh * G + G, h0 + hp);
    cpu::AttnRow rows[cpu::kAttnMaxRows];
    int R = 0;
    for (int64_t h = h0; h < h1; ++h) {
      rows[R].q = qd + (b * Hq + h) * D;
      rows[R].o = yd + (b * Hq + h) * D;
      rows[R].pos = pos[b];
      rows[R].sink = o.sinks.empty() ? kNoSink : o.sinks[h];
      ++R;
    }
    cpu::AttnKV kv{c.head(layer, seqs[b], 0, kvh), c.head(layer, seqs[b], 1, kvh), c.dtype, c.D,
                   static_cast<int64_t>(pos[b]) + 1};
    fn(o.cfg, kv, rows, R, nullptr, 0, 0, nullptr);
  });
  return out;
}

// fmaPeakGflops({ threads, iterations }) -> measured f32 FMA throughput of the active ISA (GFLOP/s,
// all threads together): the compute floor for the attention benchmark.
Napi::Value FmaPeakGflops(const Napi::CallbackInfo& info) {
  Napi::Object opts = arg_object(info, 0, "options", true);
  const int threads = opt_threads(opts);
  const int64_t iters = opt_int(opts, "iterations", 20000000, 1000, 1 << 30);
  const bool simd = active_isa() != Isa::Scalar;
  auto fn = QM_PICK(cpu::fma_peak);
  const int n = effective_threads(threads, threads);
  std::vector<float> sink(static_cast<size_t>(n), 0.0f);
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(n, threads, [&](int64_t task, int) { sink[task] = fn(iters); });
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per = simd ? cpu::kFmaPeakFlopsPerIterAvx2 : cpu::kFmaPeakFlopsPerIterScalar;
  float keep = 0;
  for (float v : sink) keep += v;
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("gflops", Napi::Number::New(info.Env(), per * static_cast<double>(iters) * n / sec / 1e9));
  r.Set("threads", Napi::Number::New(info.Env(), n));
  r.Set("checksum", Napi::Number::New(info.Env(), keep));
  return r;
}

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("kvCacheCreate", Napi::Function::New<exported<KvCacheCreate>>(env, "kvCacheCreate"));
  exports.Set("kvCacheWrite", Napi::Function::New<exported<KvCacheWrite>>(env, "kvCacheWrite"));
  exports.Set("kvCacheClear", Napi::Function::New<exported<KvCacheClear>>(env, "kvCacheClear"));
  exports.Set("kvCacheCopy", Napi::Function::New<exported<KvCacheCopy>>(env, "kvCacheCopy"));
  exports.Set("attention", Napi::Function::New<exported<Attention>>(env, "attention"));
  exports.Set("attentionDecodeBatch", Napi::Function::New<exported<AttentionDecodeBatch>>(env, "attentionDecodeBatch"));
  exports.Set("attentionDense", Napi::Function::New<exported<AttentionDense>>(env, "attentionDense"));
  exports.Set("fmaPeakGflops", Napi::Function::New<exported<FmaPeakGflops>>(env, "fmaPeakGflops"));
}

}  // namespace qm
