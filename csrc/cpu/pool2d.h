// 2-d pooling on the CPU, float32: max (with indices), average, max-unpool and adaptive average,
// forward and backward.
//
// Shape letters: NC planes (N * C, each pooled on its own), H W input plane, P Q output plane,
// R S kernel taps (p.kernel_h, p.kernel_w). Arrays are C-contiguous: element (plane, h, w) sits
// at (plane * H + h) * W + w. Outputs come first, are fully written, and must not overlap an
// input. Indices are int64 flat positions h * W + w in the unpadded plane of their (n, c).
//
// What each kernel computes is defined by pyengine/backends/numpy_ref/pool2d.py; the backward
// kernels gather (each dx element is written by the one task that owns its input row), so they
// need no atomics and give bitwise the same result for a fixed thread count.
#pragma once

#include <cstdint>

#include "common/params.h"

namespace pyengine::cpu {

// y, indices (NC, P, Q) from x (NC, H, W); P, Q = p.output_h(H), p.output_w(W).
void max_pool2d_forward(float* y, int64_t* indices, const float* x, int64_t NC, int64_t H,
                        int64_t W, const Pool2dParams& p);

// dx (NC, H, W): each element gathers dy (NC, P, Q) of the windows whose index points at it, in
// row-major window order. An index that points outside its window's rows (or, where windows do
// not overlap, outside the window) contributes nothing (never the case for indices from
// max_pool2d_forward); -1 contributes nothing.
void max_pool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                         int64_t H, int64_t W, const Pool2dParams& p);

// y (NC, P, Q): window sums (taps in row-major order) divided by the window's divisor.
void avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                        const Pool2dParams& p);

// dx (NC, H, W): each element gathers dy / divisor of the windows that contain it.
void avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                         const Pool2dParams& p);

// y (NC, Lout) zero except y[plane, indices[plane, k]] = x[plane, k] (k < Lin; the last k wins
// a repeated index). Every index must lie in [0, Lout): the binding checks.
void max_unpool2d_forward(float* y, const float* x, const int64_t* indices, int64_t NC,
                          int64_t Lin, int64_t Lout);

// dx (NC, Lin) = dy (NC, Lout) gathered at indices (each in [0, Lout): the binding checks).
void max_unpool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t Lin, int64_t Lout);

// y (NC, P, Q): the mean over window [floor(i*H/P), ceil((i+1)*H/P)) x (same along W).
void adaptive_avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                                 int64_t P, int64_t Q);

// dx (NC, H, W): each element gathers dy / area of the adaptive windows that contain it.
void adaptive_avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                                  int64_t P, int64_t Q);

// Position of the first of n indices outside [0, limit), or -1 when all lie inside: what the
// bindings run before the unpool kernels, whose scatter or gather would otherwise leave the plane.
int64_t first_index_out_of_range(const int64_t* indices, int64_t n, int64_t limit);

}  // namespace pyengine::cpu
