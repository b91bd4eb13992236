// r16 layouts (repack.h): pack in place, unpack to plain rows. Byte shuffles only (load time and
// the many-token GEMM's row staging), portable C++.
#include "repack.h"

#include <cstring>
#include <vector>

namespace qm::cpu {

namespace {

// Bytes per 32-element block of the plain type.
int64_t block_bytes(DType plain) {
  switch (plain) {
    case DType::Q4_0: return 18;
    case DType::Q8_0: return 34;
    default: fail("E_DTYPE", "r16 layout: only q4_0 and q8_0 weights can be repacked");
  }
}

}  // namespace

DType r16_of(DType plain) {
  block_bytes(plain);  // E_DTYPE
  return plain == DType::Q4_0 ? DType::Q4_0_R16 : DType::Q8_0_R16;
}

void pack_r16_tiles(DType plain, uint8_t* data, int64_t K, int64_t tile0, int64_t tile1) {
  const int64_t S = block_bytes(plain), nb = K / 32, wrb = nb * S, tb = kR16 * wrb;
  std::vector<uint8_t> src(static_cast<size_t>(tb));  // the tile's plain rows
  for (int64_t t = tile0; t < tile1; ++t) {
    uint8_t* tile = data + t * tb;
    std::memcpy(src.data(), tile, static_cast<size_t>(tb));
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = tile + b * kR16 * S;
      for (int i = 0; i < kR16; ++i) {
        const uint8_t* row_blk = src.data() + i * wrb + b * S;
        std::memcpy(blk + r16_scale_offset(i), row_blk, 2);
        std::memcpy(blk + r16_quant_offset(S, i), row_blk + 2, static_cast<size_t>(S - 2));
      }
    }
  }
}

void unpack_r16_rows(DType packed, const uint8_t* data, int64_t K, int64_t n0, int64_t n1, uint8_t* out) {
  const int64_t S = block_bytes(plain_of(packed)), nb = K / 32, wrb = nb * S, tb = kR16 * wrb;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* tile = data + (n / kR16) * tb;
    const int i = static_cast<int>(n % kR16);
    uint8_t* o = out + (n - n0) * wrb;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = tile + b * kR16 * S;
      std::memcpy(o + b * S, blk + r16_scale_offset(i), 2);
      std::memcpy(o + b * S + 2, blk + r16_quant_offset(S, i), static_cast<size_t>(S - 2));
    }
  }
}

}  // namespace qm::cpu
