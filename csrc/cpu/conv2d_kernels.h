// The per-ISA entry points of the im2col_gemm convolution (conv2d.h), declared for every ISA
// path; defined by conv2d_impl.h in conv2d.cpp (baseline), conv2d_avx2.cpp and
// conv2d_avx512.cpp; conv2d.cpp dispatches to the active path (isa.h). ISA-neutral.
//
// Shape letters as in conv2d.h: N C H W input, K R S weight, P Q output, G groups.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace pyengine::cpu {

// Geometry of one convolution, resolved by conv2d.cpp: a plain aggregate (no constructors or
// member functions, so no code of it is compiled per ISA). pad_bottom / pad_right are implied
// by P and Q: rows past H are never read, and get no gradient.
struct ConvGeom {
  int64_t N, C, H, W, K, R, S, P, Q, G;
  int64_t stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
};

// y (N,K,P,Q) = conv(x, w) + b (b may be null). Implicit GEMM per group: W_g (K/G x C/G*R*S)
// times im2col(x) packed panel by panel straight from x, bias fused in the store.
PYENGINE_ISA_DECLARE(void conv2d_forward_im2col(float* y, const float* x, const float* w,
                                                const float* b, const ConvGeom& g))

// dx (N,C,H,W): W_g^T (C/G*R*S x K/G) times dy, each tile scattered into dx (col2im) as it is
// stored; threads own disjoint images or channels of dx.
PYENGINE_ISA_DECLARE(void conv2d_backward_data_im2col(float* dx, const float* dy, const float* w,
                                                      const ConvGeom& g))

// dw (K, C/G, R, S): dy_g . im2col(x)^T, reduced along the pixels (N*P*Q) with dot kernels.
PYENGINE_ISA_DECLARE(void conv2d_backward_weight_im2col(float* dw, const float* dy,
                                                        const float* x, const ConvGeom& g))

// The implicit_gemm algorithm (conv2d_planes.h): the same three products with B read in place
// from zero-padded, stride-phase-split copies of x (forward, backward-weight) or dy
// (backward-data, kernels at most 64 wide), so only the weights are packed.
PYENGINE_ISA_DECLARE(void conv2d_forward_planes(float* y, const float* x, const float* w,
                                                const float* b, const ConvGeom& g))
PYENGINE_ISA_DECLARE(void conv2d_backward_data_planes(float* dx, const float* dy, const float* w,
                                                      const ConvGeom& g))
PYENGINE_ISA_DECLARE(void conv2d_backward_weight_planes(float* dw, const float* dy,
                                                        const float* x, const ConvGeom& g))

}  // namespace pyengine::cpu
