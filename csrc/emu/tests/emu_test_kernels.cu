// The emulator's self-test kernels: a shared-memory reduction with and without its barriers, a
// warp-shuffle reduction, votes, poisoned shared memory, atomics and planted barrier misuses
// (see emu_test_kernels.h). Compiled only into pyengine._cuda_emu.
//
// Shape letters: n elements.
#include "emu/tests/emu_test_kernels.h"

#include "cuda/common.cuh"

namespace pyengine::emu_tests {

using gpu::launch;

namespace {

constexpr int kReduceThreads = 256;

template <bool kBarriers>
__global__ void block_reduce_kernel(float* out, const float* in, int64_t n) {
  __shared__ float s[kReduceThreads];
  const int t = static_cast<int>(threadIdx.x);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kReduceThreads + t;
  s[t] = i < n ? in[i] : 0.0f;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride >>= 1) {
    if (t < stride) s[t] += s[t + stride];
    if (kBarriers) __syncthreads();  // the planted bug: without it a level reads stale sums
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

__global__ void warp_reduce_kernel(float* out, const float* in, int64_t n) {
  __shared__ float partial[32];
  const int t = static_cast<int>(threadIdx.x);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + t;
  float v = i < n ? in[i] : 0.0f;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (t % 32 == 0) partial[t / 32] = v;
  __syncthreads();
  if (t == 0) {
    float s = 0.0f;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) s += partial[w];
    out[blockIdx.x] = s;
  }
}

__global__ void votes_kernel(unsigned* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int warp = static_cast<int>(threadIdx.x / 32);
  const unsigned ballot = __ballot_sync(0xffffffffu, lane % 2);
  const int any = __any_sync(0xffffffffu, lane == 5);
  const int all = __all_sync(0xffffffffu, lane < 32);
  const int swapped = __shfl_xor_sync(0xffffffffu, lane, 1);
  if (lane == 6) {
    out[4 * warp] = ballot;
    out[4 * warp + 1] = static_cast<unsigned>(any);
    out[4 * warp + 2] = static_cast<unsigned>(all);
    out[4 * warp + 3] = static_cast<unsigned>(swapped);
  }
}

__global__ void read_shared_kernel(unsigned* out, int words) {
  PYENGINE_DYNAMIC_SHARED(unsigned, s);
  if (threadIdx.x == 0)
    for (int i = 0; i < words; ++i) out[i] = s[i];
}

__global__ void atomic_count_kernel(unsigned long long* count) { atomicAdd(count, 1ull); }

__global__ void divergent_barrier_kernel() {
  if (threadIdx.x < 16) __syncthreads();
}

__global__ void shuffle_outside_mask_kernel(float* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (lane < 16) out[lane] = __shfl_down_sync(0x0000ffffu, 1.0f, 8);
}

__global__ void exited_lane_kernel(float* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (lane == 31) return;
  out[lane] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

}  // namespace

void block_reduce(float* out, const float* in, int64_t n, bool barriers) {
  const dim3 grid(static_cast<unsigned>(gpu::ceil_div(n, kReduceThreads)));
  if (barriers)
    launch(block_reduce_kernel<true>, grid, dim3(kReduceThreads), 0, nullptr, out, in, n);
  else
    launch(block_reduce_kernel<false>, grid, dim3(kReduceThreads), 0, nullptr, out, in, n);
}

void warp_reduce(float* out, const float* in, int64_t n, int warps) {
  const dim3 grid(static_cast<unsigned>(gpu::ceil_div(n, 32 * warps)));
  launch(warp_reduce_kernel, grid, dim3(32 * warps), 0, nullptr, out, in, n);
}

void votes(unsigned* out) { launch(votes_kernel, dim3(1), dim3(64), 0, nullptr, out); }

void read_uninitialised_shared(unsigned* out, int words) {
  launch(read_shared_kernel, dim3(1), dim3(32), words * sizeof(unsigned), nullptr, out, words);
}

void atomic_count(unsigned long long* count, int blocks) {
  launch(atomic_count_kernel, dim3(blocks), dim3(128), 0, nullptr, count);
}

void misuse(int kind) {
  float scratch[32] = {};
  if (kind == 0) launch(divergent_barrier_kernel, dim3(1), dim3(32), 0, nullptr);
  if (kind == 1) launch(shuffle_outside_mask_kernel, dim3(1), dim3(32), 0, nullptr, scratch);
  if (kind == 2) launch(exited_lane_kernel, dim3(1), dim3(32), 0, nullptr, scratch);
}

}  // namespace pyengine::emu_tests
