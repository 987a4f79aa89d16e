// Host entry points of the 2-d convolution kernels (csrc/cuda/conv2d.cu).
//
// Shape letters: N batch, C input channels, K output channels, G groups (Cg = C/G, Kg = K/G),
// H W input plane, R S kernel, P Q output plane. x (N,C,H,W), w (K,Cg,R,S), y (N,K,P,Q).
//
// Algorithms:
//   implicit_gemm_tiled  every convolution as a GEMM per group whose operands are gathered on
//                        the fly (no im2col buffer): shared-memory tiles, a register block per
//                        thread; backward-weight splits the long reduction over N*P*Q into
//                        chunks summed by a second kernel in a fixed order (deterministic).
//   direct_depthwise     groups == C (Cg == 1): one thread per output / input element, and one
//                        block per weight tap for the weight gradient; asked for a convolution
//                        that is not depthwise it runs implicit_gemm_tiled.
//   implicit_gemm_tf32   the same implicit GEMMs on the tensor cores (WMMA, TF32 operands
//                        rounded to nearest, fp32 accumulation): sm_80 and newer, selected by
//                        name only (like PyTorch with allow_tf32; auto stays exact fp32).
//   auto                 direct_depthwise for depthwise convolutions with G > 1, else the GEMM.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "cuda/api.h"

namespace pyengine::gpu {

enum class ConvAlgo : int {
  automatic = 0,
  implicit_gemm_tiled = 1,
  direct_depthwise = 2,
  implicit_gemm_tf32 = 3,
};

struct ConvShape {
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // weight (K, C/G, R, S)
  int64_t P, Q;        // output plane
};

void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const ConvShape& shape, const Conv2dParams& p, ConvAlgo algo,
                    StreamHandle stream);
void conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape& shape,
                          const Conv2dParams& p, ConvAlgo algo, StreamHandle stream);
void conv2d_backward_weight(float* dw, const float* dy, const float* x, const ConvShape& shape,
                            const Conv2dParams& p, ConvAlgo algo, StreamHandle stream);
// db (K) = dy (N,K,L) summed over N and L (L = P*Q).
void conv2d_backward_bias(float* db, const float* dy, int64_t N, int64_t K, int64_t L,
                          StreamHandle stream);

}  // namespace pyengine::gpu
