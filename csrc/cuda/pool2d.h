// Host entry points of the 2-d pooling kernels (csrc/cuda/pool2d.cu).
//
// Shape letters: N batch, C channels, H W input plane, P Q output plane; R S the window
// (p.kernel_h, p.kernel_w). x and dx are (N,C,H,W); y, dy and indices are (N,C,P,Q).
// Semantics are numpy_ref's (pyengine/backends/numpy_ref/pool2d.py) exactly.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cuda/api.h"

namespace pyengine::gpu {

struct PoolShape {
  int64_t N, C, H, W, P, Q;
};

// Max pooling: a tap replaces the running maximum when it is greater or NaN (first maximum
// wins ties, the last NaN wins); padding never competes; a window with no input tap gives -inf
// and index -1. indices: flat h*W + w in the unpadded plane.
void max_pool2d_forward(float* y, int64_t* indices, const float* x, const PoolShape& s,
                        const Pool2dParams& p, StreamHandle stream);
// One thread per input element gathers dy of the windows whose index points at it.
void max_pool2d_backward(float* dx, const float* dy, const int64_t* indices, const PoolShape& s,
                         const Pool2dParams& p, StreamHandle stream);
void avg_pool2d_forward(float* y, const float* x, const PoolShape& s, const Pool2dParams& p,
                        StreamHandle stream);
void avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s, const Pool2dParams& p,
                         StreamHandle stream);
// y (N,C,H,W here the unpool output plane) zero except y.plane[indices] = x (N,C,P,Q); where
// an index repeats, the last one in row-major order wins.
void max_unpool2d_forward(float* y, const float* x, const int64_t* indices, const PoolShape& s,
                          StreamHandle stream);
// dx (N,C,P,Q) = dy (N,C,H,W) gathered at indices.
void max_unpool2d_backward(float* dx, const float* dy, const int64_t* indices,
                           const PoolShape& s, StreamHandle stream);
// Window i along an axis of length H spans [floor(i*H/P), ceil((i+1)*H/P)).
void adaptive_avg_pool2d_forward(float* y, const float* x, const PoolShape& s,
                                 StreamHandle stream);
void adaptive_avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s,
                                  StreamHandle stream);

}  // namespace pyengine::gpu
