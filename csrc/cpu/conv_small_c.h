// Direct convolution for few input channels (first layers: C <= 4, groups 1), float32, any
// kernel size, stride, padding and dilation: forward and backward-weight. Backward-data of a
// first layer is rarely needed; the dispatch sends it to the general algorithm.
//
// Shape letters: N batch, C input channels, K output channels, H W input plane, R S kernel,
// P Q output plane. Arrays are C-contiguous NCHW, w is (K, C, R, S); outputs come first, are
// fully written and must not overlap an input.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

// Input channels up to which the path applies: with more, the GEMM's reduction over C*R*S is
// long enough for im2col to run near its ceiling.
constexpr int64_t kSmallCMaxChannels = 4;

// True when these kernels compute this convolution: groups 1 and C <= kSmallCMaxChannels.
bool small_c_applies(int64_t C, const Conv2dParams& p);

// y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, C, R, S)) + b (K or nullptr).
void small_c_conv2d_forward(float* y, const float* x, const float* w, const float* b,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                            int64_t S, const Conv2dParams& p);

// dw (K, C, R, S) given dy (N, K, P, Q) and x.
void small_c_conv2d_backward_weight(float* dw, const float* dy, const float* x, int64_t N,
                                    int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                    int64_t S, const Conv2dParams& p);

struct SmallCProblem {
  int64_t N = 0, C = 0, H = 0, W = 0, K = 0, R = 0, S = 0, P = 0, Q = 0;
  Conv2dParams p;
};

PYENGINE_ISA_DECLARE(void small_c_forward_impl(const SmallCProblem& pb, float* y,
                                               const float* x, const float* w, const float* b))
PYENGINE_ISA_DECLARE(void small_c_backward_weight_impl(const SmallCProblem& pb, float* dw,
                                                       const float* dy, const float* x))

}  // namespace pyengine::cpu
