// Batch normalisation on the CPU, float32 (batch_norm.h): the baseline (x86-64-v2) build of the
// kernels in batch_norm_impl.h, and the entry points, which run the ISA path chosen at run time.
//
// Shape letters as in batch_norm.h: N batch, C channels, L positions.
#include "cpu/batch_norm.h"

#include "cpu/batch_norm_impl.h"

namespace pyengine::cpu {
namespace {

const BatchNormKernels& kernels() { PYENGINE_ISA_DISPATCH(kBatchNormKernels); }

}  // namespace

void batch_norm_forward_train(float* y, float* mean, float* invstd, const float* x,
                              const float* weight, const float* bias, int64_t N, int64_t C,
                              int64_t L, double eps) {
  kernels().forward_train(y, mean, invstd, x, weight, bias, N, C, L, eps);
}

void batch_norm_forward_eval(float* y, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             int64_t N, int64_t C, int64_t L, double eps) {
  kernels().forward_eval(y, x, running_mean, running_var, weight, bias, N, C, L, eps);
}

void batch_norm_backward(float* dx, float* dweight, float* dbias, const float* dy,
                         const float* x, const float* weight, const float* mean,
                         const float* invstd, int64_t N, int64_t C, int64_t L, bool training) {
  kernels().backward(dx, dweight, dbias, dy, x, weight, mean, invstd, N, C, L, training);
}

}  // namespace pyengine::cpu
