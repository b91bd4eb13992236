// Expert routing (top-k gating) for MoE layers: from router logits [T, E] to the k experts each
// token uses and their mixing weights. Portable code used by every ISA (routing is O(T·E), noise
// next to the expert GEMMs); computed in double, so results do not depend on the ISA either.
//
// Scoring functions (conventions of HF transformers and llama.cpp build_moe_ffn):
//  - Softmax      p = softmax(logits) over all E; select top-k of p (+bias); weights = p of the
//                 chosen (Mixtral, Qwen2/Qwen3-MoE, OLMoE, DeepSeek-V2).
//  - TopkSoftmax  select top-k of logits (+bias); weights = softmax over the k chosen logits
//                 (GraniteMoE, gpt-oss; llama.cpp SOFTMAX_WEIGHT).
//  - Sigmoid      s = sigmoid(logits); select top-k of s + bias; weights = s of the chosen,
//                 unbiased (DeepSeek-V3).
// then, in this order: renormalise the k weights to sum 1 when norm_topk (w / (Σw + 1e-20), as
// HF DeepSeek-V3; Σw > 0 in every other case so it is plain division), multiply by scale.
//
// Group-limited selection (DeepSeek-V2/V3): experts form n_group equal consecutive groups; a
// group's score is the sum of its top-2 selection scores (Top2Sum, V3) or its maximum (Max, V2);
// only experts of the topk_group best groups can be chosen (the others are masked to -inf, as in
// llama.cpp and DeepSeek's inference code; HF modeling_deepseek_v3 fills 0.0 instead, which picks
// the same experts whenever the kept groups hold k experts with positive biased scores).
// DeepSeek's remote modeling code skips the renormalisation when k == 1; callers that want that
// pass norm_topk = false for k == 1.
//
// Determinism and edge cases: the k slots come out in descending selection score; ties go to the
// lower expert id (lower group id for groups). A NaN selection score (NaN logit, or NaN/+-inf
// mixes) ranks as -inf, so ids are always k distinct experts in [0, E). Weights are then computed
// by the formulas above and propagate NaN: a NaN logit makes every weight of its token NaN under
// Softmax (the denominator is NaN), and under Sigmoid/TopkSoftmax wherever the NaN expert was
// chosen (and, with renormalisation, all k weights of that token).
#pragma once
#include <cstdint>

namespace qm::cpu {

enum class RouteFunc { Softmax = 0, TopkSoftmax = 1, Sigmoid = 2 };
enum class GroupScore { Top2Sum = 0, Max = 1 };

struct RouteParams {
  RouteFunc func = RouteFunc::Softmax;
  int64_t k = 1;
  bool norm_topk = false;
  const float* bias = nullptr;  // [E] correction bias, added for selection only (may be null)
  int64_t n_group = 1;          // 1: no group limit
  int64_t topk_group = 1;
  GroupScore group_score = GroupScore::Top2Sum;
  double scale = 1.0;           // routed scaling factor
};

// Routes tokens [t0, t1): ids[t*k + j], weights[t*k + j] for slot j. Validated parameters only
// (k <= E, n_group divides E, topk_group * E / n_group >= k).
void route_tokens(const RouteParams& p, const float* logits, int64_t E, int32_t* ids, float* weights,
                  int64_t t0, int64_t t1);

// Routes all T tokens on up to `threads` threads and fills counts[E] (tokens per expert) when
// counts is non-null.
void route_all(const RouteParams& p, const float* logits, int64_t T, int64_t E, int32_t* ids, float* weights,
               int32_t* counts, int threads);

}  // namespace qm::cpu
