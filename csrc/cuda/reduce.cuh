// Deterministic warp and block reductions shared by the kernels (softmax, losses, batch norm,
// pooling and convolution gradients).
//
// Every reduction combines values in an order fixed by the lane and warp numbers only, never by
// timing, and no float atomics are used, so a kernel gives bitwise the same result on every
// run. The xor butterfly leaves the same bits in every lane (a + b == b + a exactly), so all
// lanes, and with block_sum all threads, hold one identical result.
//
// Shape letters: none.
#pragma once

#include "cuda/common.cuh"

namespace pyengine::gpu {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarpSize = 32;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    const T other = __shfl_xor_sync(kFullMask, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

// Sum over a 1-d block whose size is a multiple of 32; every thread gets the result.
// `scratch`: __shared__ T[32]; consecutive calls may share it (each starts with a barrier).
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  v = warp_sum(v);
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();  // a previous block_sum may still be reading scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);  // every warp reduces the partials itself: no third barrier needed
}

// The running (max, sum of exp(x - max)) of an online softmax. Starts at (-inf, 0).
struct MaxSum {
  float m;
  float s;
};

__device__ __forceinline__ MaxSum max_sum_identity() { return MaxSum{-INFINITY, 0.0f}; }

// Adds one value. A NaN makes s NaN (so the row becomes NaN, as max-subtraction in numpy does);
// -inf adds nothing.
__device__ __forceinline__ void max_sum_add(MaxSum& a, float x) {
  if (x > a.m) {
    a.s = a.s * expf(a.m - x) + 1.0f;
    a.m = x;
  } else if (x != -INFINITY) {
    a.s += expf(x - a.m);
  }
}

// Merges two partial states; symmetric in its arguments, so butterflies stay deterministic.
__device__ __forceinline__ MaxSum max_sum_merge(MaxSum a, MaxSum b) {
  if (a.m == -INFINITY) return b.m == -INFINITY ? MaxSum{-INFINITY, a.s + b.s} : b;
  if (b.m == -INFINITY) return a;
  const float m = a.m > b.m ? a.m : b.m;
  return MaxSum{m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ MaxSum warp_max_sum(MaxSum v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    MaxSum other;
    other.m = __shfl_xor_sync(kFullMask, v.m, offset);
    other.s = __shfl_xor_sync(kFullMask, v.s, offset);
    v = max_sum_merge(v, other);
  }
  return v;
}

// Over a 1-d block (size a multiple of 32); every thread gets the result. scratch: 32 entries.
__device__ __forceinline__ MaxSum block_max_sum(MaxSum v, MaxSum* scratch) {
  v = warp_max_sum(v);
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : max_sum_identity();
  return warp_max_sum(v);
}

// A row whose maximum is +inf has inf - inf = NaN in the reference's shifted row: NaN it all.
__device__ __forceinline__ MaxSum max_sum_finish(MaxSum v) {
  if (v.m == INFINITY) v.s = NAN;
  return v;
}

}  // namespace pyengine::gpu
