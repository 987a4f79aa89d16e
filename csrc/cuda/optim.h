// Host entry points of the optimizer update kernels (csrc/cuda/optim.cu): one pass over a
// parameter, its gradient and its state, with torch.optim's (and pyengine.optim's) formulas.
//
// Shape letters: n elements of the parameter.
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

struct SgdArgs {
  float lr = 0.0f, momentum = 0.0f, dampening = 0.0f, weight_decay = 0.0f;
  bool nesterov = false, maximize = false;
  bool first_step = true;  // the momentum buffer starts as the gradient
};

// g = grad (negated if maximize) + weight_decay * param; with momentum:
// buf = g (first step) or momentum * buf + (1 - dampening) * g; g = g + momentum * buf
// (nesterov) or buf; param -= lr * g. momentum_buffer may be null when momentum == 0.
void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdArgs& a, StreamHandle stream);

struct AdamArgs {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  int64_t step = 1;  // 1 on the first update
  bool amsgrad = false, maximize = false, decoupled_weight_decay = false;
};

// Adam / AdamW; max_exp_avg_sq only with amsgrad (else may be null).
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                 float* max_exp_avg_sq, int64_t n, const AdamArgs& a, StreamHandle stream);

}  // namespace pyengine::gpu
