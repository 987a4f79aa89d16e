// Host entry points about the device itself (csrc/cuda/device.cu): what is there, whether it
// can run this build. Nothing here runs at import; the Python side calls probe_device() once.
//
// Shape letters: none.
#pragma once

#include <string>

#include "cuda/api.h"

namespace pyengine::gpu {

struct DeviceReport {
  int runtime_version = 0;  // CUDA runtime linked into the module (e.g. 13000)
  int driver_version = 0;   // of the installed driver, 0 when there is none
  int device_count = 0;
  int device = -1;          // the current device
  int major = 0, minor = 0; // its compute capability
  int multiprocessors = 0;
  std::string error_name;   // the first failing call's error, empty when all went well
  std::string error_string;
};

DeviceReport probe_device();

// Waits for every kernel of `stream` (tests and timings; the kernels themselves never wait).
void synchronize(StreamHandle stream);

}  // namespace pyengine::gpu
