// Depthwise convolution on the CPU, float32: groups == C, K = C * mult output channels (channel
// k reads input channel k / mult), any kernel size, stride, padding and dilation. Forward,
// backward-data and backward-weight, vectorised along the output row.
//
// Shape letters: N batch, C input channels, K = C * mult output channels, H W input plane, R S
// kernel, P Q output plane. Arrays are C-contiguous NCHW, w is (K, 1, R, S); outputs come
// first, are fully written and must not overlap an input.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

// True when the depthwise kernels compute this convolution: groups == C and K a multiple of C.
bool depthwise_applies(int64_t C, int64_t K, const Conv2dParams& p);

// y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, 1, R, S), groups=C) + b (K or nullptr).
void depthwise_conv2d_forward(float* y, const float* x, const float* w, const float* b,
                              int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                              int64_t S, const Conv2dParams& p);

// dx (N, C, H, W) given dy (N, K, P, Q) and w.
void depthwise_conv2d_backward_data(float* dx, const float* dy, const float* w, int64_t N,
                                    int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                    int64_t S, const Conv2dParams& p);

// dw (K, 1, R, S) given dy (N, K, P, Q) and x.
void depthwise_conv2d_backward_weight(float* dw, const float* dy, const float* x, int64_t N,
                                      int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                      int64_t S, const Conv2dParams& p);

// The problem as the ISA kernels see it (one struct for the three directions).
struct DepthwiseProblem {
  int64_t N = 0, C = 0, H = 0, W = 0, K = 0, R = 0, S = 0, P = 0, Q = 0;
  Conv2dParams p;
};

PYENGINE_ISA_DECLARE(void depthwise_forward_impl(const DepthwiseProblem& pb, float* y,
                                                 const float* x, const float* w,
                                                 const float* b))
PYENGINE_ISA_DECLARE(void depthwise_backward_data_impl(const DepthwiseProblem& pb, float* dx,
                                                       const float* dy, const float* w))
PYENGINE_ISA_DECLARE(void depthwise_backward_weight_impl(const DepthwiseProblem& pb, float* dw,
                                                         const float* dy, const float* x))

}  // namespace pyengine::cpu
