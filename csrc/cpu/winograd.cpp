// Winograd convolution: the baseline (x86-64-v2) copy of the kernels (winograd_kernels.h), and
// the public entry points of winograd.h, which split groups and pick the ISA path.
//
// Shape letters as in winograd.h: N C H W input, K P Q output, G groups.
#include "cpu/winograd.h"

#include <vector>

#include "cpu/isa.h"
#include "cpu/winograd_kernels.h"

namespace pyengine::cpu {

namespace {

void run(const WinogradProblem& pb) { PYENGINE_ISA_DISPATCH(winograd_run(pb)); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// pb with its pads and sizes those of a convolution dilated by (dh, dw): the undilated problems
// of its sub-planes. Output row p = a + dh*i reads input rows (a - pad) + dh*(i + r), which are
// the rows h0 + dh*j (h0 = (a - pad) mod dh) of the input sub-plane, at j = i + r + e with
// e = (a - pad - h0) / dh: an undilated convolution with pad -e. Columns alike.
std::vector<WinogradProblem> split_dilated(const WinogradProblem& pb, int64_t dh, int64_t dw) {
  if (dh == 1 && dw == 1) return {pb};
  std::vector<WinogradProblem> subs;
  for (int64_t a = 0; a < dh && a < pb.P; ++a) {
    const int64_t h0 = ((a - pb.pad_top) % dh + dh) % dh;
    const int64_t e = (a - pb.pad_top - h0) / dh;
    const int64_t rows = pb.H > h0 ? ceil_div(pb.H - h0, dh) : 0;
    for (int64_t b = 0; b < dw && b < pb.Q; ++b) {
      const int64_t w0 = ((b - pb.pad_left) % dw + dw) % dw;
      const int64_t f = (b - pb.pad_left - w0) / dw;
      const int64_t cols = pb.W > w0 ? ceil_div(pb.W - w0, dw) : 0;
      WinogradProblem sub = pb;
      sub.P = ceil_div(pb.P - a, dh), sub.Q = ceil_div(pb.Q - b, dw);
      sub.H = rows, sub.W = cols;
      sub.pad_top = -e, sub.pad_left = -f;
      // An empty input sub-plane is never read (every tap is padding): keep the base pointer.
      if (rows > 0 && cols > 0) sub.x = pb.x + h0 * pb.x_h + w0 * pb.x_w;
      sub.x_h = pb.x_h * dh, sub.x_w = pb.x_w * dw;
      sub.y = pb.y + a * pb.y_h + b * pb.y_w;
      sub.y_h = pb.y_h * dh, sub.y_w = pb.y_w * dw;
      subs.push_back(sub);
    }
  }
  return subs;
}

void run_dilated(const WinogradProblem& pb, int64_t dh, int64_t dw) {
  for (const WinogradProblem& sub : split_dilated(pb, dh, dw)) run(sub);
}

void run_backward_weight(const std::vector<WinogradProblem>& subs, float* dw) {
  PYENGINE_ISA_DISPATCH(winograd_backward_weight_run(subs.data(), static_cast<int>(subs.size()),
                                                     dw));
}

}  // namespace

bool winograd_applies(int64_t R, int64_t S, const Conv2dParams& p) {
  return R == 3 && S == 3 && p.stride_h == 1 && p.stride_w == 1;
}

void winograd_conv2d_forward(int m, float* y, const float* x, const float* w, const float* b,
                             int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                             const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = C / G, Kg = K / G;
  const int64_t P = p.output_h(H, 3), Q = p.output_w(W, 3);
  for (int64_t g = 0; g < G; ++g) {
    WinogradProblem pb;
    pb.m = m;
    pb.N = N, pb.C = Cg, pb.H = H, pb.W = W;
    pb.K = Kg, pb.P = P, pb.Q = Q;
    pb.pad_top = p.pad_top, pb.pad_left = p.pad_left;
    pb.x = x + g * Cg * H * W, pb.x_n = C * H * W, pb.x_c = H * W, pb.x_h = W;
    pb.y = y + g * Kg * P * Q, pb.y_n = K * P * Q, pb.y_k = P * Q, pb.y_h = Q;
    pb.w = w + g * Kg * Cg * 9, pb.w_k = Cg * 9, pb.w_c = 9, pb.w_r = 3, pb.w_s = 1;
    pb.bias = b ? b + g * Kg : nullptr;
    run_dilated(pb, p.dilation_h, p.dilation_w);
  }
}

// dx[h][w] = sum over r, s of dy[h + pad_top - r*dh][w + pad_left - s*dw] w[r][s] (rows
// outside dy read 0) is the cross-correlation of dy with the kernel turned by 180 degrees, K and
// C exchanged, dilation kept, pads 2*d - pad: a Winograd forward problem whose weight strides
// run backwards.
void winograd_conv2d_backward_data(int m, float* dx, const float* dy, const float* w,
                                   int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                   const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = C / G, Kg = K / G;
  const int64_t P = p.output_h(H, 3), Q = p.output_w(W, 3);
  for (int64_t g = 0; g < G; ++g) {
    WinogradProblem pb;
    pb.m = m;
    pb.N = N, pb.C = Kg, pb.H = P, pb.W = Q;
    pb.K = Cg, pb.P = H, pb.Q = W;
    pb.pad_top = 2 * p.dilation_h - p.pad_top, pb.pad_left = 2 * p.dilation_w - p.pad_left;
    pb.x = dy + g * Kg * P * Q, pb.x_n = K * P * Q, pb.x_c = P * Q, pb.x_h = Q;
    pb.y = dx + g * Cg * H * W, pb.y_n = C * H * W, pb.y_k = H * W, pb.y_h = W;
    // w'(k' = c, c' = k, r, s) = w[k][c][2 - r][2 - s].
    pb.w = w + g * Kg * Cg * 9 + 8, pb.w_k = 9, pb.w_c = Cg * 9, pb.w_r = -3, pb.w_s = -1;
    pb.bias = nullptr;
    run_dilated(pb, p.dilation_h, p.dilation_w);
  }
}

void winograd_conv2d_backward_weight(int m, float* dw, const float* dy, const float* x,
                                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                     const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = C / G, Kg = K / G;
  const int64_t P = p.output_h(H, 3), Q = p.output_w(W, 3);
  for (int64_t g = 0; g < G; ++g) {
    WinogradProblem pb;
    pb.m = m;
    pb.N = N, pb.C = Cg, pb.H = H, pb.W = W;
    pb.K = Kg, pb.P = P, pb.Q = Q;
    pb.pad_top = p.pad_top, pb.pad_left = p.pad_left;
    pb.x = x + g * Cg * H * W, pb.x_n = C * H * W, pb.x_c = H * W, pb.x_h = W;
    // The kernels only read y here: it holds dy.
    pb.y = const_cast<float*>(dy) + g * Kg * P * Q, pb.y_n = K * P * Q, pb.y_k = P * Q;
    pb.y_h = Q;
    run_backward_weight(split_dilated(pb, p.dilation_h, p.dilation_w), dw + g * Kg * Cg * 9);
  }
}

}  // namespace pyengine::cpu
