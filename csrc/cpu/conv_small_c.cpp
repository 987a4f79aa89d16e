// Direct convolution for few input channels: the baseline (x86-64-v2) copy of the kernels
// (conv_small_c_kernels.h), and the public entry points of conv_small_c.h, which pick the ISA
// path.
//
// Shape letters as in conv_small_c.h: N C H W input, K output, R S kernel, P Q output.
#include "cpu/conv_small_c.h"

#include "cpu/conv_small_c_kernels.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

namespace {

SmallCProblem problem(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                      int64_t S, const Conv2dParams& p) {
  SmallCProblem pb;
  pb.N = N, pb.C = C, pb.H = H, pb.W = W, pb.K = K, pb.R = R, pb.S = S;
  pb.P = p.output_h(H, R), pb.Q = p.output_w(W, S);
  pb.p = p;
  return pb;
}

}  // namespace

bool small_c_applies(int64_t C, const Conv2dParams& p) {
  return p.groups == 1 && C <= kSmallCMaxChannels;
}

void small_c_conv2d_forward(float* y, const float* x, const float* w, const float* b,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                            int64_t S, const Conv2dParams& p) {
  const SmallCProblem pb = problem(N, C, H, W, K, R, S, p);
  PYENGINE_ISA_DISPATCH(small_c_forward_impl(pb, y, x, w, b));
}

void small_c_conv2d_backward_weight(float* dw, const float* dy, const float* x, int64_t N,
                                    int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                    int64_t S, const Conv2dParams& p) {
  const SmallCProblem pb = problem(N, C, H, W, K, R, S, p);
  PYENGINE_ISA_DISPATCH(small_c_backward_weight_impl(pb, dw, dy, x));
}

}  // namespace pyengine::cpu
