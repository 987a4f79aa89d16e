// Device queries of the CUDA modules (see device.h). Under the emulator these answer for the
// emulated device (csrc/emu/runtime.cpp).
//
// Shape letters: none.
#include "cuda/device.h"

#include "cuda/common.cuh"

namespace pyengine::gpu {

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
  PYENGINE_CUDA_CHECK(
      cudaDeviceGetAttribute(&r.major, cudaDevAttrComputeCapabilityMajor, r.device));
  PYENGINE_CUDA_CHECK(
      cudaDeviceGetAttribute(&r.minor, cudaDevAttrComputeCapabilityMinor, r.device));
  PYENGINE_CUDA_CHECK(
      cudaDeviceGetAttribute(&r.multiprocessors, cudaDevAttrMultiProcessorCount, r.device));
  return r;
}

void synchronize(StreamHandle stream) {
  PYENGINE_CUDA_CHECK(cudaStreamSynchronize(to_stream(stream)));
}

}  // namespace pyengine::gpu
