// Op family 'sparse_attention': SpargeAttn-style block-sparse attention (arXiv 2502.18137).
//   sparseAttention(q f32 [T,Hq,D], k f32 [T,Hkv,D], v f32 [T,Hkv,D], { blockQ=128, blockK=64,
//       simThreshold θ=0.3, cdfThreshold τ=0.95 | topk, pvThreshold λ=20, keepSinkBlock=true,
//       keepDiagonal=true, localWindow=64, causal=true, scale, int8Qk=true, blockMask?, threads, out })
//       -> { out: f32 [T,Hq,D], stats: { blocksTotal, blocksSkippedStage1, blocksSkippedStage2, sparsity } }
//   predictBlockMask(q, k, opts) -> Uint8Array [Hq, nQb, nKb] (1 = compute)
//   selectDecodeBlocks(q f32 [Hq,D] | [1,Hq,D], k f32 [S,Hkv,D] | cache, { blockK=64, cdfThreshold=0.9 |
//       topk, keepSinkBlock=true, keepLastBlock=true, scale, layer, seq, length }) -> Int32Array[Hq]
// Stage 1 (per head): mean-pool Q blocks and K blocks; a block whose rows are not self-similar
// (mean pairwise cosine ≤ θ) is always computed; the others are chosen per Q block from the
// softmax of pooled scores until cumulative mass τ (or the top fraction `topk`). Stage 2 (in the
// kernel): a row skips a K block whose max score is more than λ below its running max.
// INT8 Q·K: Q per (head, Q block) and K − mean_seq(K) per (KV head, K block), one scale each.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../binding.h"
#include "../cpu/sparse_attention.h"
#include "../fp16.h"
#include "../threadpool.h"
#include "attention_common.h"
#include "dispatch.h"
#include "ops.h"

namespace qm {

namespace {

struct SparseOpts {
  int64_t BQ = 128, BK = 64;
  float sim = 0.3f, cdf = 0.95f, topk = 0, pv = 20;
  bool sink = true, diag = true, causal = true, int8 = true;
  int64_t local = 64;
  float scale = 0;
  int threads = 1;
  const uint8_t* user_mask = nullptr;
  size_t user_mask_len = 0;
};

SparseOpts read_sparse_opts(const Napi::Object& o, int64_t D) {
  SparseOpts s;
  s.BQ = opt_int(o, "blockQ", 128, 1, 1 << 16);
  s.BK = opt_int(o, "blockK", 64, 1, 1 << 16);
  auto num = [&](const char* key, double def, double lo, double hi) {
    const double v = opt_number(o, key, def);
    if (!(v >= lo && v <= hi))
      fail("E_ARGUMENT", std::string("option '") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<float>(v);
  };
  s.sim = num("simThreshold", 0.3, -1, 1);
  s.cdf = num("cdfThreshold", 0.95, 0, 1);
  s.topk = num("topk", 0, 0, 1);
  s.pv = num("pvThreshold", 20, 0, std::numeric_limits<double>::infinity());
  s.sink = opt_bool(o, "keepSinkBlock", true);
  s.diag = opt_bool(o, "keepDiagonal", true);
  s.local = opt_int(o, "localWindow", 64, 0, 1 << 30);
  s.causal = opt_bool(o, "causal", true);
  s.int8 = opt_bool(o, "int8Qk", true);
  const double sc = opt_number(o, "scale", 1.0 / std::sqrt(static_cast<double>(D)));
  if (!std::isfinite(sc)) fail("E_ARGUMENT", "option 'scale' must be finite");
  s.scale = static_cast<float>(sc);
  s.threads = opt_threads(o);
  if (o.Has("blockMask") && !o.Get("blockMask").IsUndefined() && !o.Get("blockMask").IsNull()) {
    Napi::Value v = o.Get("blockMask");
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      fail("E_ARGUMENT", "option 'blockMask' must be a Uint8Array [Hq, nQb, nKb]");
    auto a = v.As<Napi::Uint8Array>();
    s.user_mask = a.Data();
    s.user_mask_len = a.ElementLength();
  }
  return s;
}

struct Problem {
  Tensor *q, *k, *v;
  int64_t T, Hq, Hkv, D, G, nqb, nkb;
};

Problem check_problem(const Napi::CallbackInfo& info, bool need_v, const char* fn) {
  Problem p{};
  p.q = arg_tensor(info, 0, "q");
  p.k = arg_tensor(info, 1, "k");
  check_qkv(p.q, "q");
  check_qkv(p.k, "k");
  if (need_v) {
    p.v = arg_tensor(info, 2, "v");
    check_qkv(p.v, "v");
    if (p.v->shape() != p.k->shape()) fail("E_SHAPE", std::string(fn) + ": k " + p.k->describe() + " and v " + p.v->describe() + " differ");
  }
  p.T = p.q->shape()[0];
  p.Hq = p.q->shape()[1];
  p.D = p.q->shape()[2];
  p.Hkv = p.k->shape()[1];
  if (p.k->shape()[0] != p.T)
    fail("E_SHAPE", std::string(fn) + ": q " + p.q->describe() + " and k " + p.k->describe() +
                        " must have the same number of tokens (self-attention prefill)");
  if (p.k->shape()[2] != p.D || p.D == 0) fail("E_SHAPE", std::string(fn) + ": q and k head dims differ (or are 0)");
  check_heads(p.Hq, p.Hkv, fn);
  p.G = p.Hq / p.Hkv;
  return p;
}

// Stage 1 for every head → mask [Hq][nqb][nkb] (also honours a user mask).
std::vector<uint8_t> stage1(Problem& p, const SparseOpts& s) {
  p.nqb = (p.T + s.BQ - 1) / s.BQ;
  p.nkb = (p.T + s.BK - 1) / s.BK;
  const size_t per_head = static_cast<size_t>(p.nqb * p.nkb);
  std::vector<uint8_t> mask(per_head * p.Hq, 0);
  cpu::BlockSelect bs{p.nqb, p.nkb, s.BQ, s.BK, p.T, s.causal, s.scale, s.cdf, s.topk, s.sink, s.diag, s.local};
  if (s.user_mask) {
    if (s.user_mask_len != mask.size())
      fail("E_SHAPE", "option 'blockMask' must have Hq·nQb·nKb = " + std::to_string(mask.size()) + " entries, got " +
                          std::to_string(s.user_mask_len));
    for (int64_t h = 0; h < p.Hq; ++h)
      for (int64_t bq = 0; bq < p.nqb; ++bq)
        for (int64_t bk = 0; bk < p.nkb; ++bk) {
          const size_t i = h * per_head + bq * p.nkb + bk;
          mask[i] = s.user_mask[i] && cpu::block_visible(bs, bq, bk) ? 1 : 0;
        }
    return mask;
  }
  if (p.T == 0) return mask;
  std::vector<float> pk(static_cast<size_t>(p.Hkv * p.nkb * p.D)), pq(static_cast<size_t>(p.Hq * p.nqb * p.D));
  std::vector<uint8_t> sk(p.Hkv * p.nkb), sq(p.Hq * p.nqb);
  const float* qd = p.q->as<float>();
  const float* kd = p.k->as<float>();
  parallel_for(p.Hkv + p.Hq, s.threads, [&](int64_t t, int) {
    if (t < p.Hkv)
      cpu::block_pool_sim(kd + t * p.D, p.Hkv * p.D, p.T, p.D, s.BK, s.sim, pk.data() + t * p.nkb * p.D, sk.data() + t * p.nkb);
    else {
      const int64_t h = t - p.Hkv;
      cpu::block_pool_sim(qd + h * p.D, p.Hq * p.D, p.T, p.D, s.BQ, s.sim, pq.data() + h * p.nqb * p.D, sq.data() + h * p.nqb);
    }
  });
  parallel_for(p.Hq, s.threads, [&](int64_t h, int) {
    const int64_t kh = h / p.G;
    cpu::select_blocks(bs, pq.data() + h * p.nqb * p.D, sq.data() + h * p.nqb, pk.data() + kh * p.nkb * p.D,
                       sk.data() + kh * p.nkb, p.D, mask.data() + h * per_head);
  });
  return mask;
}

Napi::Value PredictBlockMask(const Napi::CallbackInfo& info) {
  Problem p = check_problem(info, false, "predictBlockMask");
  SparseOpts s = read_sparse_opts(arg_object(info, 2, "options", true), p.D);
  std::vector<uint8_t> mask = stage1(p, s);
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), mask.size());
  if (!mask.empty()) std::memcpy(out.Data(), mask.data(), mask.size());
  return out;
}

Napi::Value SparseAttention(const Napi::CallbackInfo& info) {
  Problem p = check_problem(info, true, "sparseAttention");
  Napi::Object opts = arg_object(info, 3, "options", true);
  SparseOpts s = read_sparse_opts(opts, p.D);
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, p.q->shape(), &y);
  if (y == p.q || y == p.k || y == p.v) fail("E_ARGUMENT", "sparseAttention: out must not alias an input");
  std::vector<uint8_t> mask = stage1(p, s);
  const int64_t T = p.T, Hq = p.Hq, Hkv = p.Hkv, D = p.D, nqb = p.nqb, nkb = p.nkb;
  const float* qd = p.q->as<float>();
  const float* kd = p.k->as<float>();
  const float* vd = p.v->as<float>();
  float* yd = y->as<float>();

  // INT8 Q and smoothed K, per-block scales.
  const int64_t D8 = (D + 31) / 32 * 32;
  std::vector<int8_t> q8, k8;
  std::vector<float> qs, ks, kmean;
  if (s.int8 && T > 0) {
    q8.resize(static_cast<size_t>(Hq * T * D8));
    k8.resize(static_cast<size_t>(Hkv * T * D8));
    qs.resize(Hq * nqb);
    ks.resize(Hkv * nkb);
    kmean.resize(Hkv * D);
    parallel_for(Hkv + Hq, s.threads, [&](int64_t t, int) {
      if (t < Hkv) {
        std::vector<double> m(D, 0.0);
        for (int64_t j = 0; j < T; ++j)
          for (int64_t d = 0; d < D; ++d) m[d] += kd[(j * Hkv + t) * D + d];
        for (int64_t d = 0; d < D; ++d) kmean[t * D + d] = static_cast<float>(m[d] / static_cast<double>(T));
        cpu::quantize_blocks_i8(kd + t * D, Hkv * D, T, D, D8, s.BK, kmean.data() + t * D, k8.data() + t * T * D8, ks.data() + t * nkb);
      } else {
        const int64_t h = t - Hkv;
        cpu::quantize_blocks_i8(qd + h * D, Hq * D, T, D, D8, s.BQ, nullptr, q8.data() + h * T * D8, qs.data() + h * nqb);
      }
    });
  }

  // Tasks: (head, Q block, chunk of ≤ kAttnMaxRows rows), heaviest (last) Q blocks first.
  const int64_t chunks = (s.BQ + cpu::kAttnMaxRows - 1) / cpu::kAttnMaxRows;
  const int64_t ntasks = Hq * nqb * chunks;
  const int nthr = std::max(1, effective_threads(ntasks, s.threads));
  std::vector<cpu::AttnStats> tstats(static_cast<size_t>(std::max(nthr, s.threads)));
  cpu::AttnConfig cfg{D, s.scale, 0.0f, s.causal, 0, s.pv};
  auto fn = QM_PICK(cpu::attn_rows);
  const size_t per_head = static_cast<size_t>(nqb * nkb);
  parallel_for(ntasks, s.threads, [&](int64_t task, int thread) {
    const int64_t bq = nqb - 1 - task / (Hq * chunks);
    const int64_t h = (task / chunks) % Hq, ch = task % chunks;
    const int64_t kh = h / p.G;
    const int64_t t0 = bq * s.BQ + ch * cpu::kAttnMaxRows;
    const int64_t t1 = std::min({T, (bq + 1) * s.BQ, t0 + cpu::kAttnMaxRows});
    if (t0 >= t1) return;
    int32_t blocks[1 << 12];
    std::vector<int32_t> big;
    int32_t* bl = blocks;
    if (nkb > (1 << 12)) {
      big.resize(nkb);
      bl = big.data();
    }
    int nb = 0;
    const uint8_t* mrow = mask.data() + h * per_head + bq * nkb;
    for (int64_t bk = 0; bk < nkb; ++bk)
      if (mrow[bk]) bl[nb++] = static_cast<int32_t>(bk);
    cpu::AttnRow rows[cpu::kAttnMaxRows];
    int R = 0;
    for (int64_t t = t0; t < t1; ++t, ++R) {
      rows[R].q = qd + (t * Hq + h) * D;
      rows[R].o = yd + (t * Hq + h) * D;
      rows[R].pos = t;
      rows[R].sink = -std::numeric_limits<float>::infinity();
      if (s.int8) {
        rows[R].q8 = q8.data() + (h * T + t) * D8;
        rows[R].qscale = qs[h * nqb + bq];
      }
    }
    cpu::AttnKV kv{kd + kh * D, vd + kh * D, DType::F32, Hkv * D, T};
    if (s.int8) {
      kv.k8 = k8.data() + kh * T * D8;
      kv.k8_stride = D8;
      kv.kscale = ks.data() + kh * nkb;
      kv.kscale_block = s.BK;
    }
    fn(cfg, kv, rows, R, bl, nb, s.BK, &tstats[thread]);
  });

  // Stats in block units.
  cpu::BlockSelect bs{nqb, nkb, s.BQ, s.BK, T, s.causal, s.scale, s.cdf, s.topk, s.sink, s.diag, s.local};
  double total = 0, kept = 0;
  for (int64_t h = 0; h < Hq; ++h)
    for (int64_t bq = 0; bq < nqb; ++bq)
      for (int64_t bk = 0; bk < nkb; ++bk)
        if (cpu::block_visible(bs, bq, bk)) {
          total += 1;
          kept += mask[h * per_head + bq * nkb + bk];
        }
  int64_t skipped_pieces = 0;
  for (auto& st : tstats) skipped_pieces += st.row_blocks_pv_skipped;
  const double piece = static_cast<double>(std::min<int64_t>(s.BK, cpu::kAttnBlockK));
  const double skip2 = static_cast<double>(skipped_pieces) * piece / (static_cast<double>(s.BQ) * static_cast<double>(s.BK));
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("blocksTotal", Napi::Number::New(env, total));
  stats.Set("blocksSkippedStage1", Napi::Number::New(env, total - kept));
  stats.Set("blocksSkippedStage2", Napi::Number::New(env, skip2));
  stats.Set("sparsity", Napi::Number::New(env, total > 0 ? (total - kept + skip2) / total : 0.0));
  Napi::Object result = Napi::Object::New(env);
  result.Set("out", out);
  result.Set("stats", stats);
  return result;
}

Napi::Value SelectDecodeBlocks(const Napi::CallbackInfo& info) {
  Tensor* q = arg_tensor(info, 0, "q");
  require_cpu(q, "q");
  require_dtype(q, DType::F32, "q");
  const auto& qsh = q->shape();
  if (!(qsh.size() == 2 || (qsh.size() == 3 && qsh[0] == 1)))
    fail("E_SHAPE", "selectDecodeBlocks: q must be [Hq, D] or [1, Hq, D] (one token), got " + q->describe());
  const int64_t Hq = qsh[qsh.size() - 2], D = qsh.back();
  Tensor* kt = arg_tensor(info, 1, "k");
  Napi::Object o = arg_object(info, 2, "options", true);
  const int64_t BK = opt_int(o, "blockK", 64, 1, 1 << 16);
  const double cdf = opt_number(o, "cdfThreshold", 0.9), topk = opt_number(o, "topk", 0);
  if (!(cdf >= 0 && cdf <= 1)) fail("E_ARGUMENT", "option 'cdfThreshold' must be in [0, 1]");
  if (!(topk >= 0 && topk <= 1)) fail("E_ARGUMENT", "option 'topk' must be in [0, 1]");
  const bool keep_sink = opt_bool(o, "keepSinkBlock", true), keep_last = opt_bool(o, "keepLastBlock", true);
  const double scale = opt_number(o, "scale", 1.0 / std::sqrt(static_cast<double>(D)));
  if (!std::isfinite(scale)) fail("E_ARGUMENT", "option 'scale' must be finite");
  // K source: f32 [S, Hkv, D] or a cache (layer, seq, length).
  int64_t S, Hkv, kstride;
  std::vector<const uint8_t*> kbase;
  DType kdt = DType::F32;
  if (kt->shape().size() == 6) {
    CacheView c = check_cache(kt, "k");
    if (c.D != D) fail("E_SHAPE", "selectDecodeBlocks: q head dim differs from the cache's");
    const int64_t layer = opt_int(o, "layer", 0, 0, static_cast<int>(std::min<int64_t>(c.L - 1, 1 << 30)));
    const int64_t seq = opt_int(o, "seq", 0, 0, static_cast<int>(std::min<int64_t>(c.S - 1, 1 << 30)));
    if (!o.Has("length")) fail("E_ARGUMENT", "selectDecodeBlocks: option 'length' (keys in the cache) is required with a cache");
    const double len = opt_number(o, "length", 0);
    if (!(len >= 1) || len != std::floor(len)) fail("E_ARGUMENT", "selectDecodeBlocks: length must be a positive integer");
    if (len > static_cast<double>(c.C)) fail("E_CONTEXT_OVERFLOW", "selectDecodeBlocks: length exceeds the cache capacity");
    S = static_cast<int64_t>(len);
    Hkv = c.H;
    kstride = D;
    kdt = c.dtype;
    for (int64_t h = 0; h < Hkv; ++h) kbase.push_back(c.head(layer, seq, 0, h));
  } else {
    check_qkv(kt, "k");
    if (kt->shape()[2] != D) fail("E_SHAPE", "selectDecodeBlocks: q and k head dims differ");
    S = kt->shape()[0];
    Hkv = kt->shape()[1];
    kstride = Hkv * D;
    for (int64_t h = 0; h < Hkv; ++h) kbase.push_back(kt->data() + h * D * 4);
  }
  check_heads(Hq, Hkv, "selectDecodeBlocks");
  const int64_t G = Hq / Hkv, nkb = (S + BK - 1) / BK;
  // Pooled K per KV head (recomputed per call; a runtime can keep them incrementally).
  std::vector<float> pooled(static_cast<size_t>(Hkv * nkb * D), 0.0f);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t b = 0; b < nkb; ++b) {
      const int64_t j0 = b * BK, j1 = std::min(S, j0 + BK);
      float* pb = pooled.data() + (h * nkb + b) * D;
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t d = 0; d < D; ++d)
          pb[d] += kdt == DType::F16 ? f16_to_f32(reinterpret_cast<const uint16_t*>(kbase[h])[j * kstride + d])
                                     : reinterpret_cast<const float*>(kbase[h])[j * kstride + d];
      for (int64_t d = 0; d < D; ++d) pb[d] /= static_cast<float>(j1 - j0);
    }
  Napi::Env env = info.Env();
  Napi::Array result = Napi::Array::New(env, Hq);
  std::vector<float> sc(nkb);
  std::vector<uint8_t> keep(nkb);
  const float* qd = q->as<float>();
  for (int64_t h = 0; h < Hq; ++h) {
    const float* pk = pooled.data() + (h / G) * nkb * D;
    for (int64_t b = 0; b < nkb; ++b) {
      double d = 0;
      for (int64_t i = 0; i < D; ++i) d += static_cast<double>(qd[h * D + i]) * pk[b * D + i];
      sc[b] = static_cast<float>(d * scale);
    }
    std::fill(keep.begin(), keep.end(), 0);
    cpu::select_from_scores(sc.data(), nkb, static_cast<float>(cdf), static_cast<float>(topk), keep.data());
    if (nkb > 0 && keep_sink) keep[0] = 1;
    if (nkb > 0 && keep_last) keep[nkb - 1] = 1;
    int64_t n = 0;
    for (int64_t b = 0; b < nkb; ++b) n += keep[b];
    Napi::Int32Array list = Napi::Int32Array::New(env, n);
    int64_t i = 0;
    for (int64_t b = 0; b < nkb; ++b)
      if (keep[b]) list.Data()[i++] = static_cast<int32_t>(b);
    result.Set(static_cast<uint32_t>(h), list);
  }
  return result;
}

}  // namespace

void register_sparse_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("sparseAttention", Napi::Function::New<exported<SparseAttention>>(env, "sparseAttention"));
  exports.Set("predictBlockMask", Napi::Function::New<exported<PredictBlockMask>>(env, "predictBlockMask"));
  exports.Set("selectDecodeBlocks", Napi::Function::New<exported<SelectDecodeBlocks>>(env, "selectDecodeBlocks"));
}

}  // namespace qm
