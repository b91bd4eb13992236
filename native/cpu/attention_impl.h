// The flash-attention driver shared by every instruction set. Each ISA translation unit defines a
// `struct Ops` (score tile, row max, exp-and-sum, P·V, scaling, f16 staging) and then includes
// this file INSIDE AN ANONYMOUS NAMESPACE, so the per-ISA instantiations never merge at link
// time. Needs <algorithm>, <cmath>, <cstring>, <limits>, <vector>, "attention.h" and "../fp16.h".
//
// Per task: rows R ≤ kAttnMaxRows (one KV head), keys in pieces of ≤ kAttnBlockK:
//   S = scale · Q Kᵀ (active rows only) → softcap → causal/window mask → per row: block max bm;
//   stage 2 (pv_threshold λ): bm < m − λ ⇒ the row skips this block; else
//   m' = max(m, bm), l = l·e^(m−m') + Σ e^(s−m'), O = O·e^(m−m') + P·V.
// Finally a sink logit adds e^(sink−m) to l; out = O / l (0 when a row saw no key).

template <class Ops>
void attn_rows_impl(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                    int n_blocks, int64_t block_k, AttnStats* stats) {
  constexpr int BK = kAttnBlockK;
  const int64_t D = c.D;
  const float NEG_INF = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> bufS, bufO, bufK, bufV;
  bufS.resize(static_cast<size_t>(kAttnMaxRows) * BK);
  bufO.assign(static_cast<size_t>(R) * D, 0.0f);
  // f16 K/V: staged as f32 one block at a time, or read directly by the Ops that can (few rows).
  const bool direct = kv.dtype == DType::F16 && !kv.k8 && R <= Ops::kDirectF16Rows;
  if (kv.dtype == DType::F16 && !direct) {
    bufK.resize(static_cast<size_t>(BK) * D);
    bufV.resize(static_cast<size_t>(BK) * D);
  }
  float* S = bufS.data();
  float* O = bufO.data();
  float m[kAttnMaxRows], l[kAttnMaxRows];
  int64_t lo[kAttnMaxRows], hi[kAttnMaxRows];
  int64_t minlo = kv.n_keys, maxhi = 0;
  for (int r = 0; r < R; ++r) {
    m[r] = NEG_INF;
    l[r] = 0;
    int64_t a = 0, b = kv.n_keys;
    if (c.causal) b = std::min<int64_t>(b, rows[r].pos + 1);
    if (c.window > 0) a = std::max<int64_t>(a, rows[r].pos - c.window + 1);
    if (b < a) b = a;
    lo[r] = a;
    hi[r] = b;
    if (a < b) {
      minlo = std::min(minlo, a);
      maxhi = std::max(maxhi, b);
    }
  }
  int64_t visited = 0, skipped = 0;
  if (direct && maxhi > minlo) {
    // The first block of K and V has no block before it to prefetch it: ask for all of it now,
    // so its misses overlap instead of arriving one demand load at a time.
    for (int64_t j = minlo; j < std::min(maxhi, minlo + BK); ++j) {
      prefetch_f16_row(static_cast<const uint16_t*>(kv.k) + j * kv.stride, D);
      prefetch_f16_row(static_cast<const uint16_t*>(kv.v) + j * kv.stride, D);
    }
  }

  auto do_range = [&](int64_t j0, int64_t j1) {
    const int nk = static_cast<int>(j1 - j0);
    int act[kAttnMaxRows];
    int na = 0;
    for (int r = 0; r < R; ++r)
      if (std::max(j0, lo[r]) < std::min(j1, hi[r])) act[na++] = r;
    if (na == 0) return;
    const float* K = nullptr;
    const float* V;
    int64_t ks = 0, vs;
    if (kv.k8) {
      // INT8 scores: raw integer dots, then × q scale × k block scale × softmax scale per row.
      const int8_t* qa8[kAttnMaxRows];
      for (int i = 0; i < na; ++i) qa8[i] = rows[act[i]].q8;
      Ops::qk_i8(qa8, na, kv.k8 + j0 * kv.k8_stride, kv.k8_stride, nk, S, BK);
      const float ksc = kv.kscale[j0 / kv.kscale_block] * c.scale;
      for (int i = 0; i < na; ++i) Ops::scale(S + static_cast<size_t>(i) * BK, nk, rows[act[i]].qscale * ksc);
    } else if (kv.dtype == DType::F16 && !direct) {
      Ops::stage_f16(static_cast<const uint16_t*>(kv.k) + j0 * kv.stride, kv.stride, nk, D, bufK.data());
      K = bufK.data();
      ks = D;
    } else if (kv.dtype != DType::F16) {
      K = static_cast<const float*>(kv.k) + j0 * kv.stride;
      ks = kv.stride;
    }
    if (!kv.k8) {
      const float* qa[kAttnMaxRows];
      for (int i = 0; i < na; ++i) qa[i] = rows[act[i]].q;
      if (!direct) {
        Ops::qk(qa, na, K, ks, nk, D, c.scale, S, BK);
      } else if constexpr (Ops::kDirectF16Rows > 0) {  // only those Ops have the f16 overloads
        Ops::qk(qa, na, static_cast<const uint16_t*>(kv.k) + j0 * kv.stride, kv.stride, nk, D, c.scale, S, BK);
      }
    }
    int srow[kAttnMaxRows], orow[kAttnMaxRows];
    int npv = 0;
    for (int i = 0; i < na; ++i) {
      const int r = act[i];
      float* s = S + static_cast<size_t>(i) * BK;
      if (c.softcap > 0) {
        const float inv = 1.0f / c.softcap;
        for (int j = 0; j < nk; ++j) s[j] = c.softcap * std::tanh(s[j] * inv);
      }
      if (lo[r] > j0 || hi[r] < j1) {
        for (int j = 0; j < nk; ++j) {
          const int64_t key = j0 + j;
          if (key < lo[r] || key >= hi[r]) s[j] = NEG_INF;
        }
      }
      const float bm = Ops::row_max(s, nk);
      ++visited;
      if (bm < m[r] - c.pv_threshold) {
        ++skipped;
        continue;
      }
      const float mn = bm > m[r] ? bm : m[r];
      if (m[r] != NEG_INF && mn != m[r]) {
        const float alpha = std::exp(m[r] - mn);
        l[r] *= alpha;
        Ops::scale(O + static_cast<size_t>(r) * D, D, alpha);
      }
      l[r] += Ops::exp_sum(s, nk, mn);
      m[r] = mn;
      srow[npv] = i;
      orow[npv] = r;
      ++npv;
    }
    if (npv == 0) return;
    if (direct) {
      if constexpr (Ops::kDirectF16Rows > 0)
        Ops::pv(srow, orow, npv, S, BK, static_cast<const uint16_t*>(kv.v) + j0 * kv.stride, kv.stride, nk, D, O);
      return;
    }
    if (kv.dtype == DType::F16) {
      Ops::stage_f16(static_cast<const uint16_t*>(kv.v) + j0 * kv.stride, kv.stride, nk, D, bufV.data());
      V = bufV.data();
      vs = D;
    } else {
      V = static_cast<const float*>(kv.v) + j0 * kv.stride;
      vs = kv.stride;
    }
    Ops::pv(srow, orow, npv, S, BK, V, vs, nk, D, O);
  };

  auto do_span = [&](int64_t a, int64_t b) {
    a = std::max(a, minlo);
    b = std::min(b, maxhi);
    for (int64_t j = a; j < b; j += BK) do_range(j, std::min(b, j + BK));
  };
  if (blocks) {
    for (int i = 0; i < n_blocks; ++i) {
      const int64_t b0 = static_cast<int64_t>(blocks[i]) * block_k;
      do_span(b0, std::min(kv.n_keys, b0 + block_k));
    }
  } else {
    do_span(minlo, maxhi);
  }

  for (int r = 0; r < R; ++r) {
    float ll = l[r], f;
    const float sink = rows[r].sink;
    if (sink != NEG_INF) {
      const float mt = std::max(m[r], sink);
      const float e = m[r] == NEG_INF ? 0.0f : std::exp(m[r] - mt);
      ll = ll * e + std::exp(sink - mt);
      f = e / ll;
    } else {
      f = ll == 0 ? 0.0f : 1.0f / ll;
    }
    Ops::scale_store(rows[r].o, O + static_cast<size_t>(r) * D, D, f);
  }
  if (stats) {
    stats->row_blocks += visited;
    stats->row_blocks_pv_skipped += skipped;
  }
}
