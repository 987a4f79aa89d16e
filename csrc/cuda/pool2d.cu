// 2-d pooling kernels (float32): max pooling with indices, average pooling, max-unpooling and
// adaptive average pooling, forward and backward, with numpy_ref/pool2d.py's semantics.
//
// Shape letters: N batch, C channels, H W input plane, P Q output plane, R S the window; a
// "plane" is one (n, c) slice. Output row p of a window pool starts at input row
// p*stride - pad; its tap r reads row p*stride - pad + r*dilation; rows outside [0, H) are
// padding, which never wins a max and adds nothing to an average.
//
// Every backward is a gather: one thread per input element finds the windows that read it
// (the taps r whose window p = (h + pad - r*dilation) / stride is integral and in range), so
// each dx element is written once, with no atomics, and the sums run in a fixed order (row-major
// window order). Max-unpooling, a scatter with possibly repeated indices, resolves collisions
// deterministically: an integer atomicMax picks the last position in row-major order (as
// numpy_ref) and a gather writes the winners.
#include "cuda/pool2d.h"

#include "cuda/common.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kThreads = 256;

struct PoolGeom {
  int64_t planes, H, W, P, Q;
  int64_t R, S, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;
  int64_t divisor_override;
};

PoolGeom make_geom(const PoolShape& s, const Pool2dParams& p) {
  return PoolGeom{s.N * s.C,    s.H,          s.W,          s.P,        s.Q,
                  p.kernel_h,   p.kernel_w,   p.stride_h,   p.stride_w, p.pad_h,
                  p.pad_w,      p.dilation_h, p.dilation_w, p.count_include_pad,
                  p.divisor_override};
}

// First and last+1 window along one axis whose tap `tap` reads input position `pos`: the
// window i with i*stride - pad + tap*dilation == pos, if it exists and is below `out`.
__device__ __forceinline__ bool window_of_tap(int64_t pos, int64_t tap, int64_t stride,
                                              int64_t pad, int64_t dilation, int64_t out,
                                              int64_t& window) {
  const int64_t t = pos + pad - tap * dilation;
  if (t < 0 || t % stride != 0) return false;
  window = t / stride;
  return window < out;
}

__global__ void __launch_bounds__(kThreads) max_forward_kernel(
    float* __restrict__ y, int64_t* __restrict__ indices, const float* __restrict__ x,
    PoolGeom g) {
  const int64_t total = g.planes * g.P * g.Q;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t q = i % g.Q, p = (i / g.Q) % g.P, plane = i / (g.P * g.Q);
    const float* xp = x + plane * g.H * g.W;
    float best = -INFINITY;
    int64_t best_index = -1;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t h = p * g.sh - g.ph + r * g.dh;
      if (h < 0 || h >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t w = q * g.sw - g.pw + s * g.dw;
        if (w < 0 || w >= g.W) continue;
        const float v = xp[h * g.W + w];
        // The first in-input tap starts the race; later ones win when greater or NaN.
        if (best_index < 0 || v > best || is_nan(v)) {
          best = v;
          best_index = h * g.W + w;
        }
      }
    }
    y[i] = best;
    indices[i] = best_index;
  }
}

__global__ void __launch_bounds__(kThreads) max_backward_kernel(
    float* __restrict__ dx, const float* __restrict__ dy, const int64_t* __restrict__ indices,
    PoolGeom g) {
  const int64_t total = g.planes * g.H * g.W;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, plane = i / (g.H * g.W);
    const int64_t target = h * g.W + w;
    const int64_t* ip = indices + plane * g.P * g.Q;
    const float* dyp = dy + plane * g.P * g.Q;
    float acc = 0.0f;
    // Taps from the last to the first visit the windows in ascending (p, q) order.
    for (int64_t r = g.R - 1; r >= 0; --r) {
      int64_t p;
      if (!window_of_tap(h, r, g.sh, g.ph, g.dh, g.P, p)) continue;
      for (int64_t s = g.S - 1; s >= 0; --s) {
        int64_t q;
        if (!window_of_tap(w, s, g.sw, g.pw, g.dw, g.Q, q)) continue;
        if (ip[p * g.Q + q] == target) acc += dyp[p * g.Q + q];
      }
    }
    dx[i] = acc;
  }
}

// The divisor of window (p, q), as numpy_ref's _avg_divisor: the window clipped to the padded
// input (count_include_pad) or to the input; the extent ignores dilation, as PyTorch.
__device__ __forceinline__ float avg_divisor(const PoolGeom& g, int64_t p, int64_t q) {
  if (g.divisor_override != 0) return static_cast<float>(g.divisor_override);
  const int64_t h0 = p * g.sh - g.ph, w0 = q * g.sw - g.pw;
  const int64_t h1 = h0 + g.R < g.H + g.ph ? h0 + g.R : g.H + g.ph;
  const int64_t w1 = w0 + g.S < g.W + g.pw ? w0 + g.S : g.W + g.pw;
  if (g.count_include_pad) return static_cast<float>((h1 - h0) * (w1 - w0));
  const int64_t ih = (h1 < g.H ? h1 : g.H) - (h0 > 0 ? h0 : 0);
  const int64_t iw = (w1 < g.W ? w1 : g.W) - (w0 > 0 ? w0 : 0);
  return static_cast<float>(ih * iw);
}

__global__ void __launch_bounds__(kThreads) avg_forward_kernel(float* __restrict__ y,
                                                              const float* __restrict__ x,
                                                              PoolGeom g) {
  const int64_t total = g.planes * g.P * g.Q;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t q = i % g.Q, p = (i / g.Q) % g.P, plane = i / (g.P * g.Q);
    const float* xp = x + plane * g.H * g.W;
    float sum = 0.0f;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t h = p * g.sh - g.ph + r * g.dh;
      if (h < 0 || h >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t w = q * g.sw - g.pw + s * g.dw;
        if (w >= 0 && w < g.W) sum += xp[h * g.W + w];
      }
    }
    y[i] = sum / avg_divisor(g, p, q);
  }
}

__global__ void __launch_bounds__(kThreads) avg_backward_kernel(float* __restrict__ dx,
                                                               const float* __restrict__ dy,
                                                               PoolGeom g) {
  const int64_t total = g.planes * g.H * g.W;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, plane = i / (g.H * g.W);
    const float* dyp = dy + plane * g.P * g.Q;
    float acc = 0.0f;
    for (int64_t r = g.R - 1; r >= 0; --r) {
      int64_t p;
      if (!window_of_tap(h, r, g.sh, g.ph, g.dh, g.P, p)) continue;
      for (int64_t s = g.S - 1; s >= 0; --s) {
        int64_t q;
        if (!window_of_tap(w, s, g.sw, g.pw, g.dw, g.Q, q)) continue;
        acc += dyp[p * g.Q + q] / avg_divisor(g, p, q);
      }
    }
    dx[i] = acc;
  }
}

// ---- max_unpool2d: x, indices (planes, L_in); y (planes, L_out) ------------------------------
__global__ void __launch_bounds__(kThreads) fill_int_kernel(int* __restrict__ a, int value,
                                                           int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) a[i] = value;
}

__global__ void __launch_bounds__(kThreads) unpool_claim_kernel(
    int* __restrict__ winner, const int64_t* __restrict__ indices, int64_t planes, int64_t l_in,
    int64_t l_out) {
  for (int64_t i = global_thread_index(); i < planes * l_in; i += grid_stride()) {
    const int64_t plane = i / l_in;
    atomicMax(winner + plane * l_out + indices[i], static_cast<int>(i % l_in));
  }
}

__global__ void __launch_bounds__(kThreads) unpool_write_kernel(
    float* __restrict__ y, const float* __restrict__ x, const int* __restrict__ winner,
    int64_t planes, int64_t l_in, int64_t l_out) {
  for (int64_t i = global_thread_index(); i < planes * l_out; i += grid_stride()) {
    const int k = winner[i];
    y[i] = k >= 0 ? x[(i / l_out) * l_in + k] : 0.0f;
  }
}

__global__ void __launch_bounds__(kThreads) unpool_backward_kernel(
    float* __restrict__ dx, const float* __restrict__ dy, const int64_t* __restrict__ indices,
    int64_t planes, int64_t l_in, int64_t l_out) {
  for (int64_t i = global_thread_index(); i < planes * l_in; i += grid_stride())
    dx[i] = dy[(i / l_in) * l_out + indices[i]];
}

// ---- adaptive average pooling: window i of P along H spans [floor(iH/P), ceil((i+1)H/P)) ----
__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t size, int64_t out) {
  return (i * size) / out;
}
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t size, int64_t out) {
  return ((i + 1) * size + out - 1) / out;
}

__global__ void __launch_bounds__(kThreads) adaptive_forward_kernel(
    float* __restrict__ y, const float* __restrict__ x, int64_t planes, int64_t H, int64_t W,
    int64_t P, int64_t Q) {
  for (int64_t i = global_thread_index(); i < planes * P * Q; i += grid_stride()) {
    const int64_t q = i % Q, p = (i / Q) % P, plane = i / (P * Q);
    const int64_t h0 = adaptive_start(p, H, P), h1 = adaptive_end(p, H, P);
    const int64_t w0 = adaptive_start(q, W, Q), w1 = adaptive_end(q, W, Q);
    const float* xp = x + plane * H * W;
    // Columns of row sums, as numpy_ref: sum each column over the window's rows, then add the
    // columns.
    float sum = 0.0f;
    for (int64_t w = w0; w < w1; ++w) {
      float column = 0.0f;
      for (int64_t h = h0; h < h1; ++h) column += xp[h * W + w];
      sum += column;
    }
    y[i] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
  }
}

__global__ void __launch_bounds__(kThreads) adaptive_backward_kernel(
    float* __restrict__ dx, const float* __restrict__ dy, int64_t planes, int64_t H, int64_t W,
    int64_t P, int64_t Q) {
  for (int64_t i = global_thread_index(); i < planes * H * W; i += grid_stride()) {
    const int64_t w = i % W, h = (i / W) % H, plane = i / (H * W);
    const float* dyp = dy + plane * P * Q;
    // The windows that contain (h, w): p in [floor(hP/H), ceil((h+1)P/H)), the same along W.
    const int64_t p0 = (h * P) / H, p1 = ((h + 1) * P + H - 1) / H;
    const int64_t q0 = (w * Q) / W, q1 = ((w + 1) * Q + W - 1) / W;
    float acc = 0.0f;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t rows = adaptive_end(p, H, P) - adaptive_start(p, H, P);
      float row = 0.0f;
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t cols = adaptive_end(q, W, Q) - adaptive_start(q, W, Q);
        row += dyp[p * Q + q] / static_cast<float>(rows * cols);
      }
      acc += row;
    }
    dx[i] = acc;
  }
}

}  // namespace

void max_pool2d_forward(float* y, int64_t* indices, const float* x, const PoolShape& s,
                        const Pool2dParams& p, StreamHandle stream) {
  const PoolGeom g = make_geom(s, p);
  launch(max_forward_kernel, dim3(grid_blocks(g.planes * g.P * g.Q, kThreads)), dim3(kThreads),
         0, to_stream(stream), y, indices, x, g);
}

void max_pool2d_backward(float* dx, const float* dy, const int64_t* indices, const PoolShape& s,
                         const Pool2dParams& p, StreamHandle stream) {
  const PoolGeom g = make_geom(s, p);
  launch(max_backward_kernel, dim3(grid_blocks(g.planes * g.H * g.W, kThreads)), dim3(kThreads),
         0, to_stream(stream), dx, dy, indices, g);
}

void avg_pool2d_forward(float* y, const float* x, const PoolShape& s, const Pool2dParams& p,
                        StreamHandle stream) {
  const PoolGeom g = make_geom(s, p);
  launch(avg_forward_kernel, dim3(grid_blocks(g.planes * g.P * g.Q, kThreads)), dim3(kThreads),
         0, to_stream(stream), y, x, g);
}

void avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s, const Pool2dParams& p,
                         StreamHandle stream) {
  const PoolGeom g = make_geom(s, p);
  launch(avg_backward_kernel, dim3(grid_blocks(g.planes * g.H * g.W, kThreads)), dim3(kThreads),
         0, to_stream(stream), dx, dy, g);
}

void max_unpool2d_forward(float* y, const float* x, const int64_t* indices, const PoolShape& s,
                          StreamHandle stream) {
  const int64_t planes = s.N * s.C, l_in = s.P * s.Q, l_out = s.H * s.W;
  if (l_in > 0x7fffffff)
    throw std::runtime_error("max_unpool2d: a plane of more than 2^31 - 1 inputs");
  const cudaStream_t st = to_stream(stream);
  DeviceBuffer<int> winner(planes * l_out, st);
  const dim3 block(kThreads);
  launch(fill_int_kernel, dim3(grid_blocks(planes * l_out, kThreads)), block, 0, st,
         winner.get(), -1, planes * l_out);
  launch(unpool_claim_kernel, dim3(grid_blocks(planes * l_in, kThreads)), block, 0, st,
         winner.get(), indices, planes, l_in, l_out);
  launch(unpool_write_kernel, dim3(grid_blocks(planes * l_out, kThreads)), block, 0, st, y, x,
         winner.get(), planes, l_in, l_out);
}

void max_unpool2d_backward(float* dx, const float* dy, const int64_t* indices,
                           const PoolShape& s, StreamHandle stream) {
  const int64_t planes = s.N * s.C, l_in = s.P * s.Q, l_out = s.H * s.W;
  launch(unpool_backward_kernel, dim3(grid_blocks(planes * l_in, kThreads)), dim3(kThreads), 0,
         to_stream(stream), dx, dy, indices, planes, l_in, l_out);
}

void adaptive_avg_pool2d_forward(float* y, const float* x, const PoolShape& s,
                                 StreamHandle stream) {
  const int64_t planes = s.N * s.C;
  launch(adaptive_forward_kernel, dim3(grid_blocks(planes * s.P * s.Q, kThreads)),
         dim3(kThreads), 0, to_stream(stream), y, x, planes, s.H, s.W, s.P, s.Q);
}

void adaptive_avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s,
                                  StreamHandle stream) {
  const int64_t planes = s.N * s.C;
  launch(adaptive_backward_kernel, dim3(grid_blocks(planes * s.H * s.W, kThreads)),
         dim3(kThreads), 0, to_stream(stream), dx, dy, planes, s.H, s.W, s.P, s.Q);
}

}  // namespace pyengine::gpu
