// Portable SpargeAttn stage-1 helpers (see sparse_attention.h).
#include "sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace qm::cpu {

void block_pool_sim(const float* x, int64_t stride, int64_t n, int64_t D, int64_t block, float sim_threshold,
                    float* pooled, uint8_t* similar) {
  const int64_t nb = (n + block - 1) / block;
  std::vector<double> sum(D), unit(D);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t r0 = b * block, r1 = std::min(n, r0 + block), cnt = r1 - r0;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(unit.begin(), unit.end(), 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x + r * stride;
      double nn = 0;
      for (int64_t d = 0; d < D; ++d) {
        sum[d] += row[d];
        nn += static_cast<double>(row[d]) * row[d];
      }
      const double inv = nn > 0 ? 1.0 / std::sqrt(nn) : 0.0;
      for (int64_t d = 0; d < D; ++d) unit[d] += row[d] * inv;
    }
    double g = 0;
    for (int64_t d = 0; d < D; ++d) {
      pooled[b * D + d] = static_cast<float>(sum[d] / static_cast<double>(cnt));
      g += unit[d] * unit[d];
    }
    const double sim = g / (static_cast<double>(cnt) * static_cast<double>(cnt));
    // NaN rows make sim NaN: not similar, so the block is always computed (and the NaN propagates).
    similar[b] = sim > sim_threshold ? 1 : 0;
  }
}

void select_from_scores(const float* scores, int64_t n, float cdf_threshold, float topk, uint8_t* keep) {
  std::vector<int64_t> idx;
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i)
    if (scores[i] != -std::numeric_limits<float>::infinity()) {
      idx.push_back(i);
      m = std::max(m, scores[i]);
    }
  if (idx.empty()) return;
  if (topk <= 0 && cdf_threshold >= 1.0f) {
    for (int64_t i : idx) keep[i] = 1;
    return;
  }
  std::vector<double> p(n, 0.0);
  double z = 0;
  for (int64_t i : idx) z += (p[i] = std::exp(static_cast<double>(scores[i]) - m));
  if (!(z > 0) || !std::isfinite(z)) {  // NaN / inf scores: keep everything visible
    for (int64_t i : idx) keep[i] = 1;
    return;
  }
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  size_t take;
  if (topk > 0) {
    take = static_cast<size_t>(std::ceil(static_cast<double>(topk) * static_cast<double>(idx.size())));
  } else {
    // searchsorted(cdf, τ, right=True): the number of prefix sums <= τ
    take = 0;
    double c = 0;
    for (int64_t i : idx) {
      c += p[i] / z;
      if (c <= cdf_threshold) ++take;
      else break;
    }
  }
  take = std::max<size_t>(1, std::min(take, idx.size()));
  for (size_t i = 0; i < take; ++i) keep[idx[i]] = 1;
}

void select_blocks(const BlockSelect& s, const float* pooled_q, const uint8_t* sim_q, const float* pooled_k,
                   const uint8_t* sim_k, int64_t D, uint8_t* mask) {
  std::vector<float> sc(s.nkb);
  const float NEG_INF = -std::numeric_limits<float>::infinity();
  for (int64_t bq = 0; bq < s.nqb; ++bq) {
    uint8_t* row = mask + bq * s.nkb;
    std::memset(row, 0, s.nkb);
    const float* pq = pooled_q + bq * D;
    for (int64_t bk = 0; bk < s.nkb; ++bk) {
      if (!block_visible(s, bq, bk) || !sim_k[bk]) {
        sc[bk] = NEG_INF;
        continue;
      }
      double d = 0;
      for (int64_t i = 0; i < D; ++i) d += static_cast<double>(pq[i]) * pooled_k[bk * D + i];
      sc[bk] = static_cast<float>(d * s.scale);
    }
    select_from_scores(sc.data(), s.nkb, s.cdf_threshold, s.topk, row);
    int64_t last = -1;
    for (int64_t bk = 0; bk < s.nkb; ++bk) {
      if (!block_visible(s, bq, bk)) {
        row[bk] = 0;
        continue;
      }
      last = bk;
      // not self-similar: the pooled mean does not represent the block → always compute
      if (!sim_k[bk] || !sim_q[bq]) row[bk] = 1;
    }
    if (s.keep_sink && s.nkb > 0) row[0] = 1;
    if (s.keep_diagonal && last >= 0) {
      // the key blocks that overlap this query block's own token range and the local window
      // before it (local attention, which pooled scores under-weight)
      const int64_t q0 = bq * s.block_q - s.local_window;
      for (int64_t bk = last; bk >= 0 && (bk + 1) * s.block_k > q0; --bk) row[bk] = 1;
    }
  }
}

void quantize_blocks_i8(const float* x, int64_t stride, int64_t n, int64_t D, int64_t D8, int64_t block,
                        const float* mean, int8_t* q8, float* scale) {
  const int64_t nb = (n + block - 1) / block;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t r0 = b * block, r1 = std::min(n, r0 + block);
    float amax = 0;
    bool nan = false;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t d = 0; d < D; ++d) {
        const float v = x[r * stride + d] - (mean ? mean[d] : 0.0f);
        if (std::isnan(v)) nan = true;
        amax = std::max(amax, std::fabs(v));
      }
    if (!std::isfinite(amax)) nan = true;
    const float sc = amax / 127.0f;
    const float inv = sc > 0 && std::isfinite(sc) ? 1.0f / sc : 0.0f;
    // NaN/Inf in a block poisons its scale, so the scores that use it are NaN (propagation, as in
    // the f32 path, at block granularity).
    scale[b] = nan ? std::numeric_limits<float>::quiet_NaN() : sc;
    for (int64_t r = r0; r < r1; ++r) {
      int8_t* out = q8 + r * D8;
      for (int64_t d = 0; d < D; ++d) {
        const float v = (x[r * stride + d] - (mean ? mean[d] : 0.0f)) * inv;
        const float c = std::nearbyint(std::min(127.0f, std::max(-127.0f, v)));
        out[d] = std::isnan(v) ? 0 : static_cast<int8_t>(c);
      }
      for (int64_t d = D; d < D8; ++d) out[d] = 0;
    }
  }
}

}  // namespace qm::cpu
