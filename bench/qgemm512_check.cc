// Standalone check and A/B timing of the AVX-512 VNNI many-token qgemm (native/cpu/qgemm_gemm_avx512.cc:
// Q4_K, Q5_K, Q6_K, Q4_0, Q8_0, Q5_0, Q4_1, Q5_1) against the AVX2 kernels, without Node.
//
// Build and run (from the repository root):
//   QGEMM_MICRO_MAIN=bench/qgemm512_check.cc sh bench/qgemm_micro.sh check [iterations=300]
//   QGEMM_MICRO_MAIN=bench/qgemm512_check.cc sh bench/qgemm_micro.sh bench [types] [N=1024] [K=2048] [T list]
//
// check: random weights (the reference quantizers on random floats, or random quant bytes, Q8_0 with
// −128s) and activations, random shapes (K = 32..4096, N not a multiple of any tile, T = 1..50 and
// sometimes 100..800, sub-ranges [n0, n1), ldy > N): the tokens qgemm_gemm_avx512 computes must be
// bit-identical (memcmp) to qgemm_rows_avx2 on all T (AVX2 GEMM + GEMV) and to the AVX2 GEMV one
// token at a time; nothing else in y may be written; avx512 then qgemm_rows_avx2 on the rest must
// equal qgemm_rows_avx2, and so must the whole qgemm_rows_avx512 dispatch. First, decode shapes
// (T = 1..7, check_small_t): qgemm_rows_avx512 against qgemm_rows_avx2. Exit status 1 on any failure.
// bench: GFLOP/s (single thread, thread CPU time, interleaved samples, median and best) of
// qgemm_rows_avx2 vs qgemm_gemm_avx512 + qgemm_rows_avx2 on the tokens it leaves.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../native/common.h"
#include "../native/cpu/qgemm.h"
#include "../native/cpu/qgemm_kernels.h"
#include "../native/cpu/quants.h"
#include "../native/cpu_features.h"
#include "micro_util.h"

namespace qm::cpu {
int64_t qgemm_gemm_avx2(DType, const void*, const void*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
int64_t qgemm_gemm_avx512(DType, const void*, const void*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
}  // namespace qm::cpu

using namespace qm;

namespace {


int check(int iters) {
  std::mt19937_64 rng(42);
  auto urand = [&](float a) { return std::uniform_real_distribution<float>(-a, a)(rng); };
  const DType types[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_0, DType::Q8_0, DType::Q5_0, DType::Q4_1, DType::Q5_1};
  const char* names[] = {"q4_k", "q5_k", "q6_k", "q4_0", "q8_0", "q5_0", "q4_1", "q5_1"};
  const int64_t Ks[] = {256, 512, 768, 1024, 1280, 1536, 2048, 2304, 3072, 4096};
  long long fails = 0, checked = 0, tokens = 0;
  for (int ti = 0; ti < 8; ++ti) {
    const DType wt = types[ti];
    long long tfails = 0, tchecked = 0;
    for (int it = 0; it < iters; ++it) {
      int64_t K = rng() % 8 == 0 ? 4096 : Ks[rng() % 10];
      if (ti >= 3 && rng() % 2) K = 32 * (1 + rng() % 40);
      // mostly T = 1..50; sometimes many groups (several transposed batches: 18 groups each at K = 4096)
      const bool big = rng() % 8 == 0;
      const int64_t N = 1 + static_cast<int64_t>(rng() % (K >= 2048 ? 40 : 70)) / (big ? 2 : 1);
      const int64_t T = big ? 100 + rng() % 700 : 1 + rng() % 50;
      const int64_t n0 = rng() % 3 == 0 ? static_cast<int64_t>(rng() % N) : 0;
      const int64_t n1 = rng() % 3 == 0 ? n0 + 1 + static_cast<int64_t>(rng() % (N - n0)) : N;
      const int64_t ldy = N + (rng() % 2 ? static_cast<int64_t>(rng() % 13) : 0);
      const int mode = rng() % 3;  // 0: quantized random floats; 1: random quant bytes; 2: with outliers
      const int64_t wrb = row_bytes(wt, K), arb = cpu::act_row_bytes(wt, K);
      std::vector<uint8_t> w(N * wrb + 64), xq(T * arb + 64);
      std::vector<float> xf(K), wf(K);
      for (int64_t n = 0; n < N; ++n) {
        const float sc = std::exp(urand(3.f));
        for (auto& v : wf) v = urand(sc) * (mode == 2 && rng() % 50 == 0 ? 30.f : 1.f);
        cpu::quantize_row_ref(wt, wf.data(), w.data() + n * wrb, K);
        if (mode == 1) {  // random quant bytes, the quantizer's fp16 scales (and mins)
          const bool kq = ti < 3;
          const int64_t nbk = K / (kq ? 256 : 32), bb = wrb / nbk;
          const int64_t lo = kq ? (wt == DType::Q6_K ? 0 : 4) : (wt == DType::Q4_1 || wt == DType::Q5_1) ? 4 : 2;
          const int64_t hi = wt == DType::Q6_K ? 208 : bb;
          for (int64_t b = 0; b < nbk; ++b) {
            for (int64_t i = lo; i < hi; ++i) w[n * wrb + b * bb + i] = static_cast<uint8_t>(rng());
            if (wt == DType::Q8_0) w[n * wrb + b * bb + 2 + rng() % 32] = 0x80;  // −128
          }
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        const float sc = std::exp(urand(4.f));
        for (auto& v : xf) v = urand(sc) * (mode == 2 && rng() % 40 == 0 ? 50.f : 1.f);
        if (mode == 2 && rng() % 5 == 0) xf[rng() % K] = 0;
        cpu::quantize_act_row(wt, xf.data(), xq.data() + t * arb, K);
      }
      const float sentinel = -12345.678f;
      std::vector<float> ya(T * ldy, sentinel), yb(T * ldy, sentinel), yg(T * ldy, sentinel), yc(T * ldy, sentinel);
      const int64_t done = cpu::qgemm_gemm_avx512(wt, w.data(), xq.data(), ya.data(), T, K, ldy, n0, n1);
      cpu::qgemm_rows_avx2(wt, w.data(), xq.data(), yb.data(), T, K, ldy, n0, n1);
      for (int64_t t = 0; t < T; ++t)  // GEMV, one token at a time
        cpu::qgemm_rows_avx2(wt, w.data(), xq.data() + t * arb, yg.data() + t * ldy, 1, K, ldy, n0, n1);
      if (done < 0 || done > T || done < T - 15) {
        std::printf("%s: bad token count %lld of T = %lld\n", names[ti], static_cast<long long>(done), static_cast<long long>(T));
        ++tfails;
      }
      tokens += done;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < ldy; ++n) {
          const float a = ya[t * ldy + n];
          if (!(t < done && n >= n0 && n < n1)) {
            if (std::memcmp(&a, &sentinel, 4) != 0) {
              if (tfails < 10) std::printf("%s: wrote outside its range at t=%lld n=%lld\n", names[ti], static_cast<long long>(t), static_cast<long long>(n));
              ++tfails;
            }
            continue;
          }
          ++tchecked;
          if (std::memcmp(&a, &yb[t * ldy + n], 4) != 0 || std::memcmp(&a, &yg[t * ldy + n], 4) != 0) {
            if (tfails < 10)
              std::printf("%s MISMATCH K=%lld N=%lld T=%lld t=%lld n=%lld: %.9g vs avx2 %.9g, gemv %.9g\n", names[ti],
                          static_cast<long long>(K), static_cast<long long>(N), static_cast<long long>(T), static_cast<long long>(t),
                          static_cast<long long>(n), a, yb[t * ldy + n], yg[t * ldy + n]);
            ++tfails;
          }
        }
      // as the AVX-512 dispatch runs it: avx512, then the AVX2 kernels on the rest
      const int64_t d = cpu::qgemm_gemm_avx512(wt, w.data(), xq.data(), yc.data(), T, K, ldy, n0, n1);
      if (d < T) cpu::qgemm_rows_avx2(wt, w.data(), xq.data() + d * arb, yc.data() + d * ldy, T - d, K, ldy, n0, n1);
      if (std::memcmp(yc.data(), yb.data(), yb.size() * 4) != 0) {
        std::printf("%s: avx512 + avx2 differs from avx2 (K=%lld T=%lld)\n", names[ti], static_cast<long long>(K), static_cast<long long>(T));
        ++tfails;
      }
      // the whole AVX-512 dispatch (this kernel, then the AVX2 GEMM and the AVX-512 GEMV kernels)
      std::vector<float> yd(T * ldy, sentinel);
      cpu::qgemm_rows_avx512(wt, w.data(), xq.data(), yd.data(), T, K, ldy, n0, n1);
      if (std::memcmp(yd.data(), yb.data(), yb.size() * 4) != 0) {
        std::printf("%s: qgemm_rows_avx512 differs from avx2 (K=%lld T=%lld)\n", names[ti], static_cast<long long>(K), static_cast<long long>(T));
        ++tfails;
      }
    }
    std::printf("%s: %lld outputs checked, %lld failures\n", names[ti], tchecked, tfails);
    fails += tfails;
    checked += tchecked;
  }
  std::printf("total: %lld outputs (%lld tokens computed by qgemm_gemm_avx512), %lld failures: %s\n", checked, tokens, fails,
              fails ? "FAIL" : "PASS");
  return fails ? 1 : 0;
}

// Decode shapes: qgemm_rows_avx512 with T = 1..7 (all through the GEMV kernels) against
// qgemm_rows_avx2, memcmp over the whole y (sentinels included), N up to 100 (rarely a multiple of
// the 16-row tile), sub-ranges [n0, n1), ldy > N, quantized and random quant bytes.
int check_small_t(int iters) {
  std::mt19937_64 rng(7);
  auto urand = [&](float a) { return std::uniform_real_distribution<float>(-a, a)(rng); };
  const DType types[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_0, DType::Q8_0, DType::Q5_0};
  const char* names[] = {"q4_k", "q5_k", "q6_k", "q4_0", "q8_0", "q5_0"};
  long long fails = 0, checked = 0;
  for (int ti = 0; ti < 6; ++ti) {
    const DType wt = types[ti];
    const bool kq = ti < 3;
    long long tfails = 0;
    for (int it = 0; it < iters; ++it) {
      const int64_t K = kq ? 256 * (1 + static_cast<int64_t>(rng() % 16)) : 32 * (1 + static_cast<int64_t>(rng() % 64));
      const int64_t N = 1 + static_cast<int64_t>(rng() % 100), T = 1 + static_cast<int64_t>(rng() % 7);
      const int64_t n0 = rng() % 3 == 0 ? static_cast<int64_t>(rng() % N) : 0;
      const int64_t n1 = rng() % 3 == 0 ? n0 + 1 + static_cast<int64_t>(rng() % (N - n0)) : N;
      const int64_t ldy = N + (rng() % 2 ? static_cast<int64_t>(rng() % 13) : 0);
      const int mode = rng() % 3;
      const int64_t wrb = row_bytes(wt, K), arb = cpu::act_row_bytes(wt, K);
      std::vector<uint8_t> w(N * wrb + 64), xq(T * arb + 64);
      std::vector<float> xf(K), wf(K);
      for (int64_t n = 0; n < N; ++n) {
        const float sc = std::exp(urand(3.f));
        for (auto& v : wf) v = urand(sc) * (mode == 2 && rng() % 50 == 0 ? 30.f : 1.f);
        cpu::quantize_row_ref(wt, wf.data(), w.data() + n * wrb, K);
        if (mode == 1) {
          const int64_t nbk = K / (kq ? 256 : 32), bb = wrb / nbk;
          const int64_t lo = kq ? (wt == DType::Q6_K ? 0 : 4) : 2, hi = wt == DType::Q6_K ? 208 : bb;
          for (int64_t b = 0; b < nbk; ++b)
            for (int64_t i = lo; i < hi; ++i) w[n * wrb + b * bb + i] = static_cast<uint8_t>(rng());
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        const float sc = std::exp(urand(4.f));
        for (auto& v : xf) v = urand(sc) * (mode == 2 && rng() % 40 == 0 ? 50.f : 1.f);
        cpu::quantize_act_row(wt, xf.data(), xq.data() + t * arb, K);
      }
      const float sentinel = -12345.678f;
      std::vector<float> ya(T * ldy, sentinel), yb(T * ldy, sentinel);
      cpu::qgemm_rows_avx512(wt, w.data(), xq.data(), ya.data(), T, K, ldy, n0, n1);
      cpu::qgemm_rows_avx2(wt, w.data(), xq.data(), yb.data(), T, K, ldy, n0, n1);
      checked += T * (n1 - n0);
      if (std::memcmp(ya.data(), yb.data(), ya.size() * 4) != 0) {
        if (tfails < 10)
          std::printf("%s small-T MISMATCH K=%lld N=%lld T=%lld [%lld, %lld) ldy=%lld mode=%d\n", names[ti], static_cast<long long>(K),
                      static_cast<long long>(N), static_cast<long long>(T), static_cast<long long>(n0), static_cast<long long>(n1),
                      static_cast<long long>(ldy), mode);
        ++tfails;
      }
    }
    std::printf("%s small T: %d cases, %lld failures\n", names[ti], iters, tfails);
    fails += tfails;
  }
  std::printf("small T total: %lld outputs, %lld failures: %s\n", checked, fails, fails ? "FAIL" : "PASS");
  return fails ? 1 : 0;
}


int bench(int argc, char** argv) {
  const std::vector<std::string> types = split_list(argc > 2 ? argv[2] : "q4_k,q5_k,q6_k");
  const int64_t N = argc > 3 ? std::atoll(argv[3]) : 1024, K = argc > 4 ? std::atoll(argv[4]) : 2048;
  std::vector<int64_t> Ts;
  for (auto& t : split_list(argc > 5 ? argv[5] : "16,64,256,512")) Ts.push_back(std::atoll(t.c_str()));
  const int64_t Tmax = *std::max_element(Ts.begin(), Ts.end());
  uint32_t s = 12345;
  auto rnd = [&]() {
    s = s * 1664525u + 1013904223u;
    return (s / 4294967296.0 - 0.5) * 0.1;
  };
  std::vector<float> wf(static_cast<size_t>(N * K)), xf(static_cast<size_t>(Tmax * K));
  for (auto& v : wf) v = static_cast<float>(rnd());
  for (auto& v : xf) v = static_cast<float>(rnd());
  std::printf("[N,K] = [%lld,%lld], single thread, GFLOP/s (median / best of 15 interleaved samples)\n", static_cast<long long>(N),
              static_cast<long long>(K));
  for (const auto& tn : types) {
    const DTypeInfo* info = dtype_by_name(tn);
    if (!info) continue;
    const DType wt = info->type;
    const int64_t wrb = row_bytes(wt, K), arb = cpu::act_row_bytes(wt, K);
    std::vector<uint8_t> w(static_cast<size_t>(N * wrb) + 64), xq(static_cast<size_t>(Tmax * arb) + 64);
    for (int64_t n = 0; n < N; ++n) cpu::quantize_row_ref(wt, wf.data() + n * K, w.data() + n * wrb, K);
    for (int64_t t = 0; t < Tmax; ++t) cpu::quantize_act_row(wt, xf.data() + t * K, xq.data() + t * arb, K);
    std::vector<float> y(static_cast<size_t>(Tmax * N));
    for (int64_t T : Ts) {
      auto fa = [&] { cpu::qgemm_rows_avx2(wt, w.data(), xq.data(), y.data(), T, K, N, 0, N); };
      auto fb = [&] {
        const int64_t d = cpu::qgemm_gemm_avx512(wt, w.data(), xq.data(), y.data(), T, K, N, 0, N);
        if (d < T) cpu::qgemm_rows_avx2(wt, w.data(), xq.data() + d * arb, y.data() + d * N, T - d, K, N, 0, N);
      };
      fa();
      fb();
      int reps = 1;
      for (;;) {
        const double t0 = thread_seconds();
        for (int i = 0; i < reps; ++i) fa();
        if (thread_seconds() - t0 >= 0.02) break;
        reps *= 2;
      }
      std::vector<double> sa, sb;
      for (int r = 0; r < 15; ++r) {
        double t0 = thread_seconds();
        for (int i = 0; i < reps; ++i) fa();
        sa.push_back((thread_seconds() - t0) / reps);
        t0 = thread_seconds();
        for (int i = 0; i < reps; ++i) fb();
        sb.push_back((thread_seconds() - t0) / reps);
      }
      std::sort(sa.begin(), sa.end());
      std::sort(sb.begin(), sb.end());
      const double f = 2.0 * T * N * K / 1e9;
      std::printf("%-5s T=%-4lld avx2 %6.1f / %6.1f | avx512 %6.1f / %6.1f | x%.2f (best x%.2f)\n", tn.c_str(), static_cast<long long>(T),
                  f / sa[7], f / sa[0], f / sb[7], f / sb[0], sa[7] / sb[7], sa[0] / sb[0]);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const CpuFeatures& c = cpu_features();
  if (!(c.avx2 && c.fma && c.f16c && c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq && c.avx512vnni)) {
    std::printf("skipped: this CPU lacks AVX-512 VNNI\n");
    return 0;
  }
  const std::string mode = argc > 1 ? argv[1] : "check";
  if (mode == "bench") return bench(argc, argv);
  const int iters = argc > 2 ? std::atoi(argv[2]) : 300;
  const int a = check_small_t(4 * iters);
  return check(iters) | a;
}
