// Depthwise convolution: the baseline (x86-64-v2) copy of the kernels (depthwise_kernels.h),
// and the public entry points of depthwise.h, which pick the ISA path.
//
// Shape letters as in depthwise.h: N C H W input, K = C * mult output, R S kernel, P Q output.
#include "cpu/depthwise.h"

#include "cpu/depthwise_kernels.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

namespace {

DepthwiseProblem problem(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                         int64_t S, const Conv2dParams& p) {
  DepthwiseProblem pb;
  pb.N = N, pb.C = C, pb.H = H, pb.W = W, pb.K = K, pb.R = R, pb.S = S;
  pb.P = p.output_h(H, R), pb.Q = p.output_w(W, S);
  pb.p = p;
  return pb;
}

}  // namespace

bool depthwise_applies(int64_t C, int64_t K, const Conv2dParams& p) {
  return p.groups == C && K % C == 0;
}

void depthwise_conv2d_forward(float* y, const float* x, const float* w, const float* b,
                              int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                              int64_t S, const Conv2dParams& p) {
  const DepthwiseProblem pb = problem(N, C, H, W, K, R, S, p);
  PYENGINE_ISA_DISPATCH(depthwise_forward_impl(pb, y, x, w, b));
}

void depthwise_conv2d_backward_data(float* dx, const float* dy, const float* w, int64_t N,
                                    int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                    int64_t S, const Conv2dParams& p) {
  const DepthwiseProblem pb = problem(N, C, H, W, K, R, S, p);
  PYENGINE_ISA_DISPATCH(depthwise_backward_data_impl(pb, dx, dy, w));
}

void depthwise_conv2d_backward_weight(float* dw, const float* dy, const float* x, int64_t N,
                                      int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                                      int64_t S, const Conv2dParams& p) {
  const DepthwiseProblem pb = problem(N, C, H, W, K, R, S, p);
  PYENGINE_ISA_DISPATCH(depthwise_backward_weight_impl(pb, dw, dy, x));
}

}  // namespace pyengine::cpu
