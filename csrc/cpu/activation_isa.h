// The table of activation kernels that each ISA path exports (activation_impl.h defines it once
// per path), so that activation.cpp can choose a path at run time. n: elements.
#pragma once

#include <cstdint>

#include "cpu/activation.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

struct ActivationKernels {
  void (*forward)(float*, const float*, int64_t, Activation, float);
  void (*backward)(float*, const float*, const float*, const float*, int64_t, Activation, float);
};

PYENGINE_ISA_DECLARE(extern const ActivationKernels kActivationKernels)

}  // namespace pyengine::cpu
