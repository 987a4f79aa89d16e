// Optimizer updates as single-pass kernels (float32): SGD with momentum / dampening / Nesterov
// / weight decay / maximize, and Adam / AdamW with amsgrad, with torch.optim's formulas (the
// same as pyengine/optim's). Each reads a parameter, its gradient and its state once and writes
// them back, instead of the several array operations of the Python loop.
//
// Shape letters: n elements.
#include "cuda/optim.h"

#include <cmath>

#include "cuda/common.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) sgd_kernel(float* __restrict__ param,
                                                      const float* __restrict__ grad,
                                                      float* __restrict__ buf, int64_t n,
                                                      SgdArgs a) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) {
    const float p = param[i];
    float g = a.maximize ? -grad[i] : grad[i];
    if (a.weight_decay != 0.0f) g = g + a.weight_decay * p;
    if (a.momentum != 0.0f) {
      const float b = a.first_step ? g : buf[i] * a.momentum + (1.0f - a.dampening) * g;
      buf[i] = b;
      g = a.nesterov ? g + a.momentum * b : b;
    }
    param[i] = p - a.lr * g;
  }
}

// step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t), computed once
// on the host in double.
__global__ void __launch_bounds__(kThreads) adam_kernel(
    float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
    float* __restrict__ exp_avg_sq, float* __restrict__ max_exp_avg_sq, int64_t n, AdamArgs a,
    float step_size, float bias_correction2_sqrt) {
  const float w = 1.0f - a.beta1;  // torch's lerp weight
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) {
    float p = param[i];
    float g = a.maximize ? -grad[i] : grad[i];
    if (a.weight_decay != 0.0f) {
      if (a.decoupled_weight_decay)
        p = p * (1.0f - a.lr * a.weight_decay);
      else
        g = g + a.weight_decay * p;
    }
    // torch.lerp computes from the nearer end, so that weight 1 gives exactly g.
    const float m0 = exp_avg[i];
    const float m = w < 0.5f ? m0 + w * (g - m0) : g - (g - m0) * (1.0f - w);
    const float v = exp_avg_sq[i] * a.beta2 + (1.0f - a.beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    float v_used = v;
    if (a.amsgrad) {
      const float vmax = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
      max_exp_avg_sq[i] = vmax;
      v_used = vmax;
    }
    const float denom = sqrtf(v_used) / bias_correction2_sqrt + a.eps;
    param[i] = p - step_size * (m / denom);
  }
}

}  // namespace

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdArgs& a, StreamHandle stream) {
  launch(sgd_kernel, dim3(grid_blocks(n, kThreads)), dim3(kThreads), 0, to_stream(stream),
         param, grad, momentum_buffer, n, a);
}

void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                 float* max_exp_avg_sq, int64_t n, const AdamArgs& a, StreamHandle stream) {
  const double t = static_cast<double>(a.step);
  const double step_size = a.lr / (1.0 - std::pow(static_cast<double>(a.beta1), t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(static_cast<double>(a.beta2), t));
  launch(adam_kernel, dim3(grid_blocks(n, kThreads)), dim3(kThreads), 0, to_stream(stream),
         param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, a, static_cast<float>(step_size),
         static_cast<float>(bc2_sqrt));
}

}  // namespace pyengine::gpu
