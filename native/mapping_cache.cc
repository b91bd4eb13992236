#include "mapping_cache.h"

#include <sys/mman.h>

#include <cstdint>
#include <vector>

namespace qm {

namespace {

constexpr size_t kCacheBytes = size_t(32) << 20;
constexpr size_t kMaxEntryBytes = size_t(8) << 20;
constexpr uint64_t kMaxAge = 4096;  // allocations (an OLMoE-shape decode step makes ~150 tensors)

class MappingCache {
 public:
  ~MappingCache();
  void tick() {
    ++ticks_;
    evict_old();
  }
  void* take(size_t bytes);
  bool give(void* p, size_t bytes);

 private:
  struct Entry {
    void* p;
    size_t bytes;
    uint64_t given_at;  // ticks_ when it was given back
  };
  void evict_old();
  void erase(size_t i);
  std::vector<Entry> entries_;  // oldest first
  size_t total_ = 0;
  uint64_t ticks_ = 0;  // allocations of any size on this thread
};

// Trivially destructible, so a buffer freed during this thread's exit, after the cache is gone,
// can still ask whether the cache is alive.
thread_local bool tls_cache_gone = false;
thread_local MappingCache tls_cache;

MappingCache::~MappingCache() {
  for (const Entry& e : entries_) ::munmap(e.p, e.bytes);
  tls_cache_gone = true;
}

void MappingCache::erase(size_t i) {
  ::munmap(entries_[i].p, entries_[i].bytes);
  total_ -= entries_[i].bytes;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
}

void MappingCache::evict_old() {
  while (!entries_.empty() && ticks_ - entries_.front().given_at > kMaxAge) erase(0);
}

void* MappingCache::take(size_t bytes) {
  tick();
  for (size_t i = entries_.size(); i-- > 0;) {  // the most recently freed first: still in cache
    if (entries_[i].bytes == bytes) {
      void* p = entries_[i].p;
      total_ -= bytes;
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      return p;
    }
  }
  return nullptr;
}

bool MappingCache::give(void* p, size_t bytes) {
  if (bytes > kMaxEntryBytes) return false;
  evict_old();
  while (total_ + bytes > kCacheBytes && !entries_.empty()) erase(0);
  entries_.push_back({p, bytes, ticks_});
  total_ += bytes;
  return true;
}

}  // namespace

void* take_mapping(size_t bytes, bool zeroed) {
  if (!zeroed && !tls_cache_gone) {
    if (void* p = tls_cache.take(bytes)) return p;
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void count_allocation() {
  if (!tls_cache_gone) tls_cache.tick();
}

void give_mapping(void* p, size_t bytes) {
  if (tls_cache_gone || !tls_cache.give(p, bytes)) ::munmap(p, bytes);
}

}  // namespace qm
