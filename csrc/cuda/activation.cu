// Pointwise activations (relu, leaky_relu, sigmoid, tanh), forward and backward, and the
// bias-fused forward act(x + bias[c]) (float32), with numpy_ref/activation.py's formulas:
// NaN in gives NaN out; relu'(0) = 0 and a NaN input lets dy through (PyTorch's rule).
//
// Shape letters: n elements; N C L of the bias-fused form's (N,C,L) input.
//
// One template instance per activation, so the element loop has no branch on the kind.
// Grid-stride loops over 64-bit indices; 256 threads per block: enough to hide memory latency,
// and the kernels need no shared memory.
#include "cuda/activation.h"

#include "cuda/common.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kThreads = 256;

template <Activation kKind>
__device__ __forceinline__ float act(float x, float slope) {
  if (kKind == Activation::relu) return x > 0.0f || is_nan(x) ? x : 0.0f;
  if (kKind == Activation::leaky_relu) return x > 0.0f ? x : x * slope;
  if (kKind == Activation::sigmoid) {
    // exp(-|x|) never overflows: for x < 0, sigmoid(x) = e / (1 + e) with e = exp(x).
    const float e = expf(-fabsf(x));
    const float pos = 1.0f / (1.0f + e);
    return x >= 0.0f ? pos : e * pos;
  }
  if (kKind == Activation::tanh) return tanhf(x);
  return x;
}

template <Activation kKind>
__device__ __forceinline__ float act_grad(float dy, float x, float y, float slope) {
  if (kKind == Activation::relu) return x <= 0.0f ? 0.0f : dy;
  if (kKind == Activation::leaky_relu) return x > 0.0f ? dy : dy * slope;
  if (kKind == Activation::sigmoid) return dy * (1.0f - y) * y;
  if (kKind == Activation::tanh) return dy * (1.0f - y * y);
  return dy;
}

template <Activation kKind>
__global__ void __launch_bounds__(kThreads) forward_kernel(float* __restrict__ y,
                                                           const float* __restrict__ x,
                                                           int64_t n, float slope) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride())
    y[i] = act<kKind>(x[i], slope);
}

template <Activation kKind>
__global__ void __launch_bounds__(kThreads) backward_kernel(
    float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ x,
    const float* __restrict__ y, int64_t n, float slope) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride())
    dx[i] = act_grad<kKind>(dy[i], x != nullptr ? x[i] : 0.0f, y != nullptr ? y[i] : 0.0f,
                            slope);
}

template <Activation kKind>
__global__ void __launch_bounds__(kThreads) bias_forward_kernel(
    float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ bias,
    int64_t C, int64_t L, int64_t n, float slope) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride())
    y[i] = act<kKind>(x[i] + bias[(i / L) % C], slope);
}

// Launches KERNEL<kind> for the runtime `kind` with the remaining arguments.
#define PYENGINE_ACTIVATION_LAUNCH(KERNEL, kind, n, st, ...)                          \
  do {                                                                                \
    const dim3 grid_(grid_blocks(n, kThreads)), block_(kThreads);                     \
    switch (kind) {                                                                   \
      case Activation::relu:                                                          \
        launch(KERNEL<Activation::relu>, grid_, block_, 0, st, __VA_ARGS__);          \
        break;                                                                        \
      case Activation::leaky_relu:                                                    \
        launch(KERNEL<Activation::leaky_relu>, grid_, block_, 0, st, __VA_ARGS__);    \
        break;                                                                        \
      case Activation::sigmoid:                                                       \
        launch(KERNEL<Activation::sigmoid>, grid_, block_, 0, st, __VA_ARGS__);       \
        break;                                                                        \
      case Activation::tanh:                                                          \
        launch(KERNEL<Activation::tanh>, grid_, block_, 0, st, __VA_ARGS__);          \
        break;                                                                        \
      case Activation::none:                                                          \
        launch(KERNEL<Activation::none>, grid_, block_, 0, st, __VA_ARGS__);          \
        break;                                                                        \
    }                                                                                 \
  } while (0)

}  // namespace

void activation_forward(float* y, const float* x, int64_t n, Activation kind,
                        float negative_slope, StreamHandle stream) {
  if (n == 0) return;
  PYENGINE_ACTIVATION_LAUNCH(forward_kernel, kind, n, to_stream(stream), y, x, n,
                             negative_slope);
}

void activation_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                         Activation kind, float negative_slope, StreamHandle stream) {
  if (n == 0) return;
  PYENGINE_ACTIVATION_LAUNCH(backward_kernel, kind, n, to_stream(stream), dx, dy, x, y, n,
                             negative_slope);
}

void bias_activation_forward(float* y, const float* x, const float* bias, int64_t N, int64_t C,
                             int64_t L, Activation kind, float negative_slope,
                             StreamHandle stream) {
  const int64_t n = N * C * L;
  if (n == 0) return;
  PYENGINE_ACTIVATION_LAUNCH(bias_forward_kernel, kind, n, to_stream(stream), y, x, bias, C, L,
                             n, negative_slope);
}

}  // namespace pyengine::gpu
