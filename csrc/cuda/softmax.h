// Host entry points of the softmax / log_softmax kernels (csrc/cuda/softmax.cu).
//
// Shape letters: B D I, the (before, softmax dim, after) view of the array: row (b, i) holds
// the D elements at b*D*I + d*I + i.
//
// Algorithms (both compute one row's max and sum of exponentials in one online pass):
//   warp_per_row   a warp per row, the statistics merged with shuffles: short rows
//   block_per_row  a block per row, merged through shared memory: long rows
//   auto           warp_per_row for D <= 1024, else block_per_row
#pragma once

#include <cstdint>

#include "cuda/api.h"

namespace pyengine::gpu {

enum class SoftmaxAlgo : int { automatic = 0, warp_per_row = 1, block_per_row = 2 };

// y = softmax(x) (log = false) or log_softmax(x) along D.
void softmax_forward(float* y, const float* x, int64_t B, int64_t D, int64_t I, bool log,
                     SoftmaxAlgo algo, StreamHandle stream);
// dx = y * (dy - sum(dy * y)) (softmax) or dy - exp(y) * sum(dy) (log_softmax); y is the
// forward's output.
void softmax_backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D,
                      int64_t I, bool log, SoftmaxAlgo algo, StreamHandle stream);

}  // namespace pyengine::gpu
