// Device discovery for the CUDA backend.
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace qm {

bool cuda_compiled() { return true; }

int cuda_runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why_not) {
  std::vector<CudaDeviceInfo> out;
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why_not) {
      if (err == cudaErrorNoDevice) *why_not = "no CUDA device found";
      else if (err == cudaErrorInsufficientDriver) *why_not = "no NVIDIA driver, or the driver is older than the CUDA runtime this binary was built with";
      else *why_not = std::string("CUDA runtime error: ") + cudaGetErrorString(err);
    }
    cudaGetLastError();  // clear the sticky error
    return out;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.name = p.name;
    d.memory_bytes = p.totalGlobalMem;
    d.major = p.major;
    d.minor = p.minor;
    out.push_back(d);
  }
  if (out.empty() && why_not) *why_not = "no CUDA device found";
  return out;
}

void cuda_require_device() {
  std::string why;
  if (cuda_devices(&why).empty()) fail("E_BACKEND_UNAVAILABLE", "CUDA is not usable: " + why);
}

}  // namespace qm
