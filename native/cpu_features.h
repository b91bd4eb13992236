// CPU feature detection and the instruction set the CPU kernels use. Kernels are compiled per
// instruction set in separate translation units (cpu/*_avx2.cc, cpu/*_avx512.cc) and picked at run
// time, so one binary runs on any x86-64 CPU and builds on arm64 (scalar path).
#pragma once
#include <string>
#include <vector>

namespace qm {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, avxvnni = false, neon = false;
};

const CpuFeatures& cpu_features();
std::vector<std::string> cpu_feature_names();

// Best ISA this binary and CPU support.
Isa best_isa();
// The ISA kernels use now (default best_isa(); tests lower it to exercise every path).
Isa active_isa();
// Throws E_UNSUPPORTED when the CPU (or this build) lacks it.
void set_active_isa(Isa isa);
const char* isa_name(Isa isa);
bool isa_compiled(Isa isa);

}  // namespace qm
