// Pointwise activations on the CPU, float32: relu, leaky_relu, sigmoid, tanh, forward and
// backward, on n contiguous elements (any shape, flattened). Outputs come first, are fully
// written and overlap no input. The reference is pyengine/backends/numpy_ref/activation.py.
#pragma once

#include <cstdint>

namespace pyengine::cpu {

enum class Activation : int { relu = 0, leaky_relu = 1, sigmoid = 2, tanh = 3 };

// y = act(x); negative_slope is leaky_relu's.
void activation_forward(float* y, const float* x, int64_t n, Activation kind,
                        float negative_slope);

// dx of activation_forward from dy, the forward's input x and output y (relu and leaky_relu
// read x, sigmoid and tanh read y).
void activation_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                         Activation kind, float negative_slope);

}  // namespace pyengine::cpu
