// The one process-wide CPU thread pool shared by every CPU kernel. A call says how many threads
// it may use; the calling thread always takes part (it never sits idle waiting for workers).
// Jobs from different JS threads (workers) are serialised: one parallel region at a time.
#pragma once
#include <cstdint>
#include <functional>

namespace qm {

// Number of hardware threads (at least 1).
int hardware_threads();

// Runs fn(task, thread) for task in [0, n_tasks) on up to max_threads threads (including the
// caller). `thread` is a dense index in [0, threads used) for per-thread scratch space.
// Tasks are claimed dynamically; the order in which tasks run must not affect results.
void parallel_for(int64_t n_tasks, int max_threads, const std::function<void(int64_t task, int thread)>& fn);

// How many threads parallel_for would use for this call.
int effective_threads(int64_t n_tasks, int max_threads);

}  // namespace qm
