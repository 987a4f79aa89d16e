// The table of pooling kernels that each ISA path exports (pool2d_impl.h defines it once per
// path), so that pool2d.cpp can choose a path at run time.
//
// Shape letters as in pool2d.h: NC planes, H W input plane, Lin Lout unpool planes (flattened),
// P Q output plane.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

struct Pool2dKernels {
  void (*max_forward)(float* y, int64_t* indices, const float* x, int64_t NC, int64_t H,
                      int64_t W, const Pool2dParams& p);
  void (*max_backward)(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                       int64_t H, int64_t W, const Pool2dParams& p);
  void (*avg_forward)(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                      const Pool2dParams& p);
  void (*avg_backward)(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                       const Pool2dParams& p);
  void (*unpool_forward)(float* y, const float* x, const int64_t* indices, int64_t NC,
                         int64_t Lin, int64_t Lout);
  void (*unpool_backward)(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                          int64_t Lin, int64_t Lout);
  void (*adaptive_forward)(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                           int64_t P, int64_t Q);
  void (*adaptive_backward)(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                            int64_t P, int64_t Q);
};

PYENGINE_ISA_DECLARE(extern const Pool2dKernels kPool2dKernels)

}  // namespace pyengine::cpu
