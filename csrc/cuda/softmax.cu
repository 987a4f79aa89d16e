// softmax / log_softmax along one dimension, forward and backward (float32), two versions
// (see softmax.h): warp_per_row and block_per_row.
//
// Shape letters: B D I, the (before, softmax dim, after) view: row (b, i) holds the D elements
// at b*D*I + d*I + i, so a softmax along any dim is a row softmax with element stride I.
//
// Forward: one online pass over the row gives its max m and s = sum exp(x - m) (reduce.cuh's
// MaxSum, merged across lanes and warps), a second pass writes exp(x - m) / s or
// (x - m) - log(s). Backward: one pass for the row sum (of dy * y, or of dy), one to write dx.
// Every thread of a warp or block walks the row with the same trip count, so the shuffles and
// barriers inside are reached by all of them.
#include "cuda/softmax.h"

#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kWarpRowThreads = 128;  // 4 rows per block

struct RowView {
  int64_t rows, D, I;
  __device__ int64_t base(int64_t row) const { return (row / I) * D * I + row % I; }
};

template <bool kLog>
__device__ __forceinline__ float softmax_value(float x, MaxSum st, float log_s) {
  return kLog ? (x - st.m) - log_s : expf(x - st.m) / st.s;
}

template <bool kLog>
__global__ void __launch_bounds__(kWarpRowThreads) forward_warp_kernel(
    float* __restrict__ y, const float* __restrict__ x, RowView v) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = blockDim.x / kWarpSize;
  for (int64_t row = blockIdx.x * warps + threadIdx.x / kWarpSize; row < v.rows;
       row += static_cast<int64_t>(gridDim.x) * warps) {
    const int64_t base = v.base(row);
    MaxSum st = max_sum_identity();
    for (int64_t d = lane; d < v.D; d += kWarpSize) max_sum_add(st, x[base + d * v.I]);
    st = max_sum_finish(warp_max_sum(st));
    const float log_s = logf(st.s);
    for (int64_t d = lane; d < v.D; d += kWarpSize)
      y[base + d * v.I] = softmax_value<kLog>(x[base + d * v.I], st, log_s);
  }
}

template <bool kLog>
__global__ void __launch_bounds__(1024) forward_block_kernel(
    float* __restrict__ y, const float* __restrict__ x, RowView v) {
  __shared__ MaxSum scratch[32];
  for (int64_t row = blockIdx.x; row < v.rows; row += gridDim.x) {
    const int64_t base = v.base(row);
    MaxSum st = max_sum_identity();
    for (int64_t d = threadIdx.x; d < v.D; d += blockDim.x) max_sum_add(st, x[base + d * v.I]);
    st = max_sum_finish(block_max_sum(st, scratch));
    const float log_s = logf(st.s);
    for (int64_t d = threadIdx.x; d < v.D; d += blockDim.x)
      y[base + d * v.I] = softmax_value<kLog>(x[base + d * v.I], st, log_s);
  }
}

// The per-element term of the backward's row sum and the gradient given that sum.
template <bool kLog>
__device__ __forceinline__ float backward_term(float y, float dy) {
  return kLog ? dy : dy * y;
}
template <bool kLog>
__device__ __forceinline__ float backward_value(float y, float dy, float sum) {
  return kLog ? dy - expf(y) * sum : y * (dy - sum);
}

template <bool kLog>
__global__ void __launch_bounds__(kWarpRowThreads) backward_warp_kernel(
    float* __restrict__ dx, const float* __restrict__ y, const float* __restrict__ dy,
    RowView v) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = blockDim.x / kWarpSize;
  for (int64_t row = blockIdx.x * warps + threadIdx.x / kWarpSize; row < v.rows;
       row += static_cast<int64_t>(gridDim.x) * warps) {
    const int64_t base = v.base(row);
    float sum = 0.0f;
    for (int64_t d = lane; d < v.D; d += kWarpSize)
      sum += backward_term<kLog>(y[base + d * v.I], dy[base + d * v.I]);
    sum = warp_sum(sum);
    for (int64_t d = lane; d < v.D; d += kWarpSize) {
      const int64_t k = base + d * v.I;
      dx[k] = backward_value<kLog>(y[k], dy[k], sum);
    }
  }
}

template <bool kLog>
__global__ void __launch_bounds__(1024) backward_block_kernel(
    float* __restrict__ dx, const float* __restrict__ y, const float* __restrict__ dy,
    RowView v) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < v.rows; row += gridDim.x) {
    const int64_t base = v.base(row);
    float sum = 0.0f;
    for (int64_t d = threadIdx.x; d < v.D; d += blockDim.x)
      sum += backward_term<kLog>(y[base + d * v.I], dy[base + d * v.I]);
    sum = block_sum(sum, scratch);
    for (int64_t d = threadIdx.x; d < v.D; d += blockDim.x) {
      const int64_t k = base + d * v.I;
      dx[k] = backward_value<kLog>(y[k], dy[k], sum);
    }
  }
}

SoftmaxAlgo resolve(SoftmaxAlgo algo, int64_t D) {
  if (algo != SoftmaxAlgo::automatic) return algo;
  return D <= 1024 ? SoftmaxAlgo::warp_per_row : SoftmaxAlgo::block_per_row;
}

// Threads of a block-per-row launch: enough for every thread to hold a few elements, within
// 128..1024.
unsigned block_threads(int64_t D) {
  unsigned t = 128;
  while (t < 1024 && static_cast<int64_t>(t) * 8 < D) t *= 2;
  return t;
}

}  // namespace

void softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I, bool log,
                     SoftmaxAlgo algo, StreamHandle stream) {
  const RowView v{B * I, D, I};
  if (v.rows == 0 || D == 0) return;
  const cudaStream_t st = to_stream(stream);
  if (resolve(algo, D) == SoftmaxAlgo::warp_per_row) {
    const dim3 grid(grid_blocks(v.rows, kWarpRowThreads / kWarpSize, 65535));
    launch(log ? forward_warp_kernel<true> : forward_warp_kernel<false>, grid,
           dim3(kWarpRowThreads), 0, st, y, x, v);
  } else {
    const dim3 grid(grid_blocks(v.rows, 1, 65535));
    launch(log ? forward_block_kernel<true> : forward_block_kernel<false>, grid,
           dim3(block_threads(D)), 0, st, y, x, v);
  }
}

void softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                      int64_t I, bool log, SoftmaxAlgo algo, StreamHandle stream) {
  const RowView v{B * I, D, I};
  if (v.rows == 0 || D == 0) return;
  const cudaStream_t st = to_stream(stream);
  if (resolve(algo, D) == SoftmaxAlgo::warp_per_row) {
    const dim3 grid(grid_blocks(v.rows, kWarpRowThreads / kWarpSize, 65535));
    launch(log ? backward_warp_kernel<true> : backward_warp_kernel<false>, grid,
           dim3(kWarpRowThreads), 0, st, dx, y, dy, v);
  } else {
    const dim3 grid(grid_blocks(v.rows, 1, 65535));
    launch(log ? backward_block_kernel<true> : backward_block_kernel<false>, grid,
           dim3(block_threads(D)), 0, st, dx, y, dy, v);
  }
}

}  // namespace pyengine::gpu
