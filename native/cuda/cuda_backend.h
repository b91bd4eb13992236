// Host-side interface of the CUDA backend. Implemented by cuda/*.cu when the build found a CUDA
// compiler, and by cuda/cuda_stub.cc otherwise (every call then fails with E_BACKEND_UNAVAILABLE).
// The CUDA runtime is linked statically and loads the driver lazily, so a CUDA-enabled binary runs
// on machines with no driver or no GPU: cuda_devices() then returns none and says why.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../common.h"

namespace qm {

struct CudaDeviceInfo {
  std::string name;
  size_t memory_bytes = 0;
  int major = 0, minor = 0;
};

bool cuda_compiled();
int cuda_runtime_version();
// Devices usable now; when none, *why_not says why (not compiled in / no driver / no device).
std::vector<CudaDeviceInfo> cuda_devices(std::string* why_not);
// Throws E_BACKEND_UNAVAILABLE with the reason when no device is usable.
void cuda_require_device();

// y[T,N] = x[T,K] · W[N,K]ᵀ with host pointers: copies in, runs on device 0, copies out.
void cuda_matmul(const float* x, const void* w, DType wtype, float* y, int64_t T, int64_t K, int64_t N);

}  // namespace qm
