// AVX-512 qgemm (compiled with AVX-512 F/BW/VL/DQ/VNNI flags; only called when the CPU has them).
//
// GEMV kernels of Q4_0 / Q5_0 / Q8_0 with VNNI (vpdpbusd: unsigned x signed bytes, 4 products per
// int32 lane): 16 weight rows per tile, lanes = rows. They follow the arithmetic contract in
// qgemm_avx2.h (exact int32 block sums, then one fixed float chain per output in block order), so
// their outputs are bit-identical to the AVX2 GEMV and many-token kernels: the many-token path of
// this ISA may mix the kernels freely (qgemm_rows_avx512 below), and batch invariance holds. The
// many-token VNNI kernels (lanes = 16 tokens) are in qgemm_gemm_avx512.cc.
//
// Per block and 16 rows: four zmm, vector j holding rows j, 4+j, 8+j, 12+j in its 128-bit lanes
// (Q8_0: pairs of 256-bit rows folded to that layout); vpdpbusd against the broadcast activations
// gives each row 4 int32 partial sums; one transposing unpack/add tree (reduce4) turns the four
// vectors into the 16 rows' block sums in row order; the weight offset (−8 / −16 / −128) comes off
// as a per-token precomputed offset·Σx. Then cvt, one mul (the 16 rows' scales x the block's
// activation scale) and one FMA for all 16 rows. Q4_K / Q5_K / Q6_K: GEMV kernels of the same
// shape (16 rows, lanes = rows) described at ZQ45_K / ZQ6_K below. Other block types reuse the AVX2
// kernels. Q4_0 / Q8_0 weights repacked at load (the r16 layouts of repack.h) run the same kernels
// with the vectors read from one contiguous record per block (PlainBlock vs R16Block below).
// (GCC 12 reports the _mm512_undefined_*() operands inside avx512fintrin.h as "may be used
// uninitialized": a known false positive.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <vector>

#include "matmul.h"
#include "qgemm.h"
#include "qgemm_avx2.h"
#include "qgemm_kernels.h"
#include "quants.h"
#include "repack.h"

namespace qm::cpu {

using namespace qavx2;

namespace {

// The 128-bit chunks at off of rows r[j], r[4+j], r[8+j], r[12+j], in lanes 0..3.
inline __m512i load_rows4(const uint8_t* const* r, int j, int64_t off) {
  __m512i v = _mm512_castsi128_si512(loadu128(r[j] + off));
  v = _mm512_inserti32x4(v, loadu128(r[4 + j] + off), 1);
  v = _mm512_inserti32x4(v, loadu128(r[8 + j] + off), 2);
  return _mm512_inserti32x4(v, loadu128(r[12 + j] + off), 3);
}

// a[j] lane k (4 x int32) = partial sums of row 4k+j  ->  lane 4k+j of the result = that row's sum.
inline __m512i reduce4(const __m512i* a) {
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

// The 16 halves at r[i] + off as 16 floats (assembled in general registers, see gather_h8).
inline __m512 gather_h16(const uint8_t* const* r, int64_t off) {
  uint64_t q[4];
  for (int g = 0; g < 4; ++g) {
    const uint8_t* const* p = r + 4 * g;
    q[g] = uint64_t{ld16(p[0] + off)} | uint64_t{ld16(p[1] + off)} << 16 | uint64_t{ld16(p[2] + off)} << 32 |
           uint64_t{ld16(p[3] + off)} << 48;
  }
  asm("" : "+r"(q[0]), "+r"(q[1]), "+r"(q[2]), "+r"(q[3]));
  const __m128i lo = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(q[0])), static_cast<long long>(q[1]), 1);
  const __m128i hi = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(q[2])), static_cast<long long>(q[3]), 1);
  return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// Rows of a 16-row tile starting at n (rows past n1 repeat row n1 - 1; their outputs are dropped).
inline void tile_rows16(const uint8_t* w, int64_t wrb, int64_t n, int64_t n1, const uint8_t** r) {
  for (int i = 0; i < 16; ++i) r[i] = w + (n + i < n1 ? n + i : n1 - 1) * wrb;
}

// Lanes [lo, hi) of v to y[lo..hi) (0 <= lo < hi <= 16; masked-off lanes never touch memory).
inline void store_rows16(float* y, __m512 v, int64_t lo, int64_t hi) {
  if (lo == 0 && hi >= 16) {
    _mm512_storeu_ps(y, v);
    return;
  }
  const uint32_t m = ((hi >= 16 ? 0x10000u : 1u << hi) - 1) & ~((1u << lo) - 1);
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>(m), v);
}

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m512i cat256(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(lo)), loadu(hi), 1);
}

// Where the GEMV kernels of the 32-element types read one block of a 16-row tile. The kernels see
// the same vectors from either layout: rows4(j) = 16 quant bytes of rows j, 4+j, 8+j, 12+j in the
// 128-bit lanes (Q4_0), rows2(j, h) = 32 quant bytes of rows (j, 4+j) (h = 0) or (8+j, 12+j)
// (h = 1) in the 256-bit halves (Q8_0), scales() = the 16 rows' d in row order.
// Plain GGUF rows: 16 row pointers and the block's byte offset within a row.
struct PlainBlock {
  const uint8_t* const* r;
  int64_t off;
  __m512 scales() const { return gather_h16(r, off); }
  __m512i rows4(int j) const { return load_rows4(r, j, off + 2); }
  __m512i rows2(int j, int h) const { return cat256(r[8 * h + j] + off + 2, r[8 * h + 4 + j] + off + 2); }
};
struct PlainTile {
  const uint8_t* const* r;
  int64_t block_bytes;
  PlainBlock block(int64_t b) const { return {r, b * block_bytes}; }
};
// The r16 layout (repack.h): the block is one record, scales then the quants in those lane orders.
struct R16Block {
  const uint8_t* p;
  __m512 scales() const { return _mm512_cvtph_ps(loadu(p)); }
  __m512i rows4(int j) const { return load512(p + 32 + 64 * j); }
  __m512i rows2(int j, int h) const { return load512(p + 32 + 128 * j + 64 * h); }
};
struct R16Tile {
  const uint8_t* tile;
  int64_t block_bytes;  // of the plain type; a tile block is 16 of them
  R16Block block(int64_t b) const { return {tile + b * kR16 * block_bytes}; }
};

// Bounds: x in [−127, 127]; vpdpbusd lanes sum 4 products of u8 x s8 into int32 (no saturation in
// the VNNI non-"s" form; |partials| <= 8·255·127 here), all far inside int32.

// Q4_0: q = nibble in [0, 15], block sum Σ(q − 8)·x = Σ q·x − 8·Σx.
struct ZQ4_0 {
  static constexpr int64_t kWBytes = 18, kXBytes = 34, kOffset = 8;
  // Σ q·x of one block for the 16 rows (offset not removed), xb: the activation block.
  template <class Block>
  static __m512i block_sums(const Block& blk, const uint8_t* xb) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i xl = _mm512_broadcast_i32x4(loadu128(xb + 2)), xh = _mm512_broadcast_i32x4(loadu128(xb + 18));
    __m512i a[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i q = blk.rows4(j);
      const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      a[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
    }
    return reduce4(a);
  }
};

// Q5_0: q = nibble | (qh bit) << 4 in [0, 31], block sum Σ q·x − 16·Σx. The fifth bits of the four
// rows in a vector become one 64-bit byte mask (lane k = row k's 16 bits), added as +16.
struct ZQ5_0 {
  static constexpr int64_t kWBytes = 22, kXBytes = 34, kOffset = 16;
  static __m512i block_sums(const PlainBlock& blk, const uint8_t* xb) {
    const uint8_t* const* r = blk.r;
    const int64_t off = blk.off;
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    const __m512i xl = _mm512_broadcast_i32x4(loadu128(xb + 2)), xh = _mm512_broadcast_i32x4(loadu128(xb + 18));
    __m512i a[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      uint64_t mlo = 0, mhi = 0;
      for (int k = 0; k < 4; ++k) {
        const uint64_t h = ld32(r[4 * k + j] + off + 2);
        mlo |= (h & 0xFFFF) << (16 * k);
        mhi |= (h >> 16) << (16 * k);
      }
      const __m512i q = load_rows4(r, j, off + 6);
      __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      lo = _mm512_mask_blend_epi8(_cvtu64_mask64(mlo), lo, _mm512_or_si512(lo, b4));
      hi = _mm512_mask_blend_epi8(_cvtu64_mask64(mhi), hi, _mm512_or_si512(hi, b4));
      a[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
    }
    return reduce4(a);
  }
};

// Q8_0: w XOR 0x80 = w + 128 as unsigned bytes, block sum Σ(w + 128)·x − 128·Σx. Two rows per zmm
// (256-bit halves, 8 partials each), folded to the 4-rows-of-4-partials layout of reduce4.
struct ZQ8_0 {
  static constexpr int64_t kWBytes = 34, kXBytes = 34, kOffset = 128;
  template <class Block>
  static __m512i block_sums(const Block& blk, const uint8_t* xb) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    const __m512i xv = _mm512_broadcast_i64x4(loadu(xb + 2));
    __m512i a[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      // rows (j, 4+j) and (8+j, 12+j): lanes [row, row | row, row] of 8 partials each
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(blk.rows2(j, 0), flip), xv);
      const __m512i q = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(blk.rows2(j, 1), flip), xv);
      a[j] = _mm512_add_epi32(_mm512_shuffle_i64x2(p, q, 0x88), _mm512_shuffle_i64x2(p, q, 0xDD));
    }
    return reduce4(a);
  }
};

// The 32-element block types' GEMV for 16 rows: Z::block_sums per block, the offset correction,
// then the contract's float chain (the only place it is written for these types):
// acc = fma(float(isum_b), fl(dw_b · dx_b), acc). The fp16 scale d leads every block.
template <class Z, class Tile>
__m512 gemv16_b32(const Tile& tile, const uint8_t* x, const int32_t* corr, int64_t nb, const uint8_t* pf) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* xb = x + b * Z::kXBytes;
    const auto blk = tile.block(b);
    prefetch_next<16 * Z::kWBytes>(pf, b);
    const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(Z::block_sums(blk, xb), _mm512_set1_epi32(corr[b])));
    const __m512 d = _mm512_mul_ps(blk.scales(), _mm512_set1_ps(h2f(ld16(xb))));
    acc = _mm512_fmadd_ps(s, d, acc);
  }
  return acc;
}

// offset·Σx per block of one Q8_0 activation row (exact int32).
inline void offset_sums(const uint8_t* x, int64_t nb, int32_t offset, int32_t* out) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xv = loadu(x + b * 34 + 2);
    // Σx via vpdpbusd(1, x): 8 lanes of 4-sums
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, xv);
    out[b] = offset * hsum_i32(s);
  }
}

// GEMV driver for 16-row kernels: each 16-row tile of [n0, n1) against every token (tokens in
// tiles of 16, so the activations stay in L2 while the rows stay in L1), prefetching the next tile
// while a tile runs. 32-element block types (Z::kOffset > 0) get each token's offset·Σx per block
// first (shared by every tile); the K-quants take the offsets from the Q8_K bsums themselves.
// kR16Layout: w is in the r16 layout (repack.h; Q4_0 / Q8_0 only): tiles are the layout's aligned
// 16-row tiles, so a range that does not start or end on one computes its edge tiles whole and
// stores only the rows in range. Either way tile n starts at byte n·(row bytes) of w.
template <class Z, bool kR16Layout = false>
void run_gemv16(const void* w, const void* xq, float* y, int64_t T, int64_t nb, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t kTokTile = 16;
  const int64_t wrb = nb * Z::kWBytes, arb = nb * Z::kXBytes;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(xq);
  thread_local std::vector<int32_t> corr;  // per call: no allocation once warm
  if constexpr (Z::kOffset != 0) {
    corr.resize(static_cast<size_t>(T * nb));
    for (int64_t t = 0; t < T; ++t) offset_sums(xb + t * arb, nb, Z::kOffset, corr.data() + t * nb);
  }
  const int64_t start = kR16Layout ? n0 / kR16 * kR16 : n0;
  const int64_t first = std::min<int64_t>(16, n1 - start) * wrb;
  for (int64_t k = 0; k < first; k += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + start * wrb + k), _MM_HINT_T0);
  const uint8_t* rows[16];
  for (int64_t t0 = 0; t0 < T; t0 += kTokTile) {
    const int64_t t1 = std::min(t0 + kTokTile, T);
    for (int64_t n = start; n < n1; n += 16) {
      if constexpr (!kR16Layout) tile_rows16(wb, wrb, n, n1, rows);
      // The next tile, prefetched along (a prefetch never faults). Not for r16: its tiles are one
      // sequential stream that the hardware prefetchers follow, and the software prefetches only
      // took load slots (OLMoE-shape Q4_0 decode on Zen 4, 1 thread: 31 tok/s with them, 36 without).
      const uint8_t* pf = wb + (n + 16) * wrb;
      const int64_t lo = std::max<int64_t>(0, n0 - n), hi = std::min<int64_t>(16, n1 - n);
      for (int64_t t = t0; t < t1; ++t, pf = nullptr) {
        __m512 v;
        if constexpr (kR16Layout)
          v = gemv16_b32<Z>(R16Tile{wb + n * wrb, Z::kWBytes}, xb + t * arb, corr.data() + t * nb, nb, nullptr);
        else if constexpr (Z::kOffset != 0)
          v = gemv16_b32<Z>(PlainTile{rows, Z::kWBytes}, xb + t * arb, corr.data() + t * nb, nb, pf);
        else
          v = Z::gemv16(rows, xb + t * arb, nb, pf);
        store_rows16(y + t * ldy + n, v, lo, hi);
      }
    }
  }
}


// ---- K-quant GEMV (256-element super-blocks, activations Q8_K: d, qs[256], bsums[16]).
//
// 16 rows per tile, processed as 8 row pairs (2p, 2p+1). Per row, vpdpbusd over 64-byte slices of
// the unsigned quants gives int32 partials of 4 products each (one sub-block per 128-bit lane or
// 256-bit half), all small enough for int16; vpackssdw (exact) packs the pair's two rows into one
// vector (per 128-bit lane: words 0..3 row a, 4..7 row b) and vpdpwssd applies the sub-block scales
// from a vector built by vpermw, so each pair ends as one int32 vector (per lane: dwords a a b b).
// Then one shuffle_ps level (4 rows per lane) and two shuffle_i32x4 levels give the 16 rows' sums
// in row order (reduce_pairs). The float chain is the contract's, 16 rows per vector.

constexpr int64_t kQ8KBytes = 292;

// Plain data (no vector constants at namespace scope, see qgemm_k_avx2.cc).
struct alignas(64) KIdx {
  uint16_t w[32];
};
// Q4_K pair scale vectors: word 8L + w of the result = scale σ(L) of row 2h + (w >= 4) of a decoded
// 4-row group (table word 8·row + j); σ = {0,0,2,2}, {1,1,3,3}, {4,4,6,6}, {5,5,7,7} for the
// vpdpbusd outputs of (lo, hi) x (qs[0..63], qs[64..127]).
constexpr KIdx make_q4k_idx(int h, int k) {
  KIdx r{};
  const int base[4] = {0, 1, 4, 5};
  for (int L = 0; L < 4; ++L)
    for (int w = 0; w < 8; ++w) r.w[8 * L + w] = static_cast<uint16_t>(8 * (2 * h + (w >= 4)) + base[k] + (L >= 2 ? 2 : 0));
  return r;
}
constexpr KIdx kQ4KIdx[2][4] = {{make_q4k_idx(0, 0), make_q4k_idx(0, 1), make_q4k_idx(0, 2), make_q4k_idx(0, 3)},
                                {make_q4k_idx(1, 0), make_q4k_idx(1, 1), make_q4k_idx(1, 2), make_q4k_idx(1, 3)}};
// d / dmin of 16 rows from the dword (d | dmin << 16) of row r at dword 4·(r % 4) + r / 4:
// words 0..15 = d, 16..31 = dmin.
constexpr KIdx make_dd_idx() {
  KIdx r{};
  for (int i = 0; i < 16; ++i) {
    r.w[i] = static_cast<uint16_t>(2 * (4 * (i % 4) + i / 4));
    r.w[16 + i] = static_cast<uint16_t>(2 * (4 * (i % 4) + i / 4) + 1);
  }
  return r;
}
constexpr KIdx kDDIdx = make_dd_idx();
alignas(64) constexpr uint32_t kTransIdx[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
// Q6_K: word 8L + w = scale 4k + L of row a (w < 4, table word 4k + L) or row b (16 + 4k + L).
constexpr KIdx make_q6k_idx(int k) {
  KIdx r{};
  for (int L = 0; L < 4; ++L)
    for (int w = 0; w < 8; ++w) r.w[8 * L + w] = static_cast<uint16_t>((w >= 4 ? 16 : 0) + 4 * k + L);
  return r;
}
constexpr KIdx kQ6KIdx[4] = {make_q6k_idx(0), make_q6k_idx(1), make_q6k_idx(2), make_q6k_idx(3)};


// u[p] (p = 0..7): per 128-bit lane dwords (row 2p, row 2p, row 2p+1, row 2p+1) partial sums ->
// lane i of the result = the sum of all of row i's partials.
inline __m512i reduce_pairs(const __m512i* u) {
  __m512i w[4];
  for (int g = 0; g < 4; ++g) {
    const __m512 a = _mm512_castsi512_ps(u[2 * g]), b = _mm512_castsi512_ps(u[2 * g + 1]);
    w[g] = _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(a, b, 0x88)), _mm512_castps_si512(_mm512_shuffle_ps(a, b, 0xDD)));
  }
  const __m512i z01 = _mm512_add_epi32(_mm512_shuffle_i32x4(w[0], w[1], 0x44), _mm512_shuffle_i32x4(w[0], w[1], 0xEE));
  const __m512i z23 = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2], w[3], 0x44), _mm512_shuffle_i32x4(w[2], w[3], 0xEE));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(z01, z23, 0x88), _mm512_shuffle_i32x4(z01, z23, 0xDD));
}

// The 16 bytes at off of rows r[0..3], in lanes 0..3.
inline __m512i load_lanes4(const uint8_t* const* r, int64_t off) {
  __m512i v = _mm512_castsi128_si512(loadu128(r[0] + off));
  v = _mm512_inserti32x4(v, loadu128(r[1] + off), 1);
  v = _mm512_inserti32x4(v, loadu128(r[2] + off), 2);
  return _mm512_inserti32x4(v, loadu128(r[3] + off), 3);
}

// Q4_K (144 bytes: d, dmin, scales[12], qs[128]): q = nibble in [0, 15]; Q5_K (176: d, dmin,
// scales[12], qh[32], qs[128]): q = nibble | qh bit << 4 in [0, 31]. Per row: lo / hi nibbles of
// qs[0..63] are sub-blocks 0 | 2 and 1 | 3 (256-bit halves), of qs[64..127] 4 | 6 and 5 | 7; the
// activations are arranged to match. vpdpbusd partials <= 4·31·127 (int16), scaled pair partials
// <= 4·2·15748·63 (int32). Q5_K: sub-block j's fifth bits are bit j of qh[0..31], moved to bit 4
// by per-half (64-bit lane) shifts of the broadcast qh. summ = Σ_j m_j·(bsum_2j + bsum_2j+1) by vpmaddwd, 4 rows per vector.
// The 6-bit scales / mins of 4 rows are decoded at once (llama.cpp's utmp arithmetic per lane).
template <bool kFive>
struct ZQ45_K {
  static constexpr int64_t kWBytes = kFive ? 176 : 144, kXBytes = kQ8KBytes, kOffset = 0;  // offsets come from the bsums
  static constexpr int64_t kQs = kFive ? 48 : 16;
  // the nibbles of sub-blocks 0|2, 1|3, 4|6, 5|7 with their fifth bits (bit j of qh) at bit 4
  static void five(const uint8_t* qh, __m512i* q) {
    const __m512i hq = _mm512_broadcast_i64x4(loadu(qh)), b4 = _mm512_set1_epi8(0x10);
    q[0] = _mm512_or_si512(q[0], _mm512_and_si512(_mm512_sllv_epi64(hq, _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4)), b4));
    q[1] = _mm512_or_si512(q[1], _mm512_and_si512(_mm512_sllv_epi64(hq, _mm512_set_epi64(1, 1, 1, 1, 3, 3, 3, 3)), b4));
    q[2] = _mm512_or_si512(q[2], _mm512_and_si512(_mm512_srlv_epi64(hq, _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)), b4));
    q[3] = _mm512_or_si512(q[3], _mm512_and_si512(_mm512_srlv_epi64(hq, _mm512_set_epi64(3, 3, 3, 3, 1, 1, 1, 1)), b4));
  }
  static __m512 gemv16(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), zero = _mm512_setzero_si512();
    const __m512i shv = _mm512_set4_epi32(0, 0, 4, 0);  // dword 1 of each lane: u2 >> 4 (mins)
    const __m512i tr = _mm512_load_si512(kTransIdx), ddi = _mm512_load_si512(kDDIdx.w);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<16 * kWBytes>(pf, b);
      const __m512i X[4] = {cat256(xq, xq + 64), cat256(xq + 32, xq + 96), cat256(xq + 128, xq + 192), cat256(xq + 160, xq + 224)};
      const __m256i bs = loadu(xb + 260);
      const __m512i bp = _mm512_broadcast_i32x4(_mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)));
      __m512i hdr[4], mv[4], u[8];
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m512i v = load_lanes4(r + 4 * g, off);  // lane L: d, dmin, scales[12] of row 4g + L
        hdr[g] = v;
        const __m512i s = _mm512_bsrli_epi128(v, 4);  // dwords u0, u1, u2
        const __m512i a = _mm512_and_si512(s, _mm512_set1_epi8(0x3F));                          // s0, m0
        const __m512i c = _mm512_and_si512(_mm512_srli_epi32(s, 2), _mm512_set1_epi8(0x30));    // high bits of s1, m1
        const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi32(s, _MM_PERM_CCCC), shv), m4);
        const __m512i sm = _mm512_unpacklo_epi32(a, _mm512_or_si512(lo, c));  // bytes 0..7 scales, 8..15 mins
        const __m512i sw = _mm512_unpacklo_epi8(sm, zero);
        mv[g] = _mm512_madd_epi16(_mm512_unpackhi_epi8(sm, zero), bp);
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ra = r[4 * g + 2 * h] + off + kQs;
          const uint8_t* rb = r[4 * g + 2 * h + 1] + off + kQs;
          const __m512i qa0 = load512(ra), qa1 = load512(ra + 64), qb0 = load512(rb), qb1 = load512(rb + 64);
          __m512i qa[4] = {_mm512_and_si512(qa0, m4), _mm512_and_si512(_mm512_srli_epi16(qa0, 4), m4),
                                 _mm512_and_si512(qa1, m4), _mm512_and_si512(_mm512_srli_epi16(qa1, 4), m4)};
          __m512i qb[4] = {_mm512_and_si512(qb0, m4), _mm512_and_si512(_mm512_srli_epi16(qb0, 4), m4),
                                 _mm512_and_si512(qb1, m4), _mm512_and_si512(_mm512_srli_epi16(qb1, 4), m4)};
          if (kFive) {
            five(ra - 32, qa);
            five(rb - 32, qb);
          }
          __m512i t = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qa[k], X[k]);
            const __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qb[k], X[k]);
            t = _mm512_dpwssd_epi32(t, _mm512_packs_epi32(pa, pb), _mm512_permutexvar_epi16(_mm512_load_si512(kQ4KIdx[h][k].w), sw));
          }
          u[2 * g + h] = t;
        }
      }
      const __m512i isum = reduce_pairs(u);
      const __m512i summ = _mm512_permutexvar_epi32(tr, reduce4(mv));
      // dword 0 of each lane of hdr[g] = (d | dmin << 16) of row 4g + L -> rows L, 4+L, 8+L, 12+L
      const __m512i t = _mm512_unpacklo_epi64(_mm512_unpacklo_epi32(hdr[0], hdr[1]), _mm512_unpacklo_epi32(hdr[2], hdr[3]));
      const __m512i dd = _mm512_permutexvar_epi16(ddi, t);
      const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(dd)), dmw = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(dd, 1));
      const __m512 dx = _mm512_set1_ps(ldf(xb));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dx), acc);
      acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dmw, dx), acc);
    }
    return acc;
  }
};

// Q6_K (210 bytes: ql[128], qh[64], scales[16] int8, d): q in [0, 63] with the offset −32 folded
// into the vpdpbusd accumulators (start: −32·Σx per 4 activations), so each partial is
// Σ(q − 32)·x over 4 products, |.| <= 4·32·127 (int16). One 128-bit lane = one 16-element
// sub-block. Signed int8 scales: scaled pair partials <= 4·2·16256·128 (int32).
struct ZQ6_K {
  static constexpr int64_t kWBytes = 210, kXBytes = kQ8KBytes, kOffset = 0;  // offsets come from the bsums
  static __m512 gemv16(const uint8_t* const* r, const uint8_t* x, int64_t nb, const uint8_t* pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), ones = _mm512_set1_epi8(1);
    const __m512i shl = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4), shr = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* xb = x + b * kXBytes;
      const uint8_t* xq = xb + 4;
      const int64_t off = b * kWBytes;
      prefetch_next<16 * kWBytes>(pf, b);
      __m512i X[4], XS[4];
      for (int k = 0; k < 4; ++k) {
        X[k] = load512(xq + 64 * k);
        XS[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, X[k]), 5));
      }
      __m512i u[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        const uint8_t* ra = r[2 * p] + off;
        const uint8_t* rb = r[2 * p + 1] + off;
        const __m512i sw = _mm512_cvtepi8_epi16(_mm256_set_m128i(loadu128(rb + 192), loadu128(ra + 192)));
        __m512i da[4], db[4];
#pragma GCC unroll 2
        for (int c = 0; c < 2; ++c) {
          for (int i = 0; i < 2; ++i) {
            const uint8_t* rr = i ? rb : ra;
            const __m512i l = load512(rr + 64 * c);
            const __m512i hq = _mm512_broadcast_i64x4(loadu(rr + 128 + 32 * c));
            const __m512i qlo = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi64(hq, shl), m30));
            const __m512i qhi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(_mm512_srlv_epi64(hq, shr), m30));
            __m512i* d = i ? db : da;
            d[2 * c] = _mm512_dpbusd_epi32(XS[2 * c], qlo, X[2 * c]);
            d[2 * c + 1] = _mm512_dpbusd_epi32(XS[2 * c + 1], qhi, X[2 * c + 1]);
          }
        }
        __m512i t = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k)
          t = _mm512_dpwssd_epi32(t, _mm512_packs_epi32(da[k], db[k]), _mm512_permutexvar_epi16(_mm512_load_si512(kQ6KIdx[k].w), sw));
        u[p] = t;
      }
      const __m512 d = _mm512_mul_ps(gather_h16(r, off + 208), _mm512_set1_ps(ldf(xb)));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(reduce_pairs(u)), d, acc);
    }
    return acc;
  }
};


}  // namespace

// qgemm_gemm_avx512.cc
int64_t qgemm_gemm_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                          int64_t n0, int64_t n1);

void qgemm_rows_avx512(DType wtype, const void* w, const void* xq, float* y, int64_t T, int64_t K, int64_t ldy,
                       int64_t n0, int64_t n1) {
  switch (wtype) {
    case DType::F32: case DType::F16: case DType::BF16: {
      MatmulArgs a{static_cast<const float*>(xq), w, wtype, y, T, K, ldy};
      matmul_rows_avx512(a, n0, n1);
      return;
    }
    default: break;
  }
  // Every kernel below obeys the contract of qgemm_avx2.h, so a token's bits do not depend on which
  // one computes it. 32-element block types and Q4_K / Q5_K / Q6_K: groups of 16 tokens in the VNNI
  // many-token kernel, the rest (fewer than a padded group is worth; decode) in the GEMV kernels
  // (AVX-512 for Q4_0 / Q5_0 / Q8_0 / Q4_K / Q5_K / Q6_K, else AVX2). Q2_K / Q3_K: the AVX2 kernels.
  // The r16 layouts (repack.h) of Q4_0 / Q8_0 go through the same two kernels.
  switch (wtype) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::Q4_1: case DType::Q5_1: break;
    case DType::Q4_0_R16: case DType::Q8_0_R16: break;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: break;
    default: return qgemm_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
  const int64_t done = qgemm_gemm_avx512(wtype, w, xq, y, T, K, ldy, n0, n1);
  if (done >= T) return;
  xq = static_cast<const uint8_t*>(xq) + done * act_row_bytes(wtype, K);
  y += done * ldy;
  T -= done;
  const int64_t nb = K / 32;
  switch (wtype) {
    case DType::Q4_K: return run_gemv16<ZQ45_K<false>>(w, xq, y, T, K / QK_K, ldy, n0, n1);
    case DType::Q5_K: return run_gemv16<ZQ45_K<true>>(w, xq, y, T, K / QK_K, ldy, n0, n1);
    case DType::Q6_K: return run_gemv16<ZQ6_K>(w, xq, y, T, K / QK_K, ldy, n0, n1);
    case DType::Q4_0: return run_gemv16<ZQ4_0>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q5_0: return run_gemv16<ZQ5_0>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q8_0: return run_gemv16<ZQ8_0>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q4_0_R16: return run_gemv16<ZQ4_0, true>(w, xq, y, T, nb, ldy, n0, n1);
    case DType::Q8_0_R16: return run_gemv16<ZQ8_0, true>(w, xq, y, T, nb, ldy, n0, n1);
    default: return qgemm_rows_avx2(wtype, w, xq, y, T, K, ldy, n0, n1);
  }
}

void quantize_act_row_avx512(DType wtype, const float* x, void* out, int64_t K) {
  quantize_act_row_avx2(wtype, x, out, K);
}

}  // namespace qm::cpu
