// The table of softmax kernels that each ISA path exports (softmax_impl.h defines it once per
// path), so that softmax.cpp can choose a path at run time.
//
// Shape letters as in softmax.h: (B, D, I) around the softmax dimension.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace pyengine::cpu {

struct SoftmaxKernels {
  void (*forward)(float* y, const float* x, int64_t B, int64_t D, int64_t I, bool log);
  void (*backward)(float* dx, const float* y, const float* dy, int64_t B, int64_t D, int64_t I,
                   bool log);
};

PYENGINE_ISA_DECLARE(extern const SoftmaxKernels kSoftmaxKernels)

}  // namespace pyengine::cpu
