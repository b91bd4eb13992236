// Standalone single-thread microbenchmark of the qgemm kernels (native/cpu/qgemm*.cc), without
// Node: per weight type, GEMV (T=1) in GB/s of weight bytes read per core with the weights hot in
// the caches ("hot": one matrix, which stays in L2/L3) and streamed from DRAM ("cold": a rotation of
// copies totalling 256 MiB), and GEMM (several T) in GFLOP/s. Times are thread CPU time
// (CLOCK_THREAD_CPUTIME_ID), so other processes on a shared machine disturb them less; each figure
// is the median ("med") and the minimum ("best") of many short samples. Also prints the cost of
// quantizing one activation row. QGEMM_MICRO_CPU=<dir> (see qgemm_micro.sh) builds another version
// of native/cpu for side-by-side comparisons.
//
// Build and run (from the repository root): sh bench/qgemm_micro.sh [args]
// Arguments: [types=q4_0,q8_0,q4_k,q6_k] [N=1024] [K=2048] [T list=64,256,512] [isa=avx2|scalar]
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../native/common.h"
#include "../native/cpu/qgemm.h"
#include "../native/cpu/quants.h"
#include "../native/cpu_features.h"
#include "micro_util.h"

using namespace qm;


// Seconds per call of fn: the median and the minimum over `samples` samples of ~min_sample s each
// (the minimum is the least disturbed by other processes on a shared machine).
struct Timing {
  double median, best;
};
template <class F>
static Timing time_it(F&& fn, int samples = 31, double min_sample = 0.004) {
  fn();
  int reps = 1;
  for (;;) {
    const double t0 = thread_seconds();
    for (int i = 0; i < reps; ++i) fn();
    if (thread_seconds() - t0 >= min_sample || reps >= (1 << 20)) break;
    reps *= 2;
  }
  std::vector<double> s;
  for (int r = 0; r < samples; ++r) {
    const double t0 = thread_seconds();
    for (int i = 0; i < reps; ++i) fn();
    s.push_back((thread_seconds() - t0) / reps);
  }
  std::sort(s.begin(), s.end());
  return {s[s.size() / 2], s[0]};
}


int main(int argc, char** argv) {
  const std::vector<std::string> types = split_list(argc > 1 ? argv[1] : "q4_0,q8_0,q4_k,q6_k");
  const int64_t N = argc > 2 ? std::atoll(argv[2]) : 1024;
  const int64_t K = argc > 3 ? std::atoll(argv[3]) : 2048;
  std::vector<int64_t> Ts;
  for (auto& t : split_list(argc > 4 ? argv[4] : "64,256,512")) Ts.push_back(std::atoll(t.c_str()));
  const std::string isa = argc > 5 ? argv[5] : "avx2";
  set_active_isa(isa == "scalar" ? Isa::Scalar : isa == "avx512" ? Isa::Avx512 : Isa::Avx2);
  const int64_t Tmax = std::max<int64_t>(1, Ts.empty() ? 1 : *std::max_element(Ts.begin(), Ts.end()));

  uint32_t s = 12345;
  auto rnd = [&]() {
    s = s * 1664525u + 1013904223u;
    return (s / 4294967296.0 - 0.5) * 0.1;
  };
  std::vector<float> wf(static_cast<size_t>(N * K)), xf(static_cast<size_t>(Tmax * K));
  for (auto& v : wf) v = static_cast<float>(rnd());
  for (auto& v : xf) v = static_cast<float>(rnd());

  std::printf("isa %s, [N,K] = [%lld,%lld], single thread, thread CPU time (median and best of many samples)\n", isa.c_str(),
              static_cast<long long>(N), static_cast<long long>(K));
  std::printf("%-6s | %11s | %11s | %10s | %12s", "type", "GEMV GB/s", "cold GB/s", "+actq GB/s", "actq us/row");
  for (int64_t T : Ts) std::printf(" | T=%-4lld GFLOP/s", static_cast<long long>(T));
  std::printf("\n%-6s | %5s %5s | %5s %5s | %10s | %12s", "", "med", "best", "med", "best", "med", "med");
  for (size_t i = 0; i < Ts.size(); ++i) std::printf(" | %7s %7s", "med", "best");
  std::printf("\n");
  for (const auto& tn : types) {
    const DTypeInfo* info = dtype_by_name(tn);
    if (!info || !cpu::qgemm_supports(info->type)) {
      std::printf("%s: unsupported\n", tn.c_str());
      continue;
    }
    const DType wt = info->type;
    const int64_t wrb = row_bytes(wt, K), arb = cpu::act_row_bytes(wt, K);
    std::vector<uint8_t> w(static_cast<size_t>(N * wrb) + 64), xq(static_cast<size_t>(Tmax * arb) + 64);
    for (int64_t n = 0; n < N; ++n) cpu::quantize_row_ref(wt, wf.data() + n * K, w.data() + n * wrb, K);
    for (int64_t t = 0; t < Tmax; ++t) cpu::quantize_act_row(wt, xf.data() + t * K, xq.data() + t * arb, K);
    std::vector<float> y(static_cast<size_t>(Tmax * N));
    const Timing tv = time_it([&] { cpu::qgemm_rows(wt, w.data(), xq.data(), y.data(), 1, K, N, 0, N); });
    // Cold: rotate through copies of the matrix totalling >= 256 MiB (weights come from DRAM).
    const int64_t ncopy = std::max<int64_t>(2, (int64_t{256} << 20) / (N * wrb));
    std::vector<std::vector<uint8_t>> copies(static_cast<size_t>(ncopy), w);
    size_t next = 0;
    const Timing tc = time_it([&] {
      cpu::qgemm_rows(wt, copies[next].data(), xq.data(), y.data(), 1, K, N, 0, N);
      next = (next + 1) % copies.size();
    });
    copies.clear();
    const Timing tq = time_it([&] { cpu::quantize_act_row(wt, xf.data(), xq.data(), K); });
    std::printf("%-6s | %5.2f %5.2f | %5.2f %5.2f | %10.2f | %12.2f", tn.c_str(), N * wrb / tv.median / 1e9,
                N * wrb / tv.best / 1e9, N * wrb / tc.median / 1e9, N * wrb / tc.best / 1e9,
                N * wrb / (tv.median + tq.median) / 1e9, tq.median * 1e6);
    for (int64_t T : Ts) {
      const Timing tg = time_it([&] { cpu::qgemm_rows(wt, w.data(), xq.data(), y.data(), T, K, N, 0, N); }, 9, 0.02);
      std::printf(" | %7.1f %7.1f", 2.0 * T * N * K / tg.median / 1e9, 2.0 * T * N * K / tg.best / 1e9);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
