// Tensor and scratch buffers, with a small per-thread cache of freed ones.
//
// Decode makes the same few buffer sizes over and over (a dozen activations per layer, every
// step). Straight from the system allocator that cost page faults on every step: glibc's
// aligned_alloc fragments its arena with the tensors' small bookkeeping objects (alive until the
// GC), so the top of the heap is trimmed and refaulted (an `add` making an 8 KB output: 7.2 us per
// call, ~1 of it the call itself); and its dynamic mmap/trim thresholds, raised by any large free
// in the process, kept 64 KB batch-8 activations resident in the worker's arena (a 64 MB arena
// fully resident after a batch-8 decode). Mapping each buffer anew instead made batch-8 decode
// 12 % slower (page faults again). So a freed buffer is kept for an allocation of exactly the same
// size on the thread that freed it. Buffers of kMapFromBytes and more are anonymous mappings of
// their own (given back whole); smaller ones come from aligned_alloc. The cache is bounded twice:
// kCacheBytes in all, and an entry not reused within kMaxAge later allocations or frees on its
// thread is released (so a prefill's 2 MB buffers go back to the system a few decode steps later).
#pragma once
#include <cstddef>

namespace qm {

constexpr size_t kMapFromBytes = size_t(64) << 10;

// A 64-byte aligned buffer of `bytes` (> 0): a cached one of that size when there is one (zeroed
// first when `zeroed`, unless it is a mapping: then a fresh mapping, whose pages read as zero and
// cost nothing until written). nullptr when out of memory.
void* take_buffer(size_t bytes, bool zeroed);

// Gives a buffer from take_buffer back (same `bytes`): cached on this thread, or released.
void give_buffer(void* p, size_t bytes);

// What take_buffer(bytes) really allocates: whole 64-byte lines (also the cache's key).
inline size_t buffer_bytes(size_t bytes) { return (bytes + 63) / 64 * 64; }

// True for the buffers of take_buffer(bytes) that are mappings of their own (whole pages can be
// returned with madvise).
inline bool is_mapped_buffer(size_t bytes) { return buffer_bytes(bytes) >= kMapFromBytes; }

}  // namespace qm
