// Flash-style attention kernels: a task is a set of query rows (≤ kAttnMaxRows) that read the
// same KV head; keys are visited in blocks of kAttnBlockK with an online softmax, so no T×S
// score matrix is ever materialised. Raw pointers only; native/ops/attention.cc validates.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

constexpr int kAttnMaxRows = 64;
constexpr int kAttnBlockK = 64;

// Prefetch (into L2) of one f16 key/value row, and of the same row kAttnBlockK rows on (the next
// block), issued while a block is read. A block (16 KB at D = 128) is too short a stream for the
// hardware prefetchers before the loop jumps to the other tensor: decode attention over a 640-key
// f16 cache read it at ~8 GB/s, latency-bound (prefetching in the f32 staging alone: 10.8 -> 9.5 ms
// per token for 16 layers on one Zen 4 core; with the direct f16 reads of attention_avx512.cc ~7 ms).
// (static: internal linkage in every ISA's translation unit; prefetches never fault.)
static inline void prefetch_f16_row(const uint16_t* row, int64_t D) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < D * 2; b += 64) __builtin_prefetch(p + b, 0, 2);
}
static inline void prefetch_next_block(const uint16_t* row, int64_t stride, int64_t D) {
  prefetch_f16_row(row + kAttnBlockK * stride, D);
}

struct AttnConfig {
  int64_t D;
  float scale;
  float softcap;       // 0: off; else s = softcap · tanh(s / softcap) (after scaling)
  bool causal;         // key j visible to a row at position p iff j <= p
  int64_t window;      // 0: off; else also j > p − window
  float pv_threshold;  // +inf: off; else skip a key block for a row when its max score < running max − λ
};

// One KV head: key j at k + j·stride (elements of dtype F32 or F16), j in [0, n_keys).
struct AttnKV {
  const void* k;
  const void* v;
  DType dtype;
  int64_t stride;
  int64_t n_keys;
  // Optional INT8 keys (sparse attention): key j at k8 + j·k8_stride (k8_stride a multiple of 32,
  // zero padded beyond D), dequantised by kscale[j / kscale_block]; then the f32 k is not read.
  const int8_t* k8 = nullptr;
  int64_t k8_stride = 0;
  const float* kscale = nullptr;
  int64_t kscale_block = 1;
};

struct AttnRow {
  const float* q = nullptr;  // [D]
  float* o = nullptr;        // [D]
  int64_t pos = 0;           // position of this query (for causal / window masks)
  float sink = 0;            // learned sink logit added to the softmax denominator; -inf: none
  const int8_t* q8 = nullptr;  // INT8 query [k8_stride] (with AttnKV::k8), dequantised by qscale
  float qscale = 0;
};

struct AttnStats {
  int64_t row_blocks = 0;       // (row, key block) pairs visited
  int64_t row_blocks_pv_skipped = 0;  // of which the P·V product was skipped (stage 2)
};

// Attends rows[0..R) to the KV head. blocks (optional): only these key blocks (index b covers
// keys [b·block_k, (b+1)·block_k)), ascending; any positive block_k (blocks are visited in pieces
// of at most kAttnBlockK keys that never straddle two blocks).
void attn_rows_scalar(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                      int n_blocks, int64_t block_k, AttnStats* stats);
void attn_rows_avx2(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                    int n_blocks, int64_t block_k, AttnStats* stats);
void attn_rows_avx512(const AttnConfig& c, const AttnKV& kv, const AttnRow* rows, int R, const int32_t* blocks,
                      int n_blocks, int64_t block_k, AttnStats* stats);

}  // namespace qm::cpu

namespace qm::cpu {
// KV-cache store: n floats → f16 (round to nearest even) or plain copy for f32 caches.
void f32_to_f16_row_scalar(const float* src, uint16_t* dst, int64_t n);
void f32_to_f16_row_avx2(const float* src, uint16_t* dst, int64_t n);
void f32_to_f16_row_avx512(const float* src, uint16_t* dst, int64_t n);
}  // namespace qm::cpu

namespace qm::cpu {
// Benchmark helper: runs `iters` rounds of independent FMA chains at the ISA's full width (AVX2: 12
// chains of 8 floats; AVX-512: 6 FMAs of 16 floats per round, the same flops per round) or the
// scalar equivalent; returns a value derived from the result so the loop cannot be optimised away.
float fma_peak_scalar(int64_t iters);
float fma_peak_avx2(int64_t iters);
float fma_peak_avx512(int64_t iters);
constexpr int kFmaPeakFlopsPerIterScalar = 2 * 8;
constexpr int kFmaPeakFlopsPerIterAvx2 = 2 * 8 * 12;
}  // namespace qm::cpu
