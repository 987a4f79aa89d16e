// Pointwise activations on the CPU, float32 (activation.h): the baseline (x86-64-v2) build of the
// kernels in activation_impl.h, and the entry points, which run the ISA path chosen at run time.
// n: elements.
#include "cpu/activation.h"

#include "cpu/activation_impl.h"

namespace pyengine::cpu {
namespace {

const ActivationKernels& kernels() { PYENGINE_ISA_DISPATCH(kActivationKernels); }

}  // namespace

void activation_forward(float* y, const float* x, int64_t n, Activation kind,
                        float negative_slope) {
  kernels().forward(y, x, n, kind, negative_slope);
}

void activation_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                         Activation kind, float negative_slope) {
  kernels().backward(dx, dy, x, y, n, kind, negative_slope);
}

}  // namespace pyengine::cpu
