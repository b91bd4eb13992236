// Row-interleaved ("r16") layouts of Q4_0 and Q8_0 weights, made at load time for the AVX-512 GEMV.
//
// Why: the GEMV kernel puts 16 weight rows in the lanes of a vector. From plain GGUF rows it has to
// assemble each block's 16 fp16 scales from 16 rows in general registers and build every quant
// vector from four 128-bit row pieces (vinserti32x4): on Zen 4 that work, not DRAM, bounded Q4_0
// decode (hot Q4_0 GEMV ~28 GB/s on one core, below the 32 GB/s the memory gives). In the r16
// layout a tile's block is one contiguous record the kernel reads with aligned-size plain loads,
// and a tile is one contiguous stream (the hardware prefetchers follow it). The same idea as
// llama.cpp's repacked Q4_0 ("Q4_0_8x8"), with our kernel's lane order; the arithmetic (integer
// block sums, then the float chain of qgemm_avx2.h) is unchanged, so outputs are bit-identical to
// the plain layout's.
//
// Layout: the matrix's rows (all of them, experts of a stacked tensor included) in tiles of 16; a
// tile holds the tile's 16 rows' bytes (16 · row bytes), block after block. Block b of a tile
// (16 · S bytes, S = 18 for Q4_0, 34 for Q8_0, QS = S − 2 quant bytes per row):
//   [0, 32)   the 16 rows' fp16 scales d, row order
//   [32, ...) the rows' QS quant bytes (as in the GGUF block), row i at 32 + (i % 4)·4·QS + (i / 4)·QS
// so that one 64-byte load (Q4_0) holds rows j, 4+j, 8+j, 12+j (j = i % 4) in its 128-bit lanes and
// two (Q8_0) hold rows (j, 4+j) and (8+j, 12+j) in their 256-bit halves: the lane order of the
// plain kernels' vectors (qgemm_avx512.cc). Same bytes per row as the plain type.
#pragma once
#include <cstdint>

#include "../common.h"

namespace qm::cpu {

constexpr int64_t kR16 = 16;  // rows per tile

// Q4_0 -> Q4_0_R16, Q8_0 -> Q8_0_R16; E_DTYPE for any other type. (is_r16 / plain_of: common.h)
DType r16_of(DType plain);

// Bytes of block b of row i (in its tile): where the row's scale and quants live in the r16 layout.
constexpr int64_t r16_scale_offset(int i) { return 2 * i; }
constexpr int64_t r16_quant_offset(int64_t S, int i) { return 32 + (i % 4) * 4 * (S - 2) + (i / 4) * (S - 2); }

// Tiles [tile0, tile1) of a plain matrix (K columns, rows of row_bytes(plain, K)) rewritten in
// place in the r16 layout. Single-threaded; callers split tiles across the pool.
void pack_r16_tiles(DType plain, uint8_t* data, int64_t K, int64_t tile0, int64_t tile1);

// Rows [n0, n1) of an r16 matrix (K columns) written to out as plain rows (the GGUF bytes).
void unpack_r16_rows(DType packed, const uint8_t* data, int64_t K, int64_t n0, int64_t n1, uint8_t* out);

}  // namespace qm::cpu
