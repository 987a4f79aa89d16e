// 2-d convolution kernels (cross-correlation, NCHW, float32): forward, backward-data,
// backward-weight and the bias gradient, as an implicit GEMM (implicit_gemm_tiled, and on the
// TF32 tensor cores implicit_gemm_tf32) and as direct depthwise kernels (direct_depthwise).
// See conv2d.h for the algorithms.
//
// Shape letters: N batch, C input channels, K output channels, G groups (Cg = C/G, Kg = K/G),
// H W input plane, R S kernel, P Q output plane, L = P*Q. A padded position (outside [0, H) x
// [0, W)) reads as zero; input rows that no window reaches get a zero gradient.
//
// The implicit GEMMs, per group g (gemm.cuh), with (c, r, s) = the weight tap, (n, p, q) an
// output pixel and (n, h, w) an input pixel:
//   forward          M = Kg  N = N*P*Q  Kd = Cg*R*S   A = w[g]          B = x gathered per tap
//   backward-data    M = Cg  N = N*H*W  Kd = Kg*R*S   A = w[g] per tap  B = dy at the output
//                    pixel each tap maps (h, w) to, zero where the stride skips it: a gather,
//                    so every dx element is written once, with no atomics
//   backward-weight  M = Kg  N = Cg*R*S Kd = N*P*Q    A = dy            B = x gathered;
//                    the long Kd is split into chunks summed in a fixed order afterwards
#include "cuda/conv2d.h"

#include "cuda/common.cuh"
#include "cuda/gemm.cuh"
#include "cuda/reduce.cuh"

namespace pyengine::gpu {

namespace {

// Everything a device-side gather needs, passed by value.
struct ConvGeom {
  int64_t N, C, H, W, K, R, S, P, Q, G, Cg, Kg;
  int64_t sh, sw, pt, pl, dh, dw;
};

ConvGeom make_geom(const ConvShape& s, const Conv2dParams& p) {
  const int64_t G = p.groups;
  return ConvGeom{s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.P, s.Q, G, s.C / G, s.K / G,
                  p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h, p.dilation_w};
}

// Input pixel x[n, channel, h, w] that tap (r, s) reads for output pixel (p, q), or 0 in the
// padding.
__device__ __forceinline__ float gather_input(const float* __restrict__ x, const ConvGeom& g,
                                              int64_t n, int64_t channel, int64_t p, int64_t q,
                                              int64_t r, int64_t s) {
  const int64_t h = p * g.sh - g.pt + r * g.dh;
  const int64_t w = q * g.sw - g.pl + s * g.dw;
  if (h < 0 || h >= g.H || w < 0 || w >= g.W) return 0.0f;
  return x[((n * g.C + channel) * g.H + h) * g.W + w];
}

// The output pixel (p, q) that tap (r, s) maps input pixel (h, w) to, if there is one.
__device__ __forceinline__ bool output_of_tap(const ConvGeom& g, int64_t h, int64_t w,
                                              int64_t r, int64_t s, int64_t& p, int64_t& q) {
  const int64_t ph = h + g.pt - r * g.dh;
  const int64_t qw = w + g.pl - s * g.dw;
  if (ph < 0 || qw < 0 || ph % g.sh != 0 || qw % g.sw != 0) return false;
  p = ph / g.sh;
  q = qw / g.sw;
  return p < g.P && q < g.Q;
}

struct ForwardOp {
  ConvGeom g;
  const float* __restrict__ x;
  const float* __restrict__ w;
  const float* __restrict__ bias;  // may be null
  float* __restrict__ y;

  __device__ float a(int64_t grp, int64_t m, int64_t kk) const {
    return w[(grp * g.Kg + m) * (g.Cg * g.R * g.S) + kk];
  }
  __device__ float b(int64_t grp, int64_t kk, int64_t col) const {
    const int64_t rs = g.R * g.S, pq = g.P * g.Q;
    const int64_t c = kk / rs, r = (kk % rs) / g.S, s = kk % g.S;
    const int64_t n = col / pq, p = (col % pq) / g.Q, q = col % g.Q;
    return gather_input(x, g, n, grp * g.Cg + c, p, q, r, s);
  }
  __device__ void store(int64_t grp, int64_t, int64_t m, int64_t col, float acc) const {
    const int64_t pq = g.P * g.Q, k = grp * g.Kg + m;
    const int64_t n = col / pq, l = col % pq;
    y[(n * g.K + k) * pq + l] = bias != nullptr ? acc + bias[k] : acc;
  }
};

struct BackwardDataOp {
  ConvGeom g;
  const float* __restrict__ dy;
  const float* __restrict__ w;
  float* __restrict__ dx;

  __device__ float a(int64_t grp, int64_t c, int64_t kk) const {
    const int64_t rs = g.R * g.S, k = kk / rs;
    return w[((grp * g.Kg + k) * g.Cg + c) * rs + kk % rs];
  }
  __device__ float b(int64_t grp, int64_t kk, int64_t col) const {
    const int64_t rs = g.R * g.S, hw = g.H * g.W;
    const int64_t k = kk / rs, r = (kk % rs) / g.S, s = kk % g.S;
    const int64_t n = col / hw, h = (col % hw) / g.W, wc = col % g.W;
    int64_t p, q;
    if (!output_of_tap(g, h, wc, r, s, p, q)) return 0.0f;
    return dy[((n * g.K + grp * g.Kg + k) * g.P + p) * g.Q + q];
  }
  __device__ void store(int64_t grp, int64_t, int64_t c, int64_t col, float acc) const {
    const int64_t hw = g.H * g.W, n = col / hw;
    dx[(n * g.C + grp * g.Cg + c) * hw + col % hw] = acc;
  }
};

struct BackwardWeightOp {
  ConvGeom g;
  const float* __restrict__ dy;
  const float* __restrict__ x;
  float* __restrict__ out;  // dw, or the split-K partials
  int64_t splits;

  __device__ float a(int64_t grp, int64_t k, int64_t kk) const {
    const int64_t pq = g.P * g.Q, n = kk / pq;
    return dy[(n * g.K + grp * g.Kg + k) * pq + kk % pq];
  }
  __device__ float b(int64_t grp, int64_t kk, int64_t col) const {
    const int64_t rs = g.R * g.S, pq = g.P * g.Q;
    const int64_t c = col / rs, r = (col % rs) / g.S, s = col % g.S;
    const int64_t n = kk / pq, p = (kk % pq) / g.Q, q = kk % g.Q;
    return gather_input(x, g, n, grp * g.Cg + c, p, q, r, s);
  }
  __device__ void store(int64_t grp, int64_t split, int64_t k, int64_t col, float acc) const {
    const int64_t crs = g.Cg * g.R * g.S;
    out[((grp * splits + split) * g.Kg + k) * crs + col] = acc;
  }
};

// ---- direct_depthwise: groups == C, so each output channel k reads input channel k / mult ---
__global__ void __launch_bounds__(256) depthwise_forward_kernel(
    float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ w,
    const float* __restrict__ bias, ConvGeom g) {
  const int64_t mult = g.Kg;
  const int64_t total = g.N * g.K * g.P * g.Q;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t q = i % g.Q, p = (i / g.Q) % g.P, k = (i / (g.P * g.Q)) % g.K;
    const int64_t n = i / (g.K * g.P * g.Q);
    const float* wk = w + k * g.R * g.S;
    float acc = 0.0f;
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s)
        acc += gather_input(x, g, n, k / mult, p, q, r, s) * wk[r * g.S + s];
    y[i] = bias != nullptr ? acc + bias[k] : acc;
  }
}

__global__ void __launch_bounds__(256) depthwise_backward_data_kernel(
    float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ w,
    ConvGeom g) {
  const int64_t mult = g.Kg;
  const int64_t total = g.N * g.C * g.H * g.W;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t wc = i % g.W, h = (i / g.W) % g.H, c = (i / (g.H * g.W)) % g.C;
    const int64_t n = i / (g.C * g.H * g.W);
    float acc = 0.0f;
    for (int64_t m = 0; m < mult; ++m) {
      const int64_t k = c * mult + m;
      const float* dyk = dy + (n * g.K + k) * g.P * g.Q;
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          int64_t p, q;
          if (output_of_tap(g, h, wc, r, s, p, q))
            acc += dyk[p * g.Q + q] * w[(k * g.R + r) * g.S + s];
        }
    }
    dx[i] = acc;
  }
}

// One block per weight tap (k, r, s): its threads stride over N*P*Q, then a block reduction.
__global__ void __launch_bounds__(256) depthwise_backward_weight_kernel(
    float* __restrict__ dw, const float* __restrict__ dy, const float* __restrict__ x,
    ConvGeom g) {
  __shared__ float scratch[32];
  const int64_t mult = g.Kg;
  const int64_t taps = g.K * g.R * g.S;
  const int64_t pq = g.P * g.Q;
  for (int64_t tap = blockIdx.x; tap < taps; tap += gridDim.x) {
    const int64_t k = tap / (g.R * g.S), r = (tap / g.S) % g.R, s = tap % g.S;
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < g.N * pq; i += blockDim.x) {
      const int64_t n = i / pq, p = (i % pq) / g.Q, q = i % g.Q;
      acc += dy[(n * g.K + k) * pq + i % pq] * gather_input(x, g, n, k / mult, p, q, r, s);
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) dw[tap] = acc;
  }
}

// db[k] = sum of dy[n, k, l] over n and l: one block per channel, deterministic.
__global__ void __launch_bounds__(256) bias_grad_kernel(float* __restrict__ db,
                                                       const float* __restrict__ dy, int64_t N,
                                                       int64_t K, int64_t L) {
  __shared__ float scratch[32];
  for (int64_t k = blockIdx.x; k < K; k += gridDim.x) {
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < N * L; i += blockDim.x)
      acc += dy[((i / L) * K + k) * L + i % L];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) db[k] = acc;
  }
}

bool is_depthwise(const ConvShape& s, const Conv2dParams& p) {
  return p.groups > 1 && p.groups == s.C;
}

ConvAlgo resolve(ConvAlgo algo, const ConvShape& s, const Conv2dParams& p) {
  if (algo == ConvAlgo::automatic || algo == ConvAlgo::direct_depthwise)
    return is_depthwise(s, p) ? ConvAlgo::direct_depthwise : ConvAlgo::implicit_gemm_tiled;
  return algo;
}

// TF32 when asked; else few output rows per group: the 32 x 32 tile; otherwise 64 x 64.
template <bool kAKFast, bool kBKFast, class Op>
void gemm(int64_t M, int64_t N, int64_t Kd, int64_t batches, const Op& op, ConvAlgo algo,
          cudaStream_t st) {
  if (algo == ConvAlgo::implicit_gemm_tf32)
    run_gemm<GemmTileTf32, kAKFast, kBKFast>(
        plan_gemm<GemmTileTf32>(M, N, Kd, batches, false), op, st);
  else if (M <= GemmTileSmall::BM)
    run_gemm<GemmTileSmall, kAKFast, kBKFast>(
        plan_gemm<GemmTileSmall>(M, N, Kd, batches, false), op, st);
  else
    run_gemm<GemmTileLarge, kAKFast, kBKFast>(
        plan_gemm<GemmTileLarge>(M, N, Kd, batches, false), op, st);
}

template <class Tile>
void backward_weight_gemm(float* dw, const float* dy, const float* x, const ConvGeom& g,
                          cudaStream_t st) {
  const int64_t crs = g.Cg * g.R * g.S;
  const GemmGeometry geo = plan_gemm<Tile>(g.Kg, crs, g.N * g.P * g.Q, g.G, true);
  if (geo.splits == 1) {
    run_gemm<Tile, true, true>(geo, BackwardWeightOp{g, dy, x, dw, 1}, st);
    return;
  }
  DeviceBuffer<float> partial(g.G * geo.splits * g.Kg * crs, st);
  run_gemm<Tile, true, true>(geo, BackwardWeightOp{g, dy, x, partial.get(), geo.splits}, st);
  sum_splits(dw, partial.get(), geo, g.Kg * crs, st);
}

constexpr int kThreads = 256;

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const ConvShape& shape, const Conv2dParams& p, ConvAlgo algo,
                    StreamHandle stream) {
  const ConvGeom g = make_geom(shape, p);
  const cudaStream_t st = to_stream(stream);
  if (resolve(algo, shape, p) == ConvAlgo::direct_depthwise) {
    const int64_t total = g.N * g.K * g.P * g.Q;
    launch(depthwise_forward_kernel, dim3(grid_blocks(total, kThreads)), dim3(kThreads), 0, st,
           y, x, w, b, g);
    return;
  }
  gemm<true, false>(g.Kg, g.N * g.P * g.Q, g.Cg * g.R * g.S, g.G, ForwardOp{g, x, w, b, y}, algo,
                    st);
}

void conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape& shape,
                          const Conv2dParams& p, ConvAlgo algo, StreamHandle stream) {
  const ConvGeom g = make_geom(shape, p);
  const cudaStream_t st = to_stream(stream);
  if (resolve(algo, shape, p) == ConvAlgo::direct_depthwise) {
    const int64_t total = g.N * g.C * g.H * g.W;
    launch(depthwise_backward_data_kernel, dim3(grid_blocks(total, kThreads)), dim3(kThreads), 0,
           st, dx, dy, w, g);
    return;
  }
  gemm<true, false>(g.Cg, g.N * g.H * g.W, g.Kg * g.R * g.S, g.G, BackwardDataOp{g, dy, w, dx},
                    algo, st);
}

void conv2d_backward_weight(float* dw, const float* dy, const float* x, const ConvShape& shape,
                            const Conv2dParams& p, ConvAlgo algo, StreamHandle stream) {
  const ConvGeom g = make_geom(shape, p);
  const cudaStream_t st = to_stream(stream);
  if (resolve(algo, shape, p) == ConvAlgo::direct_depthwise) {
    const int64_t taps = g.K * g.R * g.S;
    launch(depthwise_backward_weight_kernel, dim3(grid_blocks(taps, 1, 65535)), dim3(kThreads),
           0, st, dw, dy, x, g);
    return;
  }
  if (algo == ConvAlgo::implicit_gemm_tf32)
    backward_weight_gemm<GemmTileTf32>(dw, dy, x, g, st);
  else if (g.Kg <= GemmTileSmall::BM)
    backward_weight_gemm<GemmTileSmall>(dw, dy, x, g, st);
  else
    backward_weight_gemm<GemmTileLarge>(dw, dy, x, g, st);
}

void conv2d_backward_bias(float* db, const float* dy, int64_t N, int64_t K, int64_t L,
                          StreamHandle stream) {
  launch(bias_grad_kernel, dim3(grid_blocks(K, 1, 65535)), dim3(kThreads), 0, to_stream(stream),
         db, dy, N, K, L);
}

}  // namespace pyengine::gpu
