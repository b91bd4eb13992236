// Fused MoE layer on the CPU: routing, grouping of (token, slot) pairs by expert, grouped expert
// GEMMs through qgemm_rows (each active expert's weights read once per call), activation,
// down projection, weighted combine, shared experts. Raw pointers only; native/ops/moe.cc
// validates everything first.
//
// Pipeline per batch of tokens (large T is processed in batches bounding the scratch memory):
//  1. quantize every token's activation row once per activation type needed (qgemm.h);
//  2. router logits (qgemm_rows) unless given; route (routing.h) -> ids, weights, counts;
//  3. counting sort of the T·k pairs by expert (stable: tokens ascending within an expert, as
//     vLLM moe_align_block_size / llama.cpp mul_mat_id) and a gather of the quantized rows;
//  4. parallel over (expert, row-chunk): gate and up rows for all the expert's tokens, then
//     h = act(gate)·up for those columns; shared experts are jobs over all tokens;
//  5. parallel: quantize h rows for the down weights' activation type; shared-expert gates;
//  6. parallel over (expert, row-chunk): down projection into one output row per pair;
//  7. parallel over tokens: y[t] = Σ_slot w[t,slot]·out[t,slot] in slot order, then the shared
//     experts in order (each optionally scaled by sigmoid(gate_inp·x[t])).
// Batch invariance: every value a token's output depends on is computed from that token's row
// alone (qgemm_rows is batch-invariant) and the final sum runs in a fixed order, so y[t] is
// bit-identical whatever else is in the batch and however many threads run.
#pragma once
#include <cstdint>

#include "../common.h"
#include "routing.h"

namespace qm::cpu {

// One [rows, K] weight matrix of one expert (rows of row_bytes(type, K) bytes).
struct MoeMatrix {
  const uint8_t* data = nullptr;
  DType type = DType::F32;
};

// gate, up: [F, D]; down: [D, F].
struct MoeFfnWeights {
  MoeMatrix gate, up, down;
};

enum class MoeAct { Silu = 0, Gelu = 1, GeluTanh = 2 };

struct MoeShared {
  MoeFfnWeights w;
  int64_t F = 0;
  MoeMatrix gate_inp;  // [1, D]: output scaled by sigmoid(gate_inp·x) (Qwen2-MoE); data null: unscaled
};

struct MoeArgs {
  const float* x = nullptr;  // [T, D]
  int64_t T = 0, D = 0;
  const float* router_logits = nullptr;  // [T, E]; when null, `router` [E, D] computes them
  MoeMatrix router;
  RouteParams route;
  int64_t E = 0, F = 0;
  const MoeFfnWeights* experts = nullptr;  // [E]
  const MoeShared* shared = nullptr;
  int64_t n_shared = 0;
  MoeAct act = MoeAct::Silu;
  float* y = nullptr;        // [T, D]
  int32_t* ids = nullptr;    // [T, k] out
  float* weights = nullptr;  // [T, k] out
  int32_t* counts = nullptr; // [E] out
  int threads = 1;
};

void moe_forward(const MoeArgs& a);

// h[i] = act(g[i]) * u[i] for i in [0, n) (per ISA; same ISA -> same bits).
void moe_glu_scalar(MoeAct act, const float* g, const float* u, float* h, int64_t n);
void moe_glu_avx2(MoeAct act, const float* g, const float* u, float* h, int64_t n);
void moe_glu_avx512(MoeAct act, const float* g, const float* u, float* h, int64_t n);

}  // namespace qm::cpu
