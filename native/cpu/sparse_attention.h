// SpargeAttn (arXiv 2502.18137) stage 1 on the CPU, portable (cheap next to the attention itself):
// block mean pooling, block self-similarity, pooled-score block selection, and the per-block INT8
// quantisation of Q and K used for the sparse kernel's Q·K (SageAttention smoothing of K).
#pragma once
#include <cstdint>
#include <vector>

namespace qm::cpu {

// Rows [0, n) of x (row r at x + r·stride, D floats) in blocks of `block`:
//   pooled[b]  = mean of the block's rows                               (nb × D)
//   similar[b] = mean pairwise cosine of the block's rows (= ‖Σ x̂‖² / n²) > sim_threshold
// Rows with zero norm count as zero vectors.
void block_pool_sim(const float* x, int64_t stride, int64_t n, int64_t D, int64_t block, float sim_threshold,
                    float* pooled, uint8_t* similar);

struct BlockSelect {
  int64_t nqb, nkb, block_q, block_k, T;  // T: tokens (= keys, self-attention)
  bool causal;
  float scale;          // softmax scale for pooled scores
  float cdf_threshold;  // τ (>= 1: keep every visible block)
  float topk;           // > 0: keep this fraction of the visible blocks instead of τ
  bool keep_sink, keep_diagonal;
  int64_t local_window;  // with keep_diagonal: also keep key blocks within this many tokens before the Q block
};

// K block bk is causally visible to Q block bq iff bk·block_k < min(T, (bq+1)·block_q).
inline bool block_visible(const BlockSelect& s, int64_t bq, int64_t bk) {
  if (!s.causal) return true;
  const int64_t end = (bq + 1) * s.block_q < s.T ? (bq + 1) * s.block_q : s.T;
  return bk * s.block_k < end;
}

// One head: mask[bq·nkb + bk] = 1 to compute. pooled_q [nqb, D], pooled_k [nkb, D].
void select_blocks(const BlockSelect& s, const float* pooled_q, const uint8_t* sim_q, const float* pooled_k,
                   const uint8_t* sim_k, int64_t D, uint8_t* mask);

// Top blocks from one row of pooled scores (already scaled, −inf = excluded): softmax, sort
// descending, keep the fewest reaching cumulative mass τ (at least 1), or ⌈topk·valid⌉.
void select_from_scores(const float* scores, int64_t n, float cdf_threshold, float topk, uint8_t* keep);

// Per-block symmetric INT8: rows [0, n) (row r at x + r·stride, D floats, minus `mean` when given)
// → q8 [n, D8] (zero padded to D8 = round_up(D, 32)), scale[b] = max|x| / 127 over block b.
void quantize_blocks_i8(const float* x, int64_t stride, int64_t n, int64_t D, int64_t D8, int64_t block,
                        const float* mean, int8_t* q8, float* scale);

}  // namespace qm::cpu
