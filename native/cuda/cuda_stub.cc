// Built only when no CUDA compiler was found: the CUDA backend reports itself absent.
#include "cuda_backend.h"

namespace qm {

bool cuda_compiled() { return false; }
int cuda_runtime_version() { return 0; }

std::vector<CudaDeviceInfo> cuda_devices(std::string* why_not) {
  if (why_not) *why_not = "this binary was built without CUDA (rebuild with QUANTMOE_BUILD=cuda where nvcc is installed)";
  return {};
}

void cuda_require_device() {
  std::string why;
  cuda_devices(&why);
  fail("E_BACKEND_UNAVAILABLE", "CUDA is not usable: " + why);
}

void cuda_matmul(const float*, const void*, DType, float*, int64_t, int64_t, int64_t) { cuda_require_device(); }

}  // namespace qm
