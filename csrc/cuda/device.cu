// Device queries of the CUDA modules (see device.h). Under the emulator these answer for the
// emulated device (csrc/emu/runtime.cpp).
//
// Shape letters: none.
#include "cuda/device.h"

#include <atomic>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/gemm.cuh"

namespace pyengine::gpu {

namespace {

// Compute capability major * 10 + minor of `device`.
int compute_capability(int device) {
  int major = 0, minor = 0;
  PYENGINE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  PYENGINE_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return 10 * major + minor;
}

}  // namespace

DeviceReport probe_device() {
  DeviceReport r;
  // Neither of these needs a device or a driver: they say which is missing.
  (void)cudaRuntimeGetVersion(&r.runtime_version);
  if (cudaDriverGetVersion(&r.driver_version) != cudaSuccess) r.driver_version = 0;
  const cudaError_t err = cudaGetDeviceCount(&r.device_count);
  if (err != cudaSuccess) {
    r.device_count = 0;
    r.error_name = cudaGetErrorName(err);
    r.error_string = cudaGetErrorString(err);
    (void)cudaGetLastError();  // do not leave the error for the next, unrelated check
    return r;
  }
  if (r.device_count == 0) return r;
  PYENGINE_CUDA_CHECK(cudaGetDevice(&r.device));
  const int cc = compute_capability(r.device);
  r.major = cc / 10;
  r.minor = cc % 10;
  PYENGINE_CUDA_CHECK(
      cudaDeviceGetAttribute(&r.multiprocessors, cudaDevAttrMultiProcessorCount, r.device));
  return r;
}

void require_tf32_tensor_cores() {
  // Asked before every TF32 launch: the capability is queried once per device.
  constexpr int kCached = 64;
  static std::atomic<int> known[kCached] = {};  // 0: not asked yet
  int device = 0;
  PYENGINE_CUDA_CHECK(cudaGetDevice(&device));
  int cc = device < kCached ? known[device].load(std::memory_order_relaxed) : 0;
  if (cc == 0) {
    cc = compute_capability(device);
    if (device < kCached) known[device].store(cc, std::memory_order_relaxed);
  }
  if (cc < 80)
    throw std::invalid_argument(
        "the TF32 algorithm needs tensor cores with TF32 (compute capability 8.0 or newer); "
        "this GPU is " + std::to_string(cc / 10) + "." + std::to_string(cc % 10) +
        ": use algo='implicit_gemm_tiled'");
}

void synchronize(StreamHandle stream) {
  PYENGINE_CUDA_CHECK(cudaStreamSynchronize(to_stream(stream)));
}

}  // namespace pyengine::gpu
