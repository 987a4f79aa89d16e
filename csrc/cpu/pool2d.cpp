// 2-d pooling on the CPU, float32 (pool2d.h): the baseline (x86-64-v2) build of the kernels in
// pool2d_impl.h, and the entry points, which run the ISA path chosen at run time.
//
// Shape letters as in pool2d.h: NC planes, H W input plane, Lin Lout unpool planes.
#include "cpu/pool2d.h"

#include "cpu/pool2d_impl.h"

namespace pyengine::cpu {
namespace {

const Pool2dKernels& kernels() { PYENGINE_ISA_DISPATCH(kPool2dKernels); }

}  // namespace

int64_t first_index_out_of_range(const int64_t* indices, int64_t n, int64_t limit) {
  // A vectorised scan for the common case (all valid), then a scalar one to say where.
  uint64_t worst = 0;
#pragma omp simd reduction(max : worst)
  for (int64_t k = 0; k < n; ++k) {
    // Negative indices wrap to huge unsigned values, so one comparison covers both ends.
    const uint64_t u = static_cast<uint64_t>(indices[k]);
    worst = u > worst ? u : worst;
  }
  if (n == 0 || worst < static_cast<uint64_t>(limit)) return -1;
  for (int64_t k = 0; k < n; ++k)
    if (static_cast<uint64_t>(indices[k]) >= static_cast<uint64_t>(limit)) return k;
  return -1;
}

void max_pool2d_forward(float* y, int64_t* indices, const float* x, int64_t NC, int64_t H,
                        int64_t W, const Pool2dParams& p) {
  kernels().max_forward(y, indices, x, NC, H, W, p);
}

void max_pool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                         int64_t H, int64_t W, const Pool2dParams& p) {
  kernels().max_backward(dx, dy, indices, NC, H, W, p);
}

void avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                        const Pool2dParams& p) {
  kernels().avg_forward(y, x, NC, H, W, p);
}

void avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                         const Pool2dParams& p) {
  kernels().avg_backward(dx, dy, NC, H, W, p);
}

void max_unpool2d_forward(float* y, const float* x, const int64_t* indices, int64_t NC,
                          int64_t Lin, int64_t Lout) {
  kernels().unpool_forward(y, x, indices, NC, Lin, Lout);
}

void max_unpool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t Lin, int64_t Lout) {
  kernels().unpool_backward(dx, dy, indices, NC, Lin, Lout);
}

void adaptive_avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                                 int64_t P, int64_t Q) {
  kernels().adaptive_forward(y, x, NC, H, W, P, Q);
}

void adaptive_avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                                  int64_t P, int64_t Q) {
  kernels().adaptive_backward(dx, dy, NC, H, W, P, Q);
}

}  // namespace pyengine::cpu
