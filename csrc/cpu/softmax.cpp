// softmax and log_softmax on the CPU, float32 (softmax.h): the baseline (x86-64-v2) build of the
// kernels in softmax_impl.h, and the entry points, which run the ISA path chosen at run time.
//
// Shape letters (as in softmax.h): the tensor is (B, D, I) around the softmax dimension.
#include "cpu/softmax.h"

#include "cpu/softmax_impl.h"

namespace pyengine::cpu {
namespace {

const SoftmaxKernels& kernels() { PYENGINE_ISA_DISPATCH(kSoftmaxKernels); }

}  // namespace

void softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I) {
  kernels().forward(y, x, B, D, I, /*log=*/false);
}

void log_softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I) {
  kernels().forward(y, x, B, D, I, /*log=*/true);
}

void softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                      int64_t I) {
  kernels().backward(dx, y, dy, B, D, I, /*log=*/false);
}

void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                          int64_t I) {
  kernels().backward(dx, y, dy, B, D, I, /*log=*/true);
}

}  // namespace pyengine::cpu
