#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QM_CPU_RELAX() _mm_pause()
#else
#define QM_CPU_RELAX() std::this_thread::yield()
#endif

namespace qm {

int hardware_threads() {
  // Asked once: glibc answers hardware_concurrency() by opening and parsing
  // /sys/devices/system/cpu/online on every call, and every op's default thread count asks. On a
  // 16-layer model that was ~250 open/read/close syscalls per decoded token (a third of the time
  // of a tiny model's decode step).
  static const int n = [] {
    unsigned c = std::thread::hardware_concurrency();
    return c == 0 ? 1 : static_cast<int>(c);
  }();
  return n;
}

namespace {

// Decode issues hundreds of small parallel regions per token, so a condition-variable wake-up
// (tens of microseconds) per region would dominate. Workers and the caller spin briefly on an
// atomic before sleeping.
constexpr auto kSpin = std::chrono::microseconds(300);

// Spins with pause for a short while, then yields the core between checks (so that on an
// oversubscribed machine a spinning worker does not starve the thread it is waiting for), then
// gives up so the caller can sleep on a condition variable.
template <class Pred>
bool spin_until(Pred pred) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    if (i < 2048) {
      QM_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin) return false;
  }
}

class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker_loop(i + 1); });
  }

  int workers() const { return static_cast<int>(threads_.size()); }

  void run(int64_t n_tasks, int n_threads, const std::function<void(int64_t, int)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      next_.store(0);
      error_ = nullptr;
      active_workers_.store(n_threads - 1);
      pending_.store(n_threads - 1);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(0);
    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [this] { return pending_.load() == 0; });
    }
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = nullptr;
      err = error_;
    }
    if (err) std::rethrow_exception(err);
  }

 private:
  void work(int thread) {
    try {
      for (;;) {
        int64_t t = next_.fetch_add(1);
        if (t >= n_tasks_) break;
        (*fn_)(t, thread);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_tasks_);  // stop handing out tasks
    }
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(changed)) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, changed);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (index > active_workers_.load()) continue;  // not needed for this job
      work(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_workers_{0}, pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::exception_ptr error_;
};

ThreadPool& pool() {
  // Created on first use and deliberately never destroyed: Node worker threads may call in
  // while the process exits, and joining spinning workers at exit buys nothing.
  static ThreadPool* p = new ThreadPool(std::max(0, hardware_threads() - 1));
  return *p;
}

}  // namespace

int effective_threads(int64_t n_tasks, int max_threads) {
  int n = std::max(1, max_threads);
  n = std::min(n, pool().workers() + 1);
  if (n_tasks < n) n = static_cast<int>(std::max<int64_t>(1, n_tasks));
  return n;
}

void parallel_for(int64_t n_tasks, int max_threads, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  int n = effective_threads(n_tasks, max_threads);
  if (n == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  pool().run(n_tasks, n, fn);
}

}  // namespace qm
