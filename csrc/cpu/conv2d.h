// 2-d convolution on the CPU, float32, NCHW: forward, backward-data, backward-weight and the
// bias gradient, behind a dispatch by algorithm name.
//
// Shape letters: N batch, C input channels, K output channels, G groups, H W input plane,
// R S kernel, P Q output plane. x (N, C, H, W), w (K, C/G, R, S), b (K), y (N, K, P, Q). Group g
// reads input channels [g C/G, (g+1) C/G) and writes output channels [g K/G, (g+1) K/G).
// Arrays are C-contiguous; outputs come first, are fully written and never overlap an input.
// The semantics are those of pyengine/backends/numpy_ref/conv2d.py (cross-correlation, padding
// per side, input rows/columns that no window reaches get a zero gradient).
//
// Algorithms (Conv2dAlgo; the names are what Python's algo= takes):
//   auto          chosen by shape (conv2d.cpp: choose_*).
//   im2col_gemm   implicit GEMM on the packed GEMM micro-kernels (any stride, padding,
//                 dilation, groups): forward packs im2col panels straight from x; backward-data
//                 multiplies W^T by dy and scatters the columns into dx (col2im) in the store of
//                 each tile; backward-weight is dy * im2col(x)^T with the pixels as the
//                 reduction (transposed panels, or dot kernels for few output channels).
//   implicit_gemm the same GEMMs with B read in place from zero-padded, stride-phase-split
//                 copies of x (forward, backward-weight) or dy (backward-data): only the weights
//                 are packed; the copies cost the size of x / dy, and the padding columns and
//                 rows of the planes are computed and dropped (conv2d_planes.h).
//   direct_1x1    1x1, stride 1, no padding: plain GEMMs on the NCHW planes (no im2col).
//   winograd_2x2_3x3, winograd_4x4_3x3   3x3, stride 1 (any padding, dilation, groups):
//                 Winograd F(2x2,3x3) / F(4x4,3x3) forward, backward-data and
//                 backward-weight (winograd.h).
//   direct_depthwise  groups == C, K a multiple of C (depthwise.h): all three directions.
//   direct_small_c    groups 1, C <= 4 (first layers; conv_small_c.h): forward and
//                 backward-weight; backward-data runs the general algorithm that auto picks.
// An algorithm asked for a shape it does not handle runs im2col_gemm instead (direct_1x1 for
// any other shape, implicit_gemm's backward-data for kernels over 64 wide), so every algorithm
// is valid for every shape.
//
// Adding an algorithm: a value in Conv2dAlgo (before kCount), its name in kConv2dAlgoNames (same
// order), a case in each switch of conv2d.cpp, and the name in pyengine/backends/native_cpu/
// conv2d.py's CONV2D_ALGORITHMS.
//
// Determinism: for a fixed thread count and algorithm the result is bitwise reproducible (no
// atomics; every sum runs in a fixed order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/params.h"

namespace pyengine::cpu {

enum class Conv2dAlgo : int {
  auto_select = 0,
  im2col_gemm,
  implicit_gemm,
  direct_1x1,
  winograd_2x2_3x3,
  winograd_4x4_3x3,
  direct_depthwise,
  direct_small_c,
  kCount  // not an algorithm: the number of names below
};

inline constexpr const char* kConv2dAlgoNames[] = {"auto", "im2col_gemm", "implicit_gemm",
                                                   "direct_1x1", "winograd_2x2_3x3",
                                                   "winograd_4x4_3x3", "direct_depthwise",
                                                   "direct_small_c"};
static_assert(sizeof(kConv2dAlgoNames) / sizeof(kConv2dAlgoNames[0]) ==
                  static_cast<int>(Conv2dAlgo::kCount),
              "one name per Conv2dAlgo value");

// The algorithm called `name` ("auto" included); std::invalid_argument naming the valid ones
// otherwise.
Conv2dAlgo conv2d_algo_from_name(const std::string& name);

// Every algorithm name except "auto", in enum order.
std::vector<std::string> conv2d_algorithm_names();

// Sizes of one convolution (C and K count every channel; the groups are in Conv2dParams).
struct Conv2dShape {
  int64_t N, C, H, W, K, R, S, P, Q;
};

// y = conv(x, w) + b (b may be null).
void conv2d_forward(Conv2dAlgo algo, float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, const Conv2dParams& p);

// dx = the gradient of conv2d_forward with respect to x, given dy.
void conv2d_backward_data(Conv2dAlgo algo, float* dx, const float* dy, const float* w,
                          const Conv2dShape& s, const Conv2dParams& p);

// dw = the gradient of conv2d_forward with respect to w, given dy and x.
void conv2d_backward_weight(Conv2dAlgo algo, float* dw, const float* dy, const float* x,
                            const Conv2dShape& s, const Conv2dParams& p);

// db[k] = sum over n, p, q of dy[n, k, p, q].
void conv2d_backward_bias(float* db, const float* dy, int64_t N, int64_t K, int64_t PQ);

// The algorithm `auto` runs for this shape (never auto_select), for tests and reports.
Conv2dAlgo conv2d_choose_forward(const Conv2dShape& s, const Conv2dParams& p);
Conv2dAlgo conv2d_choose_backward_data(const Conv2dShape& s, const Conv2dParams& p);
Conv2dAlgo conv2d_choose_backward_weight(const Conv2dShape& s, const Conv2dParams& p);

}  // namespace pyengine::cpu
