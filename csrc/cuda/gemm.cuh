// The tiled, register-blocked GEMM core shared by the convolutions (implicit GEMM: operands
// gathered from the tensors on the fly) and the linear layer.
//
// For every batch b (a convolution group) it computes C_b (M x N) = A_b (M x Kd) B_b (Kd x N),
// with the Kd reduction optionally split into chunks ("split-K") that a second kernel sums in a
// fixed order, so long reductions (a weight gradient sums over N*P*Q) still fill the GPU and
// stay deterministic. An operation object supplies the operands and the epilogue:
//   float a(b, m, k)  float b(b, k, n)  void store(b, split, m, n, acc)
// and is passed by value to the kernel (it holds pointers and sizes only).
//
// A block computes a BM x BN tile of C. Per step of BK along Kd it stages a BM x BK tile of A
// and a BK x BN tile of B in shared memory (both stored k-major with one padding column, so
// neither the staging stores nor the inner-loop loads conflict on banks), then each thread
// accumulates a TM x TN register block: rows ty + i*TY and columns tx + j*TX, so that the
// threads of a warp read consecutive shared-memory words of B and write consecutive columns of
// C. Which operand index runs fastest across the threads while staging is a template flag per
// operand: the one along which the source tensor is contiguous, for coalesced loads.
//
// The TF32 variant (gemm_tf32_kernel, tile GemmTileTf32) stages the same operand tiles,
// rounded to TF32 once as they are stored (__float_to_tf32), and multiplies them on the tensor
// cores through WMMA (m16n16k8, fp32 accumulators): four warps, each a 32 x 32 quarter of the
// 64 x 64 tile as 2 x 2 fragments; the accumulators go through shared memory so the epilogue
// (op.store) sees the same (m, n) elements as in the fp32 kernel. sm_80 and newer only (the
// host code refuses older GPUs); the emulator runs it through csrc/emu/wmma_emu.h.
//
// Shape letters: M N the output rows and columns, Kd the reduction length, BM BN BK the tile.
#pragma once

#include "cuda/common.cuh"

#if defined(__CUDACC__)
#include <mma.h>
#endif

namespace pyengine::gpu {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct GemmTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN;  // threads along N
  static constexpr int TY = BM / TM;  // threads along M
  static constexpr int kThreads = TX * TY;
  static constexpr bool kTensorCores = false;
  static_assert((BM * BK) % kThreads == 0 && (BN * BK) % kThreads == 0,
                "every thread stages the same number of elements");
};

// 64 x 64 tiles, 256 threads of 4 x 4 outputs: the general case.
using GemmTileLarge = GemmTile<64, 64, 16, 4, 4>;
// 32 x 32 tiles, 64 threads of 4 x 4: few output rows (small K/G, narrow layers), where a
// 64-row tile would compute mostly padding.
using GemmTileSmall = GemmTile<32, 32, 16, 4, 4>;

// The TF32 tensor-core tile: 64 x 64 x 16, four warps of 32 x 32 (2 x 2 WMMA fragments).
struct GemmTileTf32 {
  static constexpr int BM = 64, BN = 64, BK = 16;
  static constexpr int kWarpsM = 2, kWarpsN = 2;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr bool kTensorCores = true;
  // Leading dimensions of the staged tiles, in floats: multiples of 4 (16 bytes, WMMA's rule)
  // that keep every fragment's first element 32-byte aligned.
  static constexpr int kLdA = BK + 4, kLdB = BN + 4, kLdC = BN + 4;
};

struct GemmGeometry {
  int64_t M, N, Kd;
  int64_t batches;  // independent GEMMs (convolution groups)
  int64_t splits;   // chunks of Kd per batch (1: no split)
  int64_t k_chunk;  // Kd per chunk, a multiple of BK
};

// One output tile of a block: rows from m0, its batch, its chunk of Kd [k_begin, k_end).
struct TileJob {
  int64_t m0, batch, split, k_begin, k_end;
};

// Calls body(job) for every (row tile, batch x split) of this block's column tile. y and z
// loop so that more than 65535 row tiles or batches need no second launch; the trip counts are
// the same for every thread of the block, so barriers inside body are safe.
template <int BM, class Body>
__device__ __forceinline__ void for_each_tile(const GemmGeometry& g, Body body) {
  const int64_t m_tiles = ceil_div(g.M, BM);
  const int64_t z_count = g.batches * g.splits;
  for (int64_t mt = blockIdx.y; mt < m_tiles; mt += gridDim.y) {
    for (int64_t z = blockIdx.z; z < z_count; z += gridDim.z) {
      const int64_t split = z % g.splits, k_begin = split * g.k_chunk;
      const int64_t k_end = k_begin + g.k_chunk < g.Kd ? k_begin + g.k_chunk : g.Kd;
      body(TileJob{mt * BM, z / g.splits, split, k_begin, k_end});
    }
  }
}

// Stages the BM x BK tile of A and the BK x BN tile of B at (t.m0, n0, k0): put_a(r, kk, v)
// and put_b(kk, c, v) store each element, zero outside the matrices and past t.k_end. The
// index that runs fastest across the threads is, per operand, the one along which its source
// tensor is contiguous (kAKFast / kBKFast: Kd), for coalesced loads.
template <class Tile, bool kAKFast, bool kBKFast, class Op, class PutA, class PutB>
__device__ __forceinline__ void stage_operands(const Op& op, const GemmGeometry& g,
                                               const TileJob& t, int64_t n0, int64_t k0,
                                               PutA put_a, PutB put_b) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK;
  for (int e = static_cast<int>(threadIdx.x); e < BM * BK; e += Tile::kThreads) {
    const int kk = kAKFast ? e % BK : e / BM;
    const int r = kAKFast ? e / BK : e % BM;
    const int64_t gm = t.m0 + r, gk = k0 + kk;
    put_a(r, kk, (gm < g.M && gk < t.k_end) ? op.a(t.batch, gm, gk) : 0.0f);
  }
  for (int e = static_cast<int>(threadIdx.x); e < BN * BK; e += Tile::kThreads) {
    const int kk = kBKFast ? e % BK : e / BN;
    const int c = kBKFast ? e / BK : e % BN;
    const int64_t gn = n0 + c, gk = k0 + kk;
    put_b(kk, c, (gn < g.N && gk < t.k_end) ? op.b(t.batch, gk, gn) : 0.0f);
  }
}

template <class Tile, bool kAKFast, bool kBKFast, class Op>
__global__ void __launch_bounds__(Tile::kThreads) gemm_tiled_kernel(GemmGeometry g, Op op) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK;
  constexpr int TM = Tile::TM, TN = Tile::TN, TX = Tile::TX, TY = Tile::TY;
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % TX;
  const int ty = tid / TX;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;

  for_each_tile<BM>(g, [&](const TileJob& t) {
    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
      for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int64_t k0 = t.k_begin; k0 < t.k_end; k0 += BK) {
      stage_operands<Tile, kAKFast, kBKFast>(
          op, g, t, n0, k0, [&](int r, int kk, float v) { As[kk][r] = v; },
          [&](int kk, int c, float v) { Bs[kk][c] = v; });
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float av[TM], bv[TN];
        for (int i = 0; i < TM; ++i) av[i] = As[kk][ty + i * TY];
        for (int j = 0; j < TN; ++j) bv[j] = Bs[kk][tx + j * TX];
        for (int i = 0; i < TM; ++i)
          for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
      }
      __syncthreads();  // the next step overwrites the tiles
    }
    for (int i = 0; i < TM; ++i) {
      const int64_t gm = t.m0 + ty + i * TY;
      if (gm >= g.M) continue;
      for (int j = 0; j < TN; ++j) {
        const int64_t gn = n0 + tx + j * TX;
        if (gn < g.N) op.store(t.batch, t.split, gm, gn, acc[i][j]);
      }
    }
  });
}

template <class Tile, bool kAKFast, bool kBKFast, class Op>
__global__ void __launch_bounds__(Tile::kThreads) gemm_tf32_kernel(GemmGeometry g, Op op) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // never launched: run_gemm refuses TF32 below sm_80
#else
  namespace wmma = nvcuda::wmma;
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK;
  constexpr int kLdA = Tile::kLdA, kLdB = Tile::kLdB, kLdC = Tile::kLdC;
  __shared__ __align__(32) float As[BM * kLdA];  // (m, k), row-major
  __shared__ __align__(32) float Bs[BK * kLdB];  // (k, n), row-major
  __shared__ __align__(32) float Cs[BM * kLdC];  // the accumulators, for the epilogue
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
  using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
  using FragC = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32;
  const int wm = (warp / Tile::kWarpsN) * 32;  // this warp's 32 x 32 quarter
  const int wn = (warp % Tile::kWarpsN) * 32;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;

  for_each_tile<BM>(g, [&](const TileJob& t) {
    FragC acc[2][2];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = t.k_begin; k0 < t.k_end; k0 += BK) {
      // Rounded to TF32 once, as staged, rather than per fragment load.
      stage_operands<Tile, kAKFast, kBKFast>(
          op, g, t, n0, k0,
          [&](int r, int kk, float v) { As[r * kLdA + kk] = wmma::__float_to_tf32(v); },
          [&](int kk, int c, float v) { Bs[kk * kLdB + c] = wmma::__float_to_tf32(v); });
      __syncthreads();
      for (int ks = 0; ks < BK; ks += 8) {
        FragA a[2];
        FragB b[2];
        for (int i = 0; i < 2; ++i)
          wmma::load_matrix_sync(a[i], As + (wm + 16 * i) * kLdA + ks, kLdA);
        for (int j = 0; j < 2; ++j)
          wmma::load_matrix_sync(b[j], Bs + ks * kLdB + wn + 16 * j, kLdB);
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
      }
      __syncthreads();  // the next step overwrites the tiles
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(Cs + (wm + 16 * i) * kLdC + wn + 16 * j, acc[i][j], kLdC,
                                wmma::mem_row_major);
    __syncthreads();
    // Consecutive threads take consecutive columns: coalesced for the stores of every op.
    for (int e = tid; e < BM * BN; e += Tile::kThreads) {
      const int r = e / BN, c = e % BN;
      const int64_t gm = t.m0 + r, gn = n0 + c;
      if (gm < g.M && gn < g.N) op.store(t.batch, t.split, gm, gn, Cs[r * kLdC + c]);
    }
    __syncthreads();  // Cs is rewritten by the next tile
  });
#endif
}

// out[b*MN + i] = sum over s of partial[(b*splits + s)*MN + i], s ascending: the second pass
// of a split-K GEMM, in a fixed order whatever the timing.
// (A template only so that the header can be included by several files.)
template <class T>
__global__ void __launch_bounds__(256) gemm_sum_splits_kernel(T* __restrict__ out,
                                                             const T* __restrict__ partial,
                                                             int64_t batches, int64_t splits,
                                                             int64_t mn) {
  const int64_t total = batches * mn;
  for (int64_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int64_t b = i / mn, j = i % mn;
    const T* p = partial + b * splits * mn + j;
    T s = 0;
    for (int64_t k = 0; k < splits; ++k) s += p[k * mn];
    out[i] = s;
  }
}

// How to cut a GEMM: split Kd only when the output tiles alone leave the GPU mostly idle, and
// never into chunks of fewer than 8 steps. Depends on the shape only (determinism).
template <class Tile>
GemmGeometry plan_gemm(int64_t M, int64_t N, int64_t Kd, int64_t batches, bool allow_split) {
  GemmGeometry g{M, N, Kd, batches, 1, Kd < 1 ? 1 : Kd};
  if (!allow_split || Kd <= 0) return g;
  const int64_t tiles = batches * ceil_div(M, Tile::BM) * ceil_div(N, Tile::BN);
  constexpr int64_t kTargetBlocks = 512;
  int64_t splits = ceil_div(kTargetBlocks, tiles);
  const int64_t max_by_length = ceil_div(Kd, 8 * Tile::BK);
  if (splits > max_by_length) splits = max_by_length;
  if (splits > 64) splits = 64;
  if (splits <= 1) return g;
  g.k_chunk = ceil_div(ceil_div(Kd, splits), Tile::BK) * Tile::BK;
  g.splits = ceil_div(Kd, g.k_chunk);
  return g;
}

// Sums the split-K partials of run_gemm into out (batches x mn).
inline void sum_splits(float* out, const float* partial, const GemmGeometry& g, int64_t mn,
                       cudaStream_t stream) {
  constexpr int kThreads = 256;
  launch(gemm_sum_splits_kernel<float>, dim3(grid_blocks(g.batches * mn, kThreads)),
         dim3(kThreads), 0, stream, out, partial, g.batches, g.splits, mn);
}

// Compute capability 8.0 or newer, which TF32 WMMA needs; otherwise a clear error naming
// this GPU's (the emulator passes).
void require_tf32_tensor_cores();

template <class Tile, bool kAKFast, bool kBKFast, class Op>
void run_gemm(const GemmGeometry& g, const Op& op, cudaStream_t stream) {
  if (g.M <= 0 || g.N <= 0 || g.batches <= 0) return;
  if constexpr (Tile::kTensorCores) require_tf32_tensor_cores();
  const int64_t n_tiles = ceil_div(g.N, Tile::BN);
  if (n_tiles > 0x7fffffff) throw std::runtime_error("GEMM: too many columns for one grid");
  const int64_t m_tiles = ceil_div(g.M, Tile::BM);
  const int64_t z = g.batches * g.splits;
  const dim3 grid(static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(m_tiles < 65535 ? m_tiles : 65535),
                  static_cast<unsigned>(z < 65535 ? z : 65535));
  if constexpr (Tile::kTensorCores)
    launch(gemm_tf32_kernel<Tile, kAKFast, kBKFast, Op>, grid, dim3(Tile::kThreads), 0, stream,
           g, op);
  else
    launch(gemm_tiled_kernel<Tile, kAKFast, kBKFast, Op>, grid, dim3(Tile::kThreads), 0,
           stream, g, op);
}

}  // namespace pyengine::gpu
