// Host entry points of the emulator's self-test kernels (emu_test_kernels.cu), bound only into
// pyengine._cuda_emu for tests/test_cuda_emu.py.
//
// Shape letters: n elements, B blocks.
#pragma once

#include <cstdint>

namespace pyengine::emu_tests {

// out[b] = sum of in[b*256 : (b+1)*256] (zero past n) by a shared-memory tree. With
// barriers = false the __syncthreads between the levels of the tree is missing: a planted bug
// that the shuffled thread order of the emulator must expose.
void block_reduce(float* out, const float* in, int64_t n, bool barriers);

// out[b] = sum of the 32 * warps values of block b, by __shfl_down_sync within each warp and
// one shared-memory step between warps (blocks of 32 * warps threads).
void warp_reduce(float* out, const float* in, int64_t n, int warps);

// For each warp of one 64-thread block, at out[4w .. 4w+3]: __ballot_sync of (lane odd),
// __any_sync of (lane == 5), __all_sync of (lane < 32) and __shfl_xor_sync(lane, 1) of lane 6.
void votes(unsigned* out);

// out[i] = value of dynamic shared memory word i read before anything wrote it (0xffffffff
// on the emulator, whose shared memory starts poisoned).
void read_uninitialised_shared(unsigned* out, int words);

// count[0] += 1 from every thread of `blocks` blocks of 128 threads (integer atomics).
void atomic_count(unsigned long long* count, int blocks);

// Planted barrier misuses; each must raise an error instead of hanging:
// 0: __syncthreads inside a branch only half the block takes,
// 1: a shuffle reading a lane outside its mask,
// 2: a warp collective whose mask names a lane that has exited.
void misuse(int kind);

}  // namespace pyengine::emu_tests
