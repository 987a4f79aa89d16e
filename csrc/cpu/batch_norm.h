// Batch normalisation on the CPU, float32: training forward (batch statistics), evaluation
// forward (running statistics) and the backward of both.
//
// Shape letters: N batch, C channels, L every further position flattened; x is (N, C, L),
// element (n, c, l) at (n * C + c) * L + l. Statistics are per channel over its N * L values.
// weight and bias are (C,) or null (scale 1, shift 0). Arrays are C-contiguous; outputs come
// first, are fully written and overlap no input. The reference is
// pyengine/backends/numpy_ref/batch_norm.py.
//
// Sums accumulate in double, per block of rows in an order fixed by the shape alone, so results
// do not depend on the thread count.
#pragma once

#include <cstdint>

namespace pyengine::cpu {

// y (N, C, L); mean and invstd = 1 / sqrt(var + eps) (C,), var the biased batch variance.
void batch_norm_forward_train(float* y, float* mean, float* invstd, const float* x,
                              const float* weight, const float* bias, int64_t N, int64_t C,
                              int64_t L, double eps);

// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, in float32 as the reference.
void batch_norm_forward_eval(float* y, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             int64_t N, int64_t C, int64_t L, double eps);

// dx (N, C, L), dweight (C,) = sum dy * xhat, dbias (C,) = sum dy. training: mean and invstd
// are the batch statistics (they depend on x); otherwise constants.
void batch_norm_backward(float* dx, float* dweight, float* dbias, const float* dy,
                         const float* x, const float* weight, const float* mean,
                         const float* invstd, int64_t N, int64_t C, int64_t L, bool training);

}  // namespace pyengine::cpu
