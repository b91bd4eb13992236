// Anonymous mappings for tensor buffers, with a small per-thread cache of freed ones.
//
// Tensors of 64 KB and more get mappings of their own rather than malloc: glibc's dynamic mmap /
// trim thresholds rise with the first large free anywhere in the process, after which freed
// activations stay in the thread's arena (a 64 MB arena fully resident after a batch-8 decode,
// and once ~1 GB after a 512-token prefill). A fresh mapping costs a page fault per page on every
// step, though (batch-8 decode 12 % slower with 64 KB activations mapped anew each time), so the
// mappings a thread frees are kept for reuse by an allocation of exactly the same size, as decode
// and prefill steps make the same sizes over and over. The cache is bounded twice: kCacheBytes in
// all, and an entry not reused within kMaxAge later allocations on its thread is unmapped (so a prefill's 2 MB
// buffers go back to the system a few decode steps later).
#pragma once
#include <cstddef>

namespace qm {

constexpr size_t kMapFromBytes = size_t(64) << 10;

// A mapping of `bytes` (>= kMapFromBytes): a cached one of that exact size when `zeroed` is
// false and there is one, else a fresh one (whose pages read as zero). nullptr when out of memory.
void* take_mapping(size_t bytes, bool zeroed);

// Counts an allocation of any size on this thread (the clock of the cache's age limit).
void count_allocation();

// Gives a mapping from take_mapping back: cached on this thread, or unmapped.
void give_mapping(void* p, size_t bytes);

}  // namespace qm
