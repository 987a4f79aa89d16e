// The table of batch normalisation kernels that each ISA path exports (batch_norm_impl.h
// defines it once per path), so that batch_norm.cpp can choose a path at run time.
//
// Shape letters as in batch_norm.h: N batch, C channels, L positions.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace pyengine::cpu {

struct BatchNormKernels {
  void (*forward_train)(float*, float*, float*, const float*, const float*, const float*,
                        int64_t, int64_t, int64_t, double);
  void (*forward_eval)(float*, const float*, const float*, const float*, const float*,
                       const float*, int64_t, int64_t, int64_t, double);
  void (*backward)(float*, float*, float*, const float*, const float*, const float*,
                   const float*, const float*, int64_t, int64_t, int64_t, bool);
};

PYENGINE_ISA_DECLARE(extern const BatchNormKernels kBatchNormKernels)

}  // namespace pyengine::cpu
