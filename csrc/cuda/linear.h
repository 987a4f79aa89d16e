// Host entry points of the linear layer's GEMMs (csrc/cuda/linear.cu).
//
// Shape letters: M rows, K input features, N output features. x (M,K), w (N,K), b (N),
// y and dy (M,N).
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

// y = x w^T (+ b).
void linear_forward(float* y, const float* x, const float* w, const float* b, int64_t M,
                    int64_t K, int64_t N, StreamHandle stream);
// dx (M,K) = dy w.
void linear_backward_data(float* dx, const float* dy, const float* w, int64_t M, int64_t K,
                          int64_t N, StreamHandle stream);
// dw (N,K) = dy^T x, the M-long reduction split deterministically.
void linear_backward_weight(float* dw, const float* dy, const float* x, int64_t M, int64_t K,
                            int64_t N, StreamHandle stream);
// db (N) = dy summed over rows.
void linear_backward_bias(float* db, const float* dy, int64_t M, int64_t N, StreamHandle stream);

}  // namespace pyengine::gpu
