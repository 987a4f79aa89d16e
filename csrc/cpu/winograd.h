// Winograd convolution on the CPU, float32: F(2x2,3x3) and F(4x4,3x3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015) for 3x3 kernels at stride 1, any
// padding, dilation and groups; forward, and backward-data (itself a 3x3 stride-1 convolution
// of dy with the flipped, transposed weights). A dilation d splits the planes into d_h x d_w
// interleaved sub-planes (rows = a mod d_h, columns = b mod d_w), each an undilated
// convolution of the matching input sub-plane.
//
// Shape letters: N batch, C input channels, K output channels, G groups, H W input plane, P Q
// output plane, m output tile size (2 or 4), alpha = m + 2 the input tile size, xi one of the
// alpha^2 points of the transformed tile. Arrays are C-contiguous NCHW; outputs come first, are
// fully written and must not overlap an input.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

// True when the Winograd kernels compute this convolution: a 3x3 kernel and stride 1 (any
// padding, dilation and groups). Anything else must go to a general algorithm.
bool winograd_applies(int64_t R, int64_t S, const Conv2dParams& p);

// y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, C/G, 3, 3)) + b (K or nullptr), m = 2 or 4.
void winograd_conv2d_forward(int m, float* y, const float* x, const float* w, const float* b,
                             int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                             const Conv2dParams& p);

// dx (N, C, H, W) of that convolution given dy (N, K, P, Q) and w (K, C/G, 3, 3).
void winograd_conv2d_backward_data(int m, float* dx, const float* dy, const float* w,
                                   int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                   const Conv2dParams& p);

// dw (K, C/G, 3, 3) of that convolution given dy (N, K, P, Q) and x (N, C, H, W). With
// Y = A^T [U .* V] A per tile (U = G w G^T, V = B^T d B), the gradient of U is the sum over
// tiles of (A dY A^T) .* V, and dw = G^T dU G: alpha^2 GEMMs whose reduction runs over the
// tiles (dU[xi] (K x C) += Z[xi] (K x T) V[xi]^T, Z = A dY A^T) between two transforms.
void winograd_conv2d_backward_weight(int m, float* dw, const float* dy, const float* x,
                                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                     const Conv2dParams& p);

// One group's (and dilation sub-plane's) convolution as the ISA kernels see it: a 3x3 stride-1
// cross-correlation with signed offsets (output (p, q), tap (r, s) reads input (p + r - pad_top,
// q + s - pad_left); positions outside the input read 0, so a negative pad crops), planes
// addressed through row and column strides (a dilation sub-plane is every d-th row and column),
// and the weight read through element strides, which lets backward-data pass the flipped,
// transposed weight without a copy: w(k, c, r, s) = w[k*w_k + c*w_c + r*w_r + s*w_s].
struct WinogradProblem {
  int m = 2;
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, P = 0, Q = 0;         // output
  int64_t pad_top = 0, pad_left = 0;
  const float* x = nullptr;
  int64_t x_n = 0, x_c = 0, x_h = 0, x_w = 1;  // strides of batch, channel, row, column
  float* y = nullptr;
  int64_t y_n = 0, y_k = 0, y_h = 0, y_w = 1;
  const float* w = nullptr;
  int64_t w_k = 0, w_c = 0, w_r = 0, w_s = 0;
  const float* bias = nullptr;  // K values or nullptr
};

PYENGINE_ISA_DECLARE(void winograd_run(const WinogradProblem& pb))

// Backward-weight: the sub-problems (dilation sub-planes) of one group, x their inputs and y
// their dy planes (read only); dw (K x C x 3 x 3) receives the sum of their gradients.
PYENGINE_ISA_DECLARE(void winograd_backward_weight_run(const WinogradProblem* subs, int count,
                                                       float* dw))

}  // namespace pyengine::cpu
