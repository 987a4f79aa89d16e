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
// Shape letters: M N the output rows and columns, Kd the reduction length, BM BN BK the tile.
#pragma once

#include "cuda/common.cuh"

namespace pyengine::gpu {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct GemmTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN;  // threads along N
  static constexpr int TY = BM / TM;  // threads along M
  static constexpr int kThreads = TX * TY;
  static_assert((BM * BK) % kThreads == 0 && (BN * BK) % kThreads == 0,
                "every thread stages the same number of elements");
};

// 64 x 64 tiles, 256 threads of 4 x 4 outputs: the general case.
using GemmTileLarge = GemmTile<64, 64, 16, 4, 4>;
// 32 x 32 tiles, 64 threads of 4 x 4: few output rows (small K/G, narrow layers), where a
// 64-row tile would compute mostly padding.
using GemmTileSmall = GemmTile<32, 32, 16, 4, 4>;

struct GemmGeometry {
  int64_t M, N, Kd;
  int64_t batches;  // independent GEMMs (convolution groups)
  int64_t splits;   // chunks of Kd per batch (1: no split)
  int64_t k_chunk;  // Kd per chunk, a multiple of BK
};

template <class Tile, bool kAKFast, bool kBKFast, class Op>
__global__ void __launch_bounds__(Tile::kThreads) gemm_tiled_kernel(GemmGeometry g, Op op) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK;
  constexpr int TM = Tile::TM, TN = Tile::TN, TX = Tile::TX, TY = Tile::TY;
  constexpr int kThreads = Tile::kThreads;
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % TX;
  const int ty = tid / TX;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int64_t m_tiles = ceil_div(g.M, BM);
  const int64_t z_count = g.batches * g.splits;

  // y and z loop so that more than 65535 row tiles or batches need no second launch; the trip
  // counts are the same for every thread of the block, so the barriers inside are safe.
  for (int64_t mt = blockIdx.y; mt < m_tiles; mt += gridDim.y) {
    const int64_t m0 = mt * BM;
    for (int64_t z = blockIdx.z; z < z_count; z += gridDim.z) {
      const int64_t batch = z / g.splits;
      const int64_t split = z % g.splits;
      const int64_t k_begin = split * g.k_chunk;
      const int64_t k_end = k_begin + g.k_chunk < g.Kd ? k_begin + g.k_chunk : g.Kd;

      float acc[TM][TN];
      for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

      for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
        for (int e = tid; e < BM * BK; e += kThreads) {
          const int kk = kAKFast ? e % BK : e / BM;
          const int r = kAKFast ? e / BK : e % BM;
          const int64_t gm = m0 + r, gk = k0 + kk;
          As[kk][r] = (gm < g.M && gk < k_end) ? op.a(batch, gm, gk) : 0.0f;
        }
        for (int e = tid; e < BN * BK; e += kThreads) {
          const int kk = kBKFast ? e % BK : e / BN;
          const int c = kBKFast ? e / BK : e % BN;
          const int64_t gn = n0 + c, gk = k0 + kk;
          Bs[kk][c] = (gn < g.N && gk < k_end) ? op.b(batch, gk, gn) : 0.0f;
        }
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
        const int64_t gm = m0 + ty + i * TY;
        if (gm >= g.M) continue;
        for (int j = 0; j < TN; ++j) {
          const int64_t gn = n0 + tx + j * TX;
          if (gn < g.N) op.store(batch, split, gm, gn, acc[i][j]);
        }
      }
    }
  }
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

template <class Tile, bool kAKFast, bool kBKFast, class Op>
void run_gemm(const GemmGeometry& g, const Op& op, cudaStream_t stream) {
  if (g.M <= 0 || g.N <= 0 || g.batches <= 0) return;
  const int64_t n_tiles = ceil_div(g.N, Tile::BN);
  if (n_tiles > 0x7fffffff) throw std::runtime_error("GEMM: too many columns for one grid");
  const int64_t m_tiles = ceil_div(g.M, Tile::BM);
  const int64_t z = g.batches * g.splits;
  const dim3 grid(static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(m_tiles < 65535 ? m_tiles : 65535),
                  static_cast<unsigned>(z < 65535 ? z : 65535));
  launch(gemm_tiled_kernel<Tile, kAKFast, kBKFast, Op>, grid, dim3(Tile::kThreads), 0, stream,
         g, op);
}

}  // namespace pyengine::gpu
