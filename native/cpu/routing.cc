// Expert routing kernels (see routing.h for the conventions).
#include "routing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../threadpool.h"

namespace qm::cpu {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

inline double rank_key(double v) { return std::isnan(v) ? kNegInf : v; }

struct Scratch {
  std::vector<double> probs, sel, gscore;
  std::vector<int32_t> order, gorder;
  std::vector<uint8_t> allowed;
};

void route_one(const RouteParams& p, const float* lg, int64_t E, int32_t* ids, float* w, Scratch& s) {
  const int64_t k = p.k;
  s.probs.resize(E);
  s.sel.resize(E);
  s.order.resize(E);
  s.allowed.assign(E, 1);
  bool row_nan = false;  // Softmax: a NaN logit poisons every weight of the token

  // 1. Scores the weights come from (probs) and the scores used for choosing (sel).
  switch (p.func) {
    case RouteFunc::Softmax: {
      // NaN-propagating max: a NaN logit makes the whole row NaN (documented in routing.h).
      double mx = kNegInf;
      bool has_nan = false;
      for (int64_t e = 0; e < E; ++e) {
        const double v = lg[e];
        if (std::isnan(v)) has_nan = true;
        else if (v > mx) mx = v;
      }
      // Probabilities of the non-NaN logits choose the experts; the weights are all NaN when the
      // row has a NaN (step 4).
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) {
        const double v = std::exp(static_cast<double>(lg[e]) - mx);
        s.probs[e] = v;
        if (!std::isnan(v)) sum += v;
      }
      for (int64_t e = 0; e < E; ++e) s.probs[e] /= sum;
      row_nan = has_nan;
      break;
    }
    case RouteFunc::Sigmoid:
      for (int64_t e = 0; e < E; ++e) s.probs[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(lg[e])));
      break;
    case RouteFunc::TopkSoftmax:
      for (int64_t e = 0; e < E; ++e) s.probs[e] = lg[e];
      break;
  }
  for (int64_t e = 0; e < E; ++e)
    s.sel[e] = std::isnan(lg[e]) ? kNegInf : rank_key(s.probs[e] + (p.bias ? static_cast<double>(p.bias[e]) : 0.0));

  // 2. Group limit: keep the topk_group best groups.
  if (p.n_group > 1) {
    const int64_t G = p.n_group, gs = E / G;
    s.gscore.resize(G);
    s.gorder.resize(G);
    for (int64_t g = 0; g < G; ++g) {
      const double* v = s.sel.data() + g * gs;
      double a = kNegInf, b = kNegInf;  // top-2 (a >= b)
      for (int64_t i = 0; i < gs; ++i) {
        if (v[i] > a) { b = a; a = v[i]; }
        else if (v[i] > b) b = v[i];
      }
      const double sc = p.group_score == GroupScore::Max || gs < 2 ? a : a + b;
      s.gscore[g] = rank_key(sc);
      s.gorder[g] = static_cast<int32_t>(g);
    }
    const double* gsc = s.gscore.data();
    std::partial_sort(s.gorder.begin(), s.gorder.begin() + p.topk_group, s.gorder.end(), [gsc](int32_t x, int32_t y) {
      return gsc[x] > gsc[y] || (gsc[x] == gsc[y] && x < y);
    });
    std::fill(s.allowed.begin(), s.allowed.end(), 0);
    for (int64_t j = 0; j < p.topk_group; ++j) std::fill_n(s.allowed.begin() + s.gorder[j] * gs, gs, 1);
  }

  // 3. Top-k: allowed experts first, then higher score, then lower id (a strict total order).
  for (int64_t e = 0; e < E; ++e) s.order[e] = static_cast<int32_t>(e);
  const double* sel = s.sel.data();
  const uint8_t* al = s.allowed.data();
  std::partial_sort(s.order.begin(), s.order.begin() + k, s.order.end(), [sel, al](int32_t x, int32_t y) {
    if (al[x] != al[y]) return al[x] > al[y];
    if (sel[x] != sel[y]) return sel[x] > sel[y];
    return x < y;
  });

  // 4. Weights of the chosen experts.
  double wk[256];
  std::vector<double> wbig;
  double* wv = wk;
  if (k > 256) {
    wbig.resize(k);
    wv = wbig.data();
  }
  for (int64_t j = 0; j < k; ++j) {
    ids[j] = s.order[j];
    wv[j] = row_nan ? std::numeric_limits<double>::quiet_NaN() : s.probs[s.order[j]];
  }
  if (p.func == RouteFunc::TopkSoftmax) {
    double mx = kNegInf;
    bool has_nan = false;
    for (int64_t j = 0; j < k; ++j) {
      if (std::isnan(wv[j])) has_nan = true;
      else if (wv[j] > mx) mx = wv[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      wv[j] = std::exp(wv[j] - mx);
      sum += wv[j];
    }
    if (has_nan) sum = std::numeric_limits<double>::quiet_NaN();
    for (int64_t j = 0; j < k; ++j) wv[j] /= sum;
  }
  if (p.norm_topk) {
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += wv[j];
    sum += 1e-20;
    for (int64_t j = 0; j < k; ++j) wv[j] /= sum;
  }
  for (int64_t j = 0; j < k; ++j) w[j] = static_cast<float>(wv[j] * p.scale);
}

}  // namespace

void route_tokens(const RouteParams& p, const float* logits, int64_t E, int32_t* ids, float* weights, int64_t t0,
                  int64_t t1) {
  Scratch s;
  for (int64_t t = t0; t < t1; ++t) route_one(p, logits + t * E, E, ids + t * p.k, weights + t * p.k, s);
}

void route_all(const RouteParams& p, const float* logits, int64_t T, int64_t E, int32_t* ids, float* weights,
               int32_t* counts, int threads) {
  if (T > 0) {
    // Chunks of ~16K logits per task; a single task runs on the caller thread.
    const int64_t chunk = std::max<int64_t>(1, 16384 / std::max<int64_t>(E, 1));
    const int64_t tasks = (T + chunk - 1) / chunk;
    parallel_for(tasks, tasks > 1 ? threads : 1, [&](int64_t task, int) {
      const int64_t t0 = task * chunk;
      route_tokens(p, logits, E, ids, weights, t0, std::min(T, t0 + chunk));
    });
  }
  if (counts) {
    std::fill_n(counts, E, 0);
    for (int64_t i = 0; i < T * p.k; ++i) ++counts[ids[i]];
  }
}

}  // namespace qm::cpu
