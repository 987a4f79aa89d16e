// Parameter structs of the kernel interface and the output-size helpers, shared by the CPU
// kernels, the CUDA kernels and the emulator build of the CUDA kernels.
//
// The same structs exist in Python (pyengine/params.py) with the same field names, order and
// defaults; tests/test_native_build.py checks the fields and sweeps the helpers on both sides.
// pyengine.functional validates every argument, so kernels receive valid params; the helpers
// still compute what the Python ones do for any input (a size <= 0 included) so that both sides
// agree on the value that functional turns into an error message.
//
// Shape letters: H/W input height/width, R/S kernel height/width, P/Q output height/width.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PYENGINE_HD __host__ __device__
#else
#define PYENGINE_HD
#endif

namespace pyengine {

// Python's a // b for b > 0. C++ division truncates toward zero, which differs for a negative
// numerator (a window larger than the padded input).
PYENGINE_HD inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Output length of a convolution along one axis: floor((H + pads - d(k-1) - 1) / s) + 1.
PYENGINE_HD inline int64_t conv_output_size(int64_t size, int64_t kernel, int64_t stride,
                                            int64_t pad_before, int64_t pad_after,
                                            int64_t dilation) {
  return floor_div(size + pad_before + pad_after - dilation * (kernel - 1) - 1, stride) + 1;
}

// Output length of a pooling window along one axis (PyTorch's rule). With ceil_mode the
// division rounds up, but a last window that would start in the right padding is dropped: it
// must start inside the input or the left padding.
PYENGINE_HD inline int64_t pool_output_size(int64_t size, int64_t kernel, int64_t stride,
                                            int64_t pad, int64_t dilation, bool ceil_mode) {
  int64_t numerator = size + 2 * pad - dilation * (kernel - 1) - 1;
  if (ceil_mode) numerator += stride - 1;
  int64_t out = floor_div(numerator, stride) + 1;
  if (ceil_mode && (out - 1) * stride >= size + pad) --out;
  return out;
}

// Output length of a transposed convolution: (H - 1)s - 2p + d(k - 1) + output_padding + 1.
PYENGINE_HD inline int64_t conv_transpose_output_size(int64_t size, int64_t kernel,
                                                      int64_t stride, int64_t pad,
                                                      int64_t dilation, int64_t output_padding) {
  return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1;
}

// Geometry of a 2-d convolution (cross-correlation, NCHW, weight K x C/G x R x S). Padding is
// per side: padding='same' with an even effective kernel puts the extra row/column at the
// bottom/right.
struct Conv2dParams {
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_top = 0;
  int64_t pad_bottom = 0;
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  int64_t groups = 1;

  PYENGINE_HD int64_t output_h(int64_t h, int64_t r) const {
    return conv_output_size(h, r, stride_h, pad_top, pad_bottom, dilation_h);
  }
  PYENGINE_HD int64_t output_w(int64_t w, int64_t s) const {
    return conv_output_size(w, s, stride_w, pad_left, pad_right, dilation_w);
  }
};

// Geometry and options of max/avg pooling. divisor_override 0 means none. The kernel and
// stride have no default in Python; 1 here only makes a default-constructed struct harmless.
struct Pool2dParams {
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
  int64_t divisor_override = 0;

  PYENGINE_HD int64_t output_h(int64_t h) const {
    return pool_output_size(h, kernel_h, stride_h, pad_h, dilation_h, ceil_mode);
  }
  PYENGINE_HD int64_t output_w(int64_t w) const {
    return pool_output_size(w, kernel_w, stride_w, pad_w, dilation_w, ceil_mode);
  }
};

}  // namespace pyengine
