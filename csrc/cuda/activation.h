// Host entry points of the pointwise activation kernels (csrc/cuda/activation.cu).
//
// Shape letters: n elements; N C L for the bias-fused form (bias per channel of (N,C,L)).
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

void activation_forward(float* y, const float* x, int64_t n, Activation kind,
                        float negative_slope, StreamHandle stream);
// dx from dy and the forward's input x (relu, leaky_relu) or output y (sigmoid, tanh).
void activation_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                         Activation kind, float negative_slope, StreamHandle stream);
// y = act(x + bias[c]) for x (N,C,L): the epilogue of a layer whose bias was not added yet, in
// one pass over memory instead of two.
void bias_activation_forward(float* y, const float* x, const float* bias, int64_t N, int64_t C,
                             int64_t L, Activation kind, float negative_slope,
                             StreamHandle stream);

}  // namespace pyengine::gpu
