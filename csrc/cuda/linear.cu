// The linear layer's GEMMs (float32) on the tiled GEMM core of gemm.cuh, and the bias gradient.
//
// Shape letters: M rows, K input features, N output features. x (M,K), w (N,K), b (N),
// y and dy (M,N).
//   forward          y  (M,N) = x (M,K) w^T     GEMM M x N,  Kd = K, both operands K-contiguous
//   backward-data    dx (M,K) = dy (M,N) w      GEMM M x K,  Kd = N
//   backward-weight  dw (N,K) = dy^T x          GEMM N x K,  Kd = M, split over M into chunks
//                                               summed in a fixed order (deterministic)
//   backward-bias    db (N)   = column sums of dy: 32 columns x 8 row groups per block, the
//                    eight partial sums added in order by one thread per column
#include "cuda/linear.h"

#include "cuda/common.cuh"
#include "cuda/gemm.cuh"

namespace pyengine::gpu {

namespace {

struct ForwardOp {
  const float* __restrict__ x;
  const float* __restrict__ w;
  const float* __restrict__ bias;  // may be null
  float* __restrict__ y;
  int64_t K, N;
  __device__ float a(int64_t, int64_t m, int64_t k) const { return x[m * K + k]; }
  __device__ float b(int64_t, int64_t k, int64_t n) const { return w[n * K + k]; }
  __device__ void store(int64_t, int64_t, int64_t m, int64_t n, float acc) const {
    y[m * N + n] = bias != nullptr ? acc + bias[n] : acc;
  }
};

struct BackwardDataOp {
  const float* __restrict__ dy;
  const float* __restrict__ w;
  float* __restrict__ dx;
  int64_t K, N;
  __device__ float a(int64_t, int64_t m, int64_t j) const { return dy[m * N + j]; }
  __device__ float b(int64_t, int64_t j, int64_t k) const { return w[j * K + k]; }
  __device__ void store(int64_t, int64_t, int64_t m, int64_t k, float acc) const {
    dx[m * K + k] = acc;
  }
};

struct BackwardWeightOp {
  const float* __restrict__ dy;
  const float* __restrict__ x;
  float* __restrict__ out;  // dw, or the split-K partials (splits x N x K)
  int64_t K, N;
  __device__ float a(int64_t, int64_t n, int64_t m) const { return dy[m * N + n]; }
  __device__ float b(int64_t, int64_t m, int64_t k) const { return x[m * K + k]; }
  __device__ void store(int64_t, int64_t split, int64_t n, int64_t k, float acc) const {
    out[(split * N + n) * K + k] = acc;
  }
};

constexpr int kBiasCols = 32, kBiasRows = 8;

__global__ void __launch_bounds__(kBiasCols * kBiasRows) bias_grad_kernel(
    float* __restrict__ db, const float* __restrict__ dy, int64_t M, int64_t N) {
  __shared__ float partial[kBiasRows][kBiasCols + 1];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kBiasCols; c0 < N;
       c0 += static_cast<int64_t>(gridDim.x) * kBiasCols) {
    const int64_t col = c0 + tx;
    float acc = 0.0f;
    if (col < N)
      for (int64_t m = ty; m < M; m += kBiasRows) acc += dy[m * N + col];
    __syncthreads();  // the previous column tile may still be reading partial
    partial[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && col < N) {
      float s = 0.0f;
      for (int r = 0; r < kBiasRows; ++r) s += partial[r][tx];
      db[col] = s;
    }
  }
}

template <class Tile, bool kAKFast, bool kBKFast, class Op>
void gemm(int64_t M, int64_t N, int64_t Kd, const Op& op, cudaStream_t st) {
  run_gemm<Tile, kAKFast, kBKFast>(plan_gemm<Tile>(M, N, Kd, 1, false), op, st);
}

template <class Tile>
void backward_weight(float* dw, const float* dy, const float* x, int64_t M, int64_t K,
                     int64_t N, cudaStream_t st) {
  const GemmGeometry geo = plan_gemm<Tile>(N, K, M, 1, true);
  if (geo.splits == 1) {
    run_gemm<Tile, false, false>(geo, BackwardWeightOp{dy, x, dw, K, N}, st);
    return;
  }
  DeviceBuffer<float> partial(geo.splits * N * K, st);
  run_gemm<Tile, false, false>(geo, BackwardWeightOp{dy, x, partial.get(), K, N}, st);
  sum_splits(dw, partial.get(), geo, N * K, st);
}

}  // namespace

void linear_forward(float* y, const float* x, const float* w, const float* b, int64_t M,
                    int64_t K, int64_t N, StreamHandle stream) {
  const ForwardOp op{x, w, b, y, K, N};
  if (M <= GemmTileSmall::BM)
    gemm<GemmTileSmall, true, true>(M, N, K, op, to_stream(stream));
  else
    gemm<GemmTileLarge, true, true>(M, N, K, op, to_stream(stream));
}

void linear_backward_data(float* dx, const float* dy, const float* w, int64_t M, int64_t K,
                          int64_t N, StreamHandle stream) {
  const BackwardDataOp op{dy, w, dx, K, N};
  if (M <= GemmTileSmall::BM)
    gemm<GemmTileSmall, true, false>(M, K, N, op, to_stream(stream));
  else
    gemm<GemmTileLarge, true, false>(M, K, N, op, to_stream(stream));
}

void linear_backward_weight(float* dw, const float* dy, const float* x, int64_t M, int64_t K,
                            int64_t N, StreamHandle stream) {
  if (N <= GemmTileSmall::BM)
    backward_weight<GemmTileSmall>(dw, dy, x, M, K, N, to_stream(stream));
  else
    backward_weight<GemmTileLarge>(dw, dy, x, M, K, N, to_stream(stream));
}

void linear_backward_bias(float* db, const float* dy, int64_t M, int64_t N,
                          StreamHandle stream) {
  launch(bias_grad_kernel, dim3(grid_blocks(N, kBiasCols, 65535)), dim3(kBiasCols, kBiasRows), 0,
         to_stream(stream), db, dy, M, N);
}

}  // namespace pyengine::gpu
