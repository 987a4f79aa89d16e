// Host entry points of the loss kernels (csrc/cuda/loss.cu): fused cross-entropy, NLL, MSE
// and smooth L1, with numpy_ref/loss.py's semantics (weights, ignore_index, label smoothing,
// probability targets, reductions).
//
// Shape letters: M rows, C classes; n elements of the element-wise losses.
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

enum class Reduction : int { none = 0, mean = 1, sum = 2 };

struct LossArgs {
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  float label_smoothing = 0.0f;
  float beta = 1.0f;
};

// logits (M,C); exactly one of target_index (M) int64 and target_prob (M,C) is non-null;
// weight (C) or null. loss: (M) for reduction none, else 1 element; lse (M).
void cross_entropy_forward(float* loss, float* lse, const float* logits,
                           const int64_t* target_index, const float* target_prob,
                           const float* weight, int64_t M, int64_t C, const LossArgs& a,
                           StreamHandle stream);
// dlogits (M,C); dloss (M) for none, else 1 element. The row statistics are recomputed from the
// logits rather than read from the forward's lse (whose float32 rounding near |logit| = 1e4
// would become a relative error of every gradient of the row).
void cross_entropy_backward(float* dlogits, const float* dloss, const float* logits,
                            const int64_t* target_index, const float* target_prob,
                            const float* weight, int64_t M, int64_t C, const LossArgs& a,
                            StreamHandle stream);

void nll_loss_forward(float* loss, const float* logp, const int64_t* target, const float* weight,
                      int64_t M, int64_t C, const LossArgs& a, StreamHandle stream);
void nll_loss_backward(float* dlogp, const float* dloss, const int64_t* target,
                       const float* weight, int64_t M, int64_t C, const LossArgs& a,
                       StreamHandle stream);

// kind: 0 mse, 1 smooth L1 (beta in a.beta).
void pointwise_loss_forward(float* loss, const float* x, const float* target, int64_t n,
                            int kind, const LossArgs& a, StreamHandle stream);
void pointwise_loss_backward(float* dx, const float* dloss, const float* x, const float* target,
                             int64_t n, int kind, const LossArgs& a, StreamHandle stream);

}  // namespace pyengine::gpu
