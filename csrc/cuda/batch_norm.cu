// Batch normalisation kernels (float32 data, double accumulation): training forward with batch
// statistics, evaluation forward with running statistics, and the backward of both, with
// numpy_ref/batch_norm.py's formulas.
//
// Shape letters: N batch, C channels, L spatial positions; element (n, c, l) of x is at
// (n*C + c)*L + l, so channel c is N strided runs of L.
//
// Training forward and backward work a channel per block: per-thread partial sums in double
// over the channel's N*L values, a block reduction (fixed order: deterministic), then a pass
// that writes y or dx. The mean is subtracted before the variance is summed (two passes over
// the data) rather than using E[x^2] - E[x]^2, which cancels catastrophically for data with a
// large mean. Evaluation is a pointwise kernel in float32, as numpy_ref computes it.
#include "cuda/batch_norm.h"

#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int64_t element(int64_t i, int64_t c, int64_t C, int64_t L) {
  return ((i / L) * C + c) * L + i % L;
}

__global__ void __launch_bounds__(kThreads) forward_train_kernel(
    float* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ invstd_out,
    const float* __restrict__ x, const float* __restrict__ weight,
    const float* __restrict__ bias, int64_t N, int64_t C, int64_t L, double eps) {
  __shared__ double scratch[32];
  const int64_t count = N * L;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += x[element(i, c, C, L)];
    const double mean = block_sum(sum, scratch) / static_cast<double>(count);
    double sq = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
      const double d = x[element(i, c, C, L)] - mean;
      sq += d * d;
    }
    const double var = block_sum(sq, scratch) / static_cast<double>(count);
    const double invstd = 1.0 / sqrt(var + eps);
    const double w = weight != nullptr ? weight[c] : 1.0;
    const double b = bias != nullptr ? bias[c] : 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
      const int64_t k = element(i, c, C, L);
      y[k] = static_cast<float>((x[k] - mean) * invstd * w + b);
    }
    if (threadIdx.x == 0) {
      mean_out[c] = static_cast<float>(mean);
      invstd_out[c] = static_cast<float>(invstd);
    }
  }
}

__global__ void __launch_bounds__(kThreads) forward_eval_kernel(
    float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ running_mean,
    const float* __restrict__ running_var, const float* __restrict__ weight,
    const float* __restrict__ bias, int64_t C, int64_t L, int64_t n, float eps) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) {
    const int64_t c = (i / L) % C;
    const float invstd = 1.0f / sqrtf(running_var[c] + eps);
    float v = (x[i] - running_mean[c]) * invstd;
    if (weight != nullptr) v *= weight[c];
    if (bias != nullptr) v += bias[c];
    y[i] = v;
  }
}

__global__ void __launch_bounds__(kThreads) backward_kernel(
    float* __restrict__ dx, float* __restrict__ dweight, float* __restrict__ dbias,
    const float* __restrict__ dy, const float* __restrict__ x, const float* __restrict__ weight,
    const float* __restrict__ mean_in, const float* __restrict__ invstd_in, int64_t N, int64_t C,
    int64_t L, bool training) {
  __shared__ double scratch[32];
  const int64_t count = N * L;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double mean = mean_in[c], invstd = invstd_in[c];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
      const int64_t k = element(i, c, C, L);
      sum_dy += dy[k];
      sum_dy_xhat += dy[k] * ((x[k] - mean) * invstd);
    }
    const double db = block_sum(sum_dy, scratch);
    const double dw = block_sum(sum_dy_xhat, scratch);
    const double scale = invstd * (weight != nullptr ? weight[c] : 1.0);
    const bool batch_stats = training && count > 0;
    const double mean_dy = batch_stats ? db / static_cast<double>(count) : 0.0;
    const double mean_dy_xhat = batch_stats ? dw / static_cast<double>(count) : 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
      const int64_t k = element(i, c, C, L);
      const double xhat = (x[k] - mean) * invstd;
      dx[k] = static_cast<float>(scale * (dy[k] - mean_dy - xhat * mean_dy_xhat));
    }
    if (threadIdx.x == 0) {
      dweight[c] = static_cast<float>(dw);
      dbias[c] = static_cast<float>(db);
    }
  }
}

}  // namespace

void batch_norm_forward_train(float* y, float* mean, float* invstd, const float* x,
                              const float* weight, const float* bias, int64_t N, int64_t C,
                              int64_t L, double eps, StreamHandle stream) {
  launch(forward_train_kernel, dim3(grid_blocks(C, 1, 65535)), dim3(kThreads), 0,
         to_stream(stream), y, mean, invstd, x, weight, bias, N, C, L, eps);
}

void batch_norm_forward_eval(float* y, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             int64_t N, int64_t C, int64_t L, double eps, StreamHandle stream) {
  const int64_t n = N * C * L;
  launch(forward_eval_kernel, dim3(grid_blocks(n, kThreads)), dim3(kThreads), 0,
         to_stream(stream), y, x, running_mean, running_var, weight, bias, C, L, n,
         static_cast<float>(eps));
}

void batch_norm_backward(float* dx, float* dweight, float* dbias, const float* dy,
                         const float* x, const float* weight, const float* mean,
                         const float* invstd, int64_t N, int64_t C, int64_t L, bool training,
                         StreamHandle stream) {
  launch(backward_kernel, dim3(grid_blocks(C, 1, 65535)), dim3(kThreads), 0, to_stream(stream),
         dx, dweight, dbias, dy, x, weight, mean, invstd, N, C, L, training);
}

}  // namespace pyengine::gpu
