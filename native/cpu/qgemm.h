// Quantized GEMM over the GGUF block types: the internal C++ interface shared by the qgemm op
// family and the fused MoE layer. Weights stay in their GGUF blocks and are read directly.
//
// As llama.cpp does, activations are first quantized per row into the "activation type" that
// pairs with the weight type (its vec_dot_type): Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1,
// Q8_K for the K-quants, and F32 for F32/F16/BF16 weights (kept as plain floats). Then every
// dot product is an integer dot product (AVX2 vpmaddubsw / AVX-512 VNNI vpdpbusd / scalar).
//
// Memory: weight rows must be 2-byte aligned (the half scales), activation rows as act_row_bytes
// lays them out (Q8_K blocks hold a float: 4-byte aligned); buffers from the tensor allocator are.
// Activations from quantize_act_row never exceed ±127, so vpmaddubsw cannot saturate.
//
// Batch invariance: y[t, n] depends only on x[t, :] and w[n, :], never on T, the token tile, the
// thread count or which other tokens share the call: one fixed reduction order per ISA. Scalar: one
// dot-product function per element. AVX2 / AVX-512: exact int32 sums per block, then one fixed
// float chain per output in block order (qgemm_avx2.h), so the GEMV kernel (T < 5, 8 rows per
// vector) and the many-token kernel (8 tokens per vector) give the same bits for a token.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

// The activation dtype paired with a weight dtype (see above). Throws E_DTYPE for unsupported.
DType act_type_for(DType wtype);

// Bytes of one quantized activation row of K elements for weight type wtype.
int64_t act_row_bytes(DType wtype, int64_t K);

// Quantizes one activation row x[K] into act_type_for(wtype): the reference arithmetic (quants.cc),
// vectorized per ISA with byte-identical results.
void quantize_act_row(DType wtype, const float* x, void* out, int64_t K);

// y[t * ldy + n] = dot(w row n, x row t) for t in [0, T), n in [n0, n1).
// w: N rows of row_bytes(wtype, K) bytes; xq: T rows of act_row_bytes(wtype, K) bytes.
// Single-threaded: callers split [0, N) across the thread pool.
void qgemm_rows(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                int64_t n0, int64_t n1);

// Weight types qgemm_rows accepts.
bool qgemm_supports(DType wtype);

}  // namespace qm::cpu
