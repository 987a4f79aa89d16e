// softmax and log_softmax on the CPU, float32, forward and backward along one dimension.
//
// Shape letters: the tensor is viewed as (B, D, I) around the softmax dimension: B is the
// product of the dimensions before it, D its length, I the product of those after it; element
// (b, d, i) sits at (b*D + d)*I + i. Arrays are C-contiguous; outputs come first, are fully
// written and must not overlap an input (the kernels read through restrict pointers). The
// backward kernels take the forward's output y, never its input.
#pragma once

#include <cstdint>

namespace pyengine::cpu {

// y = exp(x - max) / sum(exp(x - max)) along D.
void softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I);

// dx = y * (dy - sum(dy * y)) along D.
void softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                      int64_t I);

// y = (x - max) - log(sum(exp(x - max))) along D.
void log_softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I);

// dx = dy - exp(y) * sum(dy) along D.
void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                          int64_t I);

}  // namespace pyengine::cpu
