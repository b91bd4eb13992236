#include "buffer_cache.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

namespace qm {

namespace {

constexpr size_t kCacheBytes = size_t(32) << 20;
constexpr size_t kMaxEntryBytes = size_t(8) << 20;
// Age is counted in takes and gives on the thread (an OLMoE-shape decode step makes ~150 tensors),
// so a thread that only frees buffers (made elsewhere) still ages its entries out.
constexpr uint64_t kMaxAge = 4096;
constexpr uint64_t kSweepEvery = 256;  // ticks between two sweeps for old entries

// bytes: a multiple of 64
void* allocate(size_t bytes) {
  if (is_mapped_buffer(bytes)) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  return std::aligned_alloc(64, bytes);
}

void release(void* p, size_t bytes) {
  if (is_mapped_buffer(bytes))
    ::munmap(p, bytes);
  else
    std::free(p);
}

class BufferCache {
 public:
  ~BufferCache();
  void* take(size_t bytes);
  bool give(void* p, size_t bytes);

 private:
  struct Entry {
    void* p;
    uint64_t given_at;  // ticks_ when it was given back
  };
  void tick() {
    if (++ticks_ % kSweepEvery == 0) sweep();
  }
  void sweep();
  std::unordered_map<size_t, std::vector<Entry>> free_;  // by buffer_bytes(); the newest last
  size_t total_ = 0;
  uint64_t ticks_ = 0;  // take() and give() calls
};

// Trivially destructible, so a buffer freed during this thread's exit, after the cache is gone,
// can still ask whether the cache is alive.
thread_local bool tls_cache_gone = false;
thread_local BufferCache tls_cache;

BufferCache::~BufferCache() {
  for (auto& [bytes, list] : free_)
    for (const Entry& e : list) release(e.p, bytes);
  tls_cache_gone = true;
}

void BufferCache::sweep() {
  for (auto& [bytes, list] : free_) {
    size_t keep = 0;
    for (const Entry& e : list) {
      if (ticks_ - e.given_at > kMaxAge) {
        release(e.p, bytes);
        total_ -= bytes;
      } else {
        list[keep++] = e;
      }
    }
    list.resize(keep);
  }
}

void* BufferCache::take(size_t bytes) {
  tick();
  auto it = free_.find(bytes);
  if (it == free_.end() || it->second.empty()) return nullptr;
  void* p = it->second.back().p;
  it->second.pop_back();
  total_ -= bytes;
  return p;
}

bool BufferCache::give(void* p, size_t bytes) {
  tick();
  if (bytes > kMaxEntryBytes || total_ + bytes > kCacheBytes) return false;
  free_[bytes].push_back({p, ticks_});
  total_ += bytes;
  return true;
}

}  // namespace

void* take_buffer(size_t bytes, bool zeroed) {
  const size_t key = buffer_bytes(bytes);
  const bool mapped = is_mapped_buffer(key);
  if (!tls_cache_gone && !(zeroed && mapped)) {
    if (void* p = tls_cache.take(key)) {
      if (zeroed) std::memset(p, 0, key);
      return p;
    }
  }
  void* p = allocate(key);
  if (p && zeroed && !mapped) std::memset(p, 0, key);
  return p;
}

void give_buffer(void* p, size_t bytes) {
  const size_t key = buffer_bytes(bytes);
  if (tls_cache_gone || !tls_cache.give(p, key)) release(p, key);
}

}  // namespace qm
