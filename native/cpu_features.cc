#include "cpu_features.h"

#include <atomic>

#include "common.h"

namespace qm {

static CpuFeatures detect() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
  f.avxvnni = __builtin_cpu_supports("avxvnni");
#endif
  // F16C has no __builtin_cpu_supports name in older compilers: every AVX2 CPU has it.
  f.f16c = f.avx2;
#elif defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::vector<std::string> cpu_feature_names() {
  const CpuFeatures& f = cpu_features();
  std::vector<std::string> out;
  auto add = [&](bool b, const char* n) { if (b) out.emplace_back(n); };
  add(f.avx2, "avx2"); add(f.fma, "fma"); add(f.f16c, "f16c");
  add(f.avx512f, "avx512f"); add(f.avx512bw, "avx512bw"); add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq"); add(f.avx512vnni, "avx512-vnni"); add(f.avx512bf16, "avx512-bf16");
  add(f.avxvnni, "avx-vnni"); add(f.neon, "neon");
  return out;
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#ifdef QM_HAVE_X86_KERNELS
    case Isa::Avx2: return true;
    case Isa::Avx512: return true;
#endif
    default: return false;
  }
}

static bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  if (!isa_compiled(isa)) return false;
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

static std::atomic<int>& active() {
  static std::atomic<int> a{static_cast<int>(best_isa())};
  return a;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    fail("E_UNSUPPORTED", std::string("instruction set ") + isa_name(isa) +
                              " is not supported by this CPU or not compiled into this binary");
  active().store(static_cast<int>(isa));
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace qm
