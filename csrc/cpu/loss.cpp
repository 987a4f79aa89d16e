// Losses on the CPU, float32 (loss.h): the baseline (x86-64-v2) build of the kernels in
// loss_impl.h, and the entry points, which run the ISA path chosen at run time.
//
// Shape letters as in loss.h: M rows, C classes, n elements of an element-wise loss.
#include "cpu/loss.h"

#include "cpu/loss_impl.h"

namespace pyengine::cpu {
namespace {

const LossKernels& kernels() { PYENGINE_ISA_DISPATCH(kLossKernels); }

}  // namespace

void cross_entropy_forward_index(float* loss, double* lse, const float* logits,
                                 const int64_t* target, const float* weight, int64_t M,
                                 int64_t C, const LossOptions& opts) {
  kernels().ce_forward_index(loss, lse, logits, target, weight, M, C, opts);
}

void cross_entropy_forward_prob(float* loss, double* lse, const float* logits,
                                const float* target, const float* weight, int64_t M, int64_t C,
                                const LossOptions& opts) {
  kernels().ce_forward_prob(loss, lse, logits, target, weight, M, C, opts);
}

void cross_entropy_backward_index(float* dlogits, const float* dloss, const float* logits,
                                  const int64_t* target, const float* weight, const double* lse,
                                  int64_t M, int64_t C, const LossOptions& opts) {
  kernels().ce_backward_index(dlogits, dloss, logits, target, weight, lse, M, C, opts);
}

void cross_entropy_backward_prob(float* dlogits, const float* dloss, const float* logits,
                                 const float* target, const float* weight, const double* lse,
                                 int64_t M, int64_t C, const LossOptions& opts) {
  kernels().ce_backward_prob(dlogits, dloss, logits, target, weight, lse, M, C, opts);
}

void nll_loss_forward(float* loss, const float* logp, const int64_t* target, const float* weight,
                      int64_t M, int64_t C, const LossOptions& opts) {
  kernels().nll_forward(loss, logp, target, weight, M, C, opts);
}

void nll_loss_backward(float* dlogp, const float* dloss, const int64_t* target,
                       const float* weight, int64_t M, int64_t C, const LossOptions& opts) {
  kernels().nll_backward(dlogp, dloss, target, weight, M, C, opts);
}

void mse_loss_forward(float* loss, const float* x, const float* t, int64_t n, Reduction red) {
  kernels().mse_forward(loss, x, t, n, red);
}

void mse_loss_backward(float* dx, const float* dloss, const float* x, const float* t, int64_t n,
                       Reduction red) {
  kernels().mse_backward(dx, dloss, x, t, n, red);
}

void smooth_l1_loss_forward(float* loss, const float* x, const float* t, int64_t n,
                            Reduction red, double beta) {
  kernels().smooth_l1_forward(loss, x, t, n, red, beta);
}

void smooth_l1_loss_backward(float* dx, const float* dloss, const float* x, const float* t,
                             int64_t n, Reduction red, double beta) {
  kernels().smooth_l1_backward(dx, dloss, x, t, n, red, beta);
}

}  // namespace pyengine::cpu
