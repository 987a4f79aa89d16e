// Losses on the CPU, float32 in and out: the fused cross-entropy (log-softmax + NLL, forward and
// backward each one pass over the logits), nll_loss, mse_loss and smooth_l1_loss.
//
// Shape letters: M rows, C classes; n elements of an element-wise loss. Logits and
// log-probabilities are (M, C), class-index targets int64 (M,), probability targets (M, C),
// weights (C,) or null. Arrays are C-contiguous; outputs come first, are fully written and
// overlap no input. What every kernel computes (weights, ignore_index, label smoothing, the
// reductions and their denominators) is defined by pyengine/backends/numpy_ref/loss.py.
//
// Precision: per-row sums (of exp, of weighted logits) and every reduction accumulate in double;
// the per-row log-sum-exp is returned in double, so the backward needs no second look at the
// row max and sum. Reductions add per-row (or per-block) values in a fixed order: results do
// not depend on the thread count.
#pragma once

#include <cstdint>

namespace pyengine::cpu {

enum class Reduction : int { none = 0, mean = 1, sum = 2 };

// Options of the classification losses (pyengine.params.LossParams).
struct LossOptions {
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};

// loss: M floats for Reduction::none, else one. lse: M doubles, log-sum-exp of each row.
// target: class indices, each in [0, C) or equal to opts.ignore_index (the binding checks).
void cross_entropy_forward_index(float* loss, double* lse, const float* logits,
                                 const int64_t* target, const float* weight, int64_t M,
                                 int64_t C, const LossOptions& opts);

// Probability targets (M, C): the loss of a row is -sum_c w[c] t'[c] logp[c], t' smoothed.
void cross_entropy_forward_prob(float* loss, double* lse, const float* logits,
                                const float* target, const float* weight, int64_t M, int64_t C,
                                const LossOptions& opts);

// dlogits (M, C). dloss: M floats for Reduction::none, else one. lse: the forward's (M
// doubles), or null to recompute it from the logits.
void cross_entropy_backward_index(float* dlogits, const float* dloss, const float* logits,
                                  const int64_t* target, const float* weight, const double* lse,
                                  int64_t M, int64_t C, const LossOptions& opts);

void cross_entropy_backward_prob(float* dlogits, const float* dloss, const float* logits,
                                 const float* target, const float* weight, const double* lse,
                                 int64_t M, int64_t C, const LossOptions& opts);

// -logp[r, t_r] * w[t_r], reduced ('mean' divides by the weight of the non-ignored rows).
void nll_loss_forward(float* loss, const float* logp, const int64_t* target, const float* weight,
                      int64_t M, int64_t C, const LossOptions& opts);

// dlogp (M, C): -g_r * w[t_r] at (r, t_r), zero elsewhere.
void nll_loss_backward(float* dlogp, const float* dloss, const int64_t* target,
                       const float* weight, int64_t M, int64_t C, const LossOptions& opts);

// (x - t)^2 over n elements; loss n floats for Reduction::none, else one.
void mse_loss_forward(float* loss, const float* x, const float* t, int64_t n, Reduction red);
void mse_loss_backward(float* dx, const float* dloss, const float* x, const float* t, int64_t n,
                       Reduction red);

// 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - t); beta 0 is L1.
void smooth_l1_loss_forward(float* loss, const float* x, const float* t, int64_t n,
                            Reduction red, double beta);
void smooth_l1_loss_backward(float* dx, const float* dloss, const float* x, const float* t,
                             int64_t n, Reduction red, double beta);

}  // namespace pyengine::cpu
