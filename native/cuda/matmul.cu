// Dense matmul on the GPU, y[T,N] = x[T,K] · W[N,K]ᵀ, F32 activations and F32/F16/BF16 weights.
// One block per (output row, group of 4 tokens); threads stride over K, then a block reduction.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace qm {

namespace {

template <class W>
__device__ __forceinline__ float to_f32(W v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

constexpr int kTokens = 4;
constexpr int kThreads = 128;

template <class W>
__global__ void matmul_kernel(const float* __restrict__ x, const W* __restrict__ w, float* __restrict__ y,
                              int64_t T, int64_t K, int64_t N) {
  const int64_t n = blockIdx.x;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTokens;
  float acc[kTokens] = {0.f, 0.f, 0.f, 0.f};
  for (int64_t k = threadIdx.x; k < K; k += kThreads) {
    const float wv = to_f32<W>(w[n * K + k]);
    for (int j = 0; j < kTokens; ++j)
      if (t0 + j < T) acc[j] += x[(t0 + j) * K + k] * wv;
  }
  __shared__ float red[kTokens][kThreads / 32];
  for (int j = 0; j < kTokens; ++j) {
    float v = acc[j];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0) red[j][threadIdx.x / 32] = v;
  }
  __syncthreads();
  if (threadIdx.x < kTokens) {
    const int j = threadIdx.x;
    float s = 0.f;
    for (int i = 0; i < kThreads / 32; ++i) s += red[j][i];
    if (t0 + j < T) y[(t0 + j) * N + n] = s;
  }
}

}  // namespace

void cuda_matmul(const float* x, const void* w, DType wtype, float* y, int64_t T, int64_t K, int64_t N) {
  cuda_require_device();
  const size_t wbytes = static_cast<size_t>(N * K) * (wtype == DType::F32 ? 4 : 2);
  DeviceBuffer<float> dx(static_cast<size_t>(T * K)), dy(static_cast<size_t>(T * N));
  DeviceBuffer<uint8_t> dw(wbytes);
  QM_CUDA_CHECK(cudaMemcpy(dx.ptr, x, sizeof(float) * T * K, cudaMemcpyHostToDevice));
  QM_CUDA_CHECK(cudaMemcpy(dw.ptr, w, wbytes, cudaMemcpyHostToDevice));
  if (T > 0 && N > 0) {
    dim3 grid(static_cast<unsigned>(N), static_cast<unsigned>((T + kTokens - 1) / kTokens));
    switch (wtype) {
      case DType::F32: matmul_kernel<float><<<grid, kThreads>>>(dx.ptr, reinterpret_cast<const float*>(dw.ptr), dy.ptr, T, K, N); break;
      case DType::F16: matmul_kernel<__half><<<grid, kThreads>>>(dx.ptr, reinterpret_cast<const __half*>(dw.ptr), dy.ptr, T, K, N); break;
      case DType::BF16: matmul_kernel<__nv_bfloat16><<<grid, kThreads>>>(dx.ptr, reinterpret_cast<const __nv_bfloat16*>(dw.ptr), dy.ptr, T, K, N); break;
      default: fail("E_DTYPE", "cuda matmul: unsupported weight dtype");
    }
    QM_CUDA_CHECK(cudaGetLastError());
  }
  QM_CUDA_CHECK(cudaMemcpy(y, dy.ptr, sizeof(float) * T * N, cudaMemcpyDeviceToHost));
}

}  // namespace qm
