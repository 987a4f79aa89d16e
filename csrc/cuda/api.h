// Types shared by the host-side entry points of the CUDA kernels (csrc/cuda/<family>.h) and
// their callers, the bindings. Plain C++: no CUDA header, so the bindings compile with the host
// compiler for both pyengine._cuda and pyengine._cuda_emu.
//
// Every entry point takes device pointers (host pointers under the emulator) to C-contiguous
// float32 / int64 arrays that the caller allocated and checked, and a stream. It launches its
// kernels on that stream and returns without waiting; errors are thrown as exceptions.
//
// Shape letters: none.
#pragma once

#include <cstdint>

namespace pyengine::gpu {

// A cudaStream_t passed as an opaque pointer (0: the legacy default stream).
using StreamHandle = void*;

// Pointwise activations, also fused into the epilogues of other kernels.
enum class Activation : int { none = 0, relu = 1, leaky_relu = 2, sigmoid = 3, tanh = 4 };

}  // namespace pyengine::gpu
