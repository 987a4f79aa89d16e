// Host entry points of the batch normalisation kernels (csrc/cuda/batch_norm.cu).
//
// Shape letters: N batch, C channels, L the spatial positions flattened; x, y, dx (N,C,L);
// weight, bias, mean, invstd, running statistics (C); weight / bias may be null (1 and 0).
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

// Batch statistics (biased variance), mean and invstd = 1/sqrt(var + eps) out.
void batch_norm_forward_train(float* y, float* mean, float* invstd, const float* x,
                              const float* weight, const float* bias, int64_t N, int64_t C,
                              int64_t L, double eps, StreamHandle stream);
void batch_norm_forward_eval(float* y, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             int64_t N, int64_t C, int64_t L, double eps, StreamHandle stream);
// dweight and dbias are always written (dweight as if weight were 1 when it is null).
void batch_norm_backward(float* dx, float* dweight, float* dbias, const float* dy,
                         const float* x, const float* weight, const float* mean,
                         const float* invstd, int64_t N, int64_t C, int64_t L, bool training,
                         StreamHandle stream);

}  // namespace pyengine::gpu
