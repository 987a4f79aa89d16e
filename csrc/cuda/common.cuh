// What every kernel file of csrc/cuda/ includes first: CUDA itself (nvcc) or the emulator's
// version of it (host compiler, csrc/emu/cuda_emu.h), the error check, the one launch helper
// of both builds, device workspaces and small index helpers.
//
// Kernels are launched only through launch() below, never with <<<...>>>: under nvcc it expands
// to <<<...>>> plus an error check, under the emulator it runs the grid on the host, so the
// launch code of the two builds is the same code.
//
// Shape letters: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
// `PYENGINE_DYNAMIC_SHARED(float, tile);` declares `float* tile`, the block's dynamic shared
// memory. One extern array of bytes for every kernel (a typed extern array of another type in
// a second kernel would clash), 16-byte aligned for any element type.
#define PYENGINE_DYNAMIC_SHARED(type, name)                                  \
  extern __shared__ __align__(16) unsigned char pyengine_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(pyengine_dynamic_shared_)
#else
#include "emu/cuda_emu.h"
#endif

#include "cuda/api.h"

namespace pyengine::gpu {

// A failed CUDA call, with where it was made and CUDA's name and description of the error.
class CudaError : public std::runtime_error {
 public:
  CudaError(cudaError_t code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

[[noreturn]] inline void throw_cuda_error(cudaError_t code, const char* what, const char* file,
                                          int line) {
  throw CudaError(code, std::string(file) + ":" + std::to_string(line) + ": " + what +
                            " failed: " + cudaGetErrorName(code) + ": " +
                            cudaGetErrorString(code));
}

#define PYENGINE_CUDA_CHECK(expr)                                                  \
  do {                                                                             \
    const cudaError_t pyengine_err_ = (expr);                                      \
    if (pyengine_err_ != cudaSuccess)                                              \
      ::pyengine::gpu::throw_cuda_error(pyengine_err_, #expr, __FILE__, __LINE__); \
  } while (0)

inline cudaStream_t to_stream(StreamHandle s) { return reinterpret_cast<cudaStream_t>(s); }

// PYENGINE_CUDA_LAUNCH_BLOCKING=1: wait for every kernel and check it, so that an error of an
// asynchronous kernel (an illegal address) is reported at the launch that caused it.
inline bool launch_blocking() {
  static const bool on = [] {
    const char* s = std::getenv("PYENGINE_CUDA_LAUNCH_BLOCKING");
    return s != nullptr && s[0] != '\0' && s[0] != '0';
  }();
  return on;
}

// Launches `kernel` on grid x block with shared_bytes of dynamic shared memory on `stream`,
// the arguments converted to the kernel's parameter types; throws CudaError (GPU) or
// std::runtime_error (emulator) when the launch fails. A grid with no block launches nothing
// (CUDA rejects it), so callers need no special case for empty tensors.
template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
#if defined(__CUDACC__)
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && launch_blocking()) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) {
    const char* name = nullptr;
#if CUDART_VERSION >= 12030  // cudaFuncGetName is CUDA 12.3's
    if (cudaFuncGetName(&name, reinterpret_cast<const void*>(kernel)) != cudaSuccess)
      name = nullptr;
#endif
    throw CudaError(err, std::string("launch of kernel ") + (name ? name : "?") + " (grid (" +
                             std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                             std::to_string(grid.z) + "), block (" + std::to_string(block.x) +
                             ", " + std::to_string(block.y) + ", " + std::to_string(block.z) +
                             "), " + std::to_string(shared_bytes) + " bytes shared) failed: " +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
#else
  (void)stream;
  ::pyengine::emu::launch_kernel(kernel, grid, block, shared_bytes, std::forward<Args>(args)...);
#endif
}

// Temporary device memory for one call, allocated and freed in stream order (the memory pool
// of the device makes both cheap). Never read before a kernel wrote it.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(int64_t count, cudaStream_t stream) : stream_(stream) {
    if (count > 0)
      PYENGINE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_),
                                          static_cast<size_t>(count) * sizeof(T), stream));
  }
  ~DeviceBuffer() {
    // A destructor cannot throw; a failed free would show up as the error of a later call.
    if (ptr_ != nullptr) (void)cudaFreeAsync(ptr_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// NaN test that no compiler option turns into `false` (kernels are never built with
// -ffast-math, but say it in the code rather than rely on it).
__host__ __device__ __forceinline__ bool is_nan(float x) { return x != x; }

// Blocks for a grid-stride loop over n items with `threads` threads per block: enough to fill
// a large GPU several times over, never more than the items need.
inline unsigned grid_blocks(int64_t n, int threads, int64_t max_blocks = 8192) {
  const int64_t b = ceil_div(n, threads);
  return static_cast<unsigned>(b < 1 ? 1 : (b > max_blocks ? max_blocks : b));
}

// First global index and stride of a 1-d grid-stride loop, in 64-bit.
__device__ __forceinline__ int64_t global_thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace pyengine::gpu
