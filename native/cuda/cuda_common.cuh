// Error checking for CUDA runtime calls: failures become qm::Error with a code.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "../common.h"

#define QM_CUDA_CHECK(expr)                                                                          \
  do {                                                                                               \
    cudaError_t qm_err_ = (expr);                                                                    \
    if (qm_err_ != cudaSuccess)                                                                      \
      ::qm::fail(qm_err_ == cudaErrorMemoryAllocation ? "E_OUT_OF_MEMORY" : "E_BACKEND_UNAVAILABLE", \
                 std::string("CUDA error in ") + #expr + ": " + cudaGetErrorString(qm_err_));        \
  } while (0)

namespace qm {

// Device buffer freed on scope exit (also on exceptions).
template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t count) { QM_CUDA_CHECK(cudaMalloc(&ptr, count * sizeof(T) + 1)); }
  ~DeviceBuffer() { if (ptr) cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace qm
