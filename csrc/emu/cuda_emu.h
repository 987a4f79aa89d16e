// The CUDA emulator's public header: what a .cu file of csrc/cuda/ sees of CUDA when it is
// compiled by the host compiler (g++ -x c++) into pyengine._cuda_emu instead of by nvcc.
//
// It provides the subset of CUDA the kernels use, with CUDA's names and semantics:
//   - execution-space and memory-space qualifiers (__global__, __device__, __host__,
//     __forceinline__, __launch_bounds__, __shared__) and dim3 / uint3;
//   - the built-in indices threadIdx, blockIdx, blockDim, gridDim and warpSize;
//   - static __shared__ arrays and dynamic shared memory (PYENGINE_DYNAMIC_SHARED, because
//     `extern __shared__ T name[]` cannot be expressed in C++);
//   - __syncthreads, __syncwarp, warp shuffles (__shfl_sync, _up_, _down_, _xor_) and votes
//     (__ballot_sync, __any_sync, __all_sync, __activemask) on warps of 32 lanes;
//   - atomics (atomicAdd, atomicSub, atomicMax, atomicMin, atomicExch, atomicCAS, ...);
//   - the math intrinsics the kernels use (__expf, __logf, __fdividef, rsqrtf, __ldg, ...);
//   - the few runtime calls of the host code (cudaMallocAsync, cudaFreeAsync, cudaMemsetAsync,
//     cudaMemcpyAsync, cudaGetLastError, cudaGetErrorString, device queries);
//   - launch_kernel(), which csrc/cuda/common.cuh's launch() calls instead of <<<...>>>.
//
// Execution model (csrc/emu/scheduler.cpp): the blocks of a grid run on host threads (OpenMP),
// one block at a time per host thread. Every CUDA thread of a block is a fiber with its own
// small stack. Between two barriers the runnable threads of a block run one after the other in
// an order shuffled by a seeded generator (PYENGINE_EMU_SEED), each until it reaches
// __syncthreads, a warp operation or its end, either interleaved or warp by warp (one warp
// running ahead of the others); so a missing __syncthreads lets a thread read shared memory
// before another wrote it, or after another overwrote it, and the result changes with the
// seed. A warp operation is a barrier of the lanes in its mask: the last lane to arrive
// computes every lane's result. Barrier misuse (a __syncthreads some threads never reach, a
// mask naming an exited or absent lane, a shuffle reading a lane outside its mask) stops the
// launch with an error instead of hanging.
//
// Static __shared__ arrays become block-scope thread_local variables: one copy per host thread,
// which is one copy per running block. Dynamic shared memory is filled with 0xFF bytes (NaN
// floats, -1 integers) at the start of each block, so a read before a write shows up.
//
// Tensor cores: nvcuda::wmma for TF32 m16n16k8 (csrc/emu/wmma_emu.h, included at the end).
//
// Not emulated: mma.sync PTX and other WMMA shapes and precisions, cooperative groups,
// clusters, streams as concurrency (everything runs synchronously on the calling thread), and
// the reduced accuracy of fast-math intrinsics (__expf and friends are computed exactly): those
// are covered only by the GPU tests.
//
// Shape letters: none (no tensors here).
#pragma once

#if defined(__CUDACC__)
#error "csrc/emu/cuda_emu.h is for the host-compiler build of the CUDA sources, not for nvcc"
#endif

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define PYENGINE_CUDA_EMULATED 1

// ---- qualifiers ------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// At block scope thread_local implies static storage duration: one instance per host thread,
// and a host thread runs one block at a time, so every thread of a block sees the same array.
#define __shared__ thread_local

// Dynamic shared memory: `PYENGINE_DYNAMIC_SHARED(float, tile);` declares `float* tile`, the
// block's dynamic shared memory (the shared_bytes of the launch). common.cuh defines the same
// macro for nvcc.
#define PYENGINE_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::pyengine::emu::dynamic_shared_memory())

// ---- vector types of the built-ins ---------------------------------------------------------
struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit, as in CUDA
};

namespace pyengine::emu {

// What the built-in variables read for the CUDA thread that runs now.
struct Builtins {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

namespace detail {
// __thread rather than thread_local: no dynamic initialisation, so no TLS wrapper call on
// every access to a built-in. The scheduler points it at the running fiber's Builtins.
extern __thread Builtins* current;

enum class WarpOp : int { sync, shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all };

// One warp-level collective of the calling lane: waits until every lane of `mask` has reached
// a warp operation with the same mask, then returns this lane's result (a shuffled value, or a
// vote). `param` is srcLane / delta / laneMask for shuffles, the predicate for votes.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int param, int width);

using KernelBody = void (*)(void* ctx);
// Runs a grid: each CUDA thread calls body(ctx). Throws std::runtime_error for an invalid
// configuration or a barrier misuse found while running.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, KernelBody body, void* ctx);
}  // namespace detail

void syncthreads();
unsigned active_mask();
void* dynamic_shared_memory();

// The seed of the shuffled thread order: PYENGINE_EMU_SEED at load time (default 0), or the
// last set_seed(). The order of block b is a function of (seed, b) only, so a failure
// reproduces with the same seed whatever the number of host threads.
void set_seed(uint64_t seed);
uint64_t get_seed();

// Launch a kernel on the emulator: the arguments are converted to the kernel's parameter types
// once, as <<<...>>> does, and every CUDA thread receives its own copies.
template <class... KArgs, class... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shared_bytes,
                   Args&&... args) {
  using Packed = std::tuple<std::decay_t<KArgs>...>;
  struct Launch {
    void (*kernel)(KArgs...);
    Packed args;
    static void run(void* self) {
      Launch* l = static_cast<Launch*>(self);
      std::apply(l->kernel, Packed(l->args));
    }
  };
  Launch l{kernel, Packed(std::forward<Args>(args)...)};
  detail::run_grid(grid, block, shared_bytes, &Launch::run, &l);
}

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}

template <class T>
inline T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace pyengine::emu

#define threadIdx (::pyengine::emu::detail::current->thread_idx)
#define blockIdx (::pyengine::emu::detail::current->block_idx)
#define blockDim (::pyengine::emu::detail::current->block_dim)
#define gridDim (::pyengine::emu::detail::current->grid_dim)
#define warpSize 32

// ---- barriers, shuffles, votes ---------------------------------------------------------------
inline void __syncthreads() { ::pyengine::emu::syncthreads(); }

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::pyengine::emu::detail::warp_collective(::pyengine::emu::detail::WarpOp::sync, mask, 0, 0,
                                           32);
}

inline unsigned __activemask() { return ::pyengine::emu::active_mask(); }

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  using namespace ::pyengine::emu;
  return from_bits<T>(detail::warp_collective(detail::WarpOp::shfl_idx, mask, to_bits(var),
                                              src_lane, width));
}

template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  using namespace ::pyengine::emu;
  return from_bits<T>(detail::warp_collective(detail::WarpOp::shfl_up, mask, to_bits(var),
                                              static_cast<int>(delta), width));
}

template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  using namespace ::pyengine::emu;
  return from_bits<T>(detail::warp_collective(detail::WarpOp::shfl_down, mask, to_bits(var),
                                              static_cast<int>(delta), width));
}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  using namespace ::pyengine::emu;
  return from_bits<T>(detail::warp_collective(detail::WarpOp::shfl_xor, mask, to_bits(var),
                                              lane_mask, width));
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  using namespace ::pyengine::emu;
  return static_cast<unsigned>(
      detail::warp_collective(detail::WarpOp::ballot, mask, 0, predicate != 0, 32));
}

inline int __any_sync(unsigned mask, int predicate) {
  using namespace ::pyengine::emu;
  return static_cast<int>(
      detail::warp_collective(detail::WarpOp::any, mask, 0, predicate != 0, 32));
}

inline int __all_sync(unsigned mask, int predicate) {
  using namespace ::pyengine::emu;
  return static_cast<int>(
      detail::warp_collective(detail::WarpOp::all, mask, 0, predicate != 0, 32));
}

// ---- memory fences and atomics ---------------------------------------------------------------
// The threads of one block run on one host thread and switch only at barriers, but blocks run
// on several host threads at once, so atomics are real (relaxed, as CUDA's).
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

namespace pyengine::emu::detail {
// A compare-and-swap loop: floating-point adds and integer max/min have no fetch builtin.
// The generic (not _n) builtins, which accept any trivially copyable type of 4 or 8 bytes.
template <class T, class F>
inline T atomic_update(T* address, F f) {
  T old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  T desired = f(old);
  while (!__atomic_compare_exchange(address, &old, &desired, true, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
    desired = f(old);
  }
  return old;
}
}  // namespace pyengine::emu::detail

#define PYENGINE_EMU_INTEGER_ATOMICS(T)                                                       \
  inline T atomicAdd(T* a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }      \
  inline T atomicSub(T* a, T v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }      \
  inline T atomicAnd(T* a, T v) { return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); }      \
  inline T atomicOr(T* a, T v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }        \
  inline T atomicXor(T* a, T v) { return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); }      \
  inline T atomicExch(T* a, T v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }    \
  inline T atomicMax(T* a, T v) {                                                           \
    return ::pyengine::emu::detail::atomic_update(a, [v](T o) { return o < v ? v : o; });   \
  }                                                                                         \
  inline T atomicMin(T* a, T v) {                                                           \
    return ::pyengine::emu::detail::atomic_update(a, [v](T o) { return v < o ? v : o; });   \
  }                                                                                         \
  inline T atomicCAS(T* a, T compare, T v) {                                                \
    __atomic_compare_exchange_n(a, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    return compare;                                                                         \
  }

PYENGINE_EMU_INTEGER_ATOMICS(int)
PYENGINE_EMU_INTEGER_ATOMICS(unsigned int)
PYENGINE_EMU_INTEGER_ATOMICS(long long)
PYENGINE_EMU_INTEGER_ATOMICS(unsigned long long)
#undef PYENGINE_EMU_INTEGER_ATOMICS

inline float atomicAdd(float* a, float v) {
  return ::pyengine::emu::detail::atomic_update(a, [v](float o) { return o + v; });
}
inline double atomicAdd(double* a, double v) {
  return ::pyengine::emu::detail::atomic_update(a, [v](double o) { return o + v; });
}
inline float atomicExch(float* a, float v) {
  float old;
  __atomic_exchange(a, &v, &old, __ATOMIC_RELAXED);
  return old;
}

// ---- math intrinsics -------------------------------------------------------------------------
// The fast-math intrinsics are computed exactly here; on a GPU they are approximations.
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) {
  return x != x ? 0.0f : (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x));
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline unsigned __float_as_uint(float x) { unsigned u; std::memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(unsigned u) { float x; std::memcpy(&x, &u, 4); return x; }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }

template <class T>
inline T __ldg(const T* p) { return *p; }

// ---- the runtime API subset of the host code ------------------------------------------------
struct CUstream_st;
using cudaStream_t = CUstream_st*;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

// Device memory is host memory; fresh allocations are filled with 0xFF bytes (NaN floats) so a
// kernel that reads a workspace before writing it produces NaN.
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);

#include "emu/wmma_emu.h"
