// The Winograd kernels of one ISA path: included once by winograd.cpp (baseline),
// winograd_avx2.cpp and winograd_avx512.cpp, each compiling it into its own
// pyengine::cpu::PYENGINE_ISA_NS. See winograd.h for the problem it solves.
//
// Shape letters: N C H W input, K P Q output, m output tile (2 or 4), alpha = m + 2, xi = (a, b)
// a point of the alpha x alpha transformed tile (xi = a*alpha + b), T tiles. Tile (n, ty, tx)
// covers output rows ty*m .. ty*m+m-1 and columns tx*m .. tx*m+m-1 of image n; tiles are
// numbered t = (n*tH + ty)*tW + tx, so a run of consecutive t within one tile row (a segment)
// reads consecutive, overlapping input windows.
//
// The algorithm (Lavin & Gray 2015), Y = A^T [ (G g G^T) .* (B^T d B) ] A per tile, is split as:
//   U[xi][k][c] = (G w[k,c] G^T)[xi]             weight transform
//   V[xi][c][t] = (B^T d[c,t] B)[xi]              input transform, d the alpha x alpha window
//   M[xi][k][t] = sum_c U[xi][k][c] V[xi][c][t]   alpha^2 independent GEMMs, the bulk of the work
//   y[k, tile t] = A^T M[.][k][t] A + bias[k]     output transform
// The transforms copy each tile's window into one lane of a scratch chunk (scalar copies, zeros
// past the plane's edges; with AVX-512 the input windows are gathered straight into registers
// instead) and then run in registers on kLanes tiles at once (lane = tile); the
// GEMMs run on a register-blocked micro-kernel (kMR output channels x kNR tiles) over packed U
// panels.
//
// Two loop orders, chosen per problem by which operand is larger (see choose_plan):
//   tile blocks outer  U for all k computed first (shared, read by every block); each thread
//                      takes blocks of Tb tiles: V, M of the block live in its own buffers
//                      (sized for L2), so only U streams from the shared cache. Large images.
//   k groups outer     V for all tiles computed first; each thread takes groups of Kb output
//                      channels, transforms their weights into its own buffer, and runs them
//                      against all tiles. Small images with many channels (res_c5: 128 tiles
//                      against a 16 MB U), where materialising U would cost more than the GEMMs.
// PYENGINE_WINOGRAD_ORDER=tiles|k forces one order (read per call; the tests use it to cover
// both on small shapes).
// Backward-weight (backward_weight below) runs on channels-last copies of x and dy: per chunk
// of tiles, V (input transform) and Z = A dY A^T, one vector of channels at a time, stored
// tile-major, then the alpha^2 products dU[xi] += Z[xi]^T V[xi] on a register-blocked kernel
// that reads both as they are; threads own blocks of dU or ranges of tiles (their dU then
// added in thread order), and dw = G^T dU G. Its result is fixed for a given thread count.
// Forward and backward-data: every output element is computed by one thread in a fixed order,
// so the result does not depend on the thread count or schedule.
//
// Numerics: float32 throughout. F(4x4) multiplies the input by up to 5 and the output by up to
// 8 in its transforms, so its rounding error is larger than F(2x2)'s: against the float64
// direct convolution, max |error| / (|x|.|w|) is about 1e-7 for F(2x2) and 1e-6 to 3e-6 for
// F(4x4) (forward, backward-data and backward-weight alike), still ~40x inside the conv
// tolerance (rtol 1e-4; tests/test_native_conv_algos.py measures it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "cpu/parallel.h"
#include "cpu/transpose_simd.h"
#include "cpu/winograd.h"
#include "cpu/winograd_simd.h"

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

using simd::kLanes;
using simd::Vec;

// Register blocking of the micro-kernels (outer_panel). Forward and backward-data: kMR output
// channels (broadcast from U) by kNV vectors of tiles (loaded from V). Backward-weight: kWMR
// output channels (broadcast from Z) by kWNV vectors of input channels (from V), a 64-channel
// block in one AVX-512 panel. AVX-512 has 32 registers: 8 x 3 = 24 accumulators + 3 vectors,
// 6 x 4 = 24 + 4; AVX2 and SSE have 16: 4 x 3 = 12 (+3 +1), 6 x 2 = 12; 4 x 2 = 8.
#if defined(__AVX512F__)
constexpr int kMR = 8;
constexpr int kNV = 3;
constexpr int kWMR = 6;
constexpr int kWNV = 4;
#elif defined(__AVX2__)
constexpr int kMR = 4;
constexpr int kNV = 3;
constexpr int kWMR = 6;
constexpr int kWNV = 2;
#else
constexpr int kMR = 4;
constexpr int kNV = 2;
constexpr int kWMR = 4;
constexpr int kWNV = 2;
#endif
constexpr int kNR = kNV * kLanes;  // tiles per micro-kernel panel

using simd::Buffer;
using simd::ceil_div;
using simd::round_up;

// ---- micro-kernel ---------------------------------------------------------------------------

// C[r][0..NV*kLanes) (= or, when accumulate, +=) sum over t < T of A[t*lda + r] *
// B[t*ldb + 0..NV*kLanes), for r < MR: one register tile of a broadcast ("outer product")
// product, A's values broadcast, B's rows loaded as vectors; C: rows of ldc floats. The
// forward's products (A a packed U panel, lda = kMR; B the V rows of its tiles) and the weight
// gradient's (A the Z rows, B the V rows of a chunk's tiles) both run on it.
template <int MR, int NV>
inline void outer_panel(int64_t T, const float* __restrict A, int64_t lda,
                        const float* __restrict B, int64_t ldb, float* __restrict C, int64_t ldc,
                        bool accumulate) {
  Vec acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = simd::vzero();
  for (int64_t t = 0; t < T; ++t) {
    Vec b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = simd::vload(B + t * ldb + j * kLanes);
    const float* a = A + t * lda;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const Vec ar = simd::vset1(a[r]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = simd::vfma(ar, b[j], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      float* c = C + r * ldc + j * kLanes;
      simd::vstore(c, accumulate ? simd::vadd(simd::vload(c), acc[r][j]) : acc[r][j]);
    }
}

// outer_panel<MR, NV> for the runtime mr <= MR, nv <= NV: a panel's last rows and vectors (a
// forward panel's vectors past its last tile, a weight-gradient block's last channels).
template <int MR, int NV>
inline void outer_panel_n(int mr, int nv, int64_t T, const float* A, int64_t lda, const float* B,
                          int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if constexpr (MR > 1) {
    if (mr < MR) return outer_panel_n<MR - 1, NV>(mr, nv, T, A, lda, B, ldb, C, ldc, accumulate);
  }
  if constexpr (NV > 1) {
    if (nv < NV) return outer_panel_n<MR, NV - 1>(mr, nv, T, A, lda, B, ldb, C, ldc, accumulate);
  }
  outer_panel<MR, NV>(T, A, lda, B, ldb, C, ldc, accumulate);
}

// ---- transforms of kLanes tiles at once, in registers -----------------------------------------
// Written out rather than as matrix products so that no multiply by 0 or 1 is computed (the
// compiler may not drop x*0). d, o: arrays of vectors with strides ds, os.

// F(2x2,3x3) B^T: rows (1 0 -1 0) (0 1 1 0) (0 -1 1 0) (0 1 0 -1).
// F(4x4,3x3) B^T (interpolation points 0, 1, -1, 2, -2, inf):
//   (4 0 -5 0 1 0) (0 -4 -4 1 1 0) (0 4 -4 -1 1 0) (0 -2 -1 2 1 0) (0 2 -1 -2 1 0) (0 4 0 -5 0 1)
template <int m>
inline void input_1d(const Vec* d, int ds, Vec* o, int os) {
  using namespace simd;
  if constexpr (m == 2) {
    o[0] = vsub(d[0], d[2 * ds]);
    o[os] = vadd(d[ds], d[2 * ds]);
    o[2 * os] = vsub(d[2 * ds], d[ds]);
    o[3 * os] = vsub(d[ds], d[3 * ds]);
  } else {
    const Vec d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds],
              d5 = d[5 * ds];
    const Vec four = vset1(4.0f), five = vset1(-5.0f), two = vset1(2.0f);
    const Vec a = vsub(d4, d2);
    const Vec b = vsub(d3, d1);
    o[0] = vfma(four, d0, vfma(five, d2, d4));
    o[os] = vsub(vadd(d4, d3), vmul(four, vadd(d1, d2)));
    o[2 * os] = vfma(four, vsub(d1, d2), vsub(d4, d3));
    o[3 * os] = vfma(two, b, a);
    o[4 * os] = vsub(a, vmul(two, b));
    o[5 * os] = vfma(four, d1, vfma(five, d3, d5));
  }
}

// F(2x2,3x3) A^T: rows (1 1 1 0) (0 1 -1 -1).
// F(4x4,3x3) A^T: rows (1 1 1 1 1 0) (0 1 -1 2 -2 0) (0 1 1 4 4 0) (0 1 -1 8 -8 1).
template <int m>
inline void output_1d(const Vec* d, int ds, Vec* o, int os) {
  using namespace simd;
  if constexpr (m == 2) {
    o[0] = vadd(vadd(d[0], d[ds]), d[2 * ds]);
    o[os] = vsub(vsub(d[ds], d[2 * ds]), d[3 * ds]);
  } else {
    const Vec s12 = vadd(d[ds], d[2 * ds]);
    const Vec m12 = vsub(d[ds], d[2 * ds]);
    const Vec s34 = vadd(d[3 * ds], d[4 * ds]);
    const Vec m34 = vsub(d[3 * ds], d[4 * ds]);
    o[0] = vadd(vadd(d[0], s12), s34);
    o[os] = vfma(vset1(2.0f), m34, m12);
    o[2 * os] = vfma(vset1(4.0f), s34, s12);
    o[3 * os] = vadd(vfma(vset1(8.0f), m34, m12), d[5 * ds]);
  }
}

// The transpose of A^T, for backward-weight: o[a] = sum_i A^T[i][a] d[i], m inputs -> alpha.
template <int m>
inline void dy_1d(const Vec* d, int ds, Vec* o, int os) {
  using namespace simd;
  if constexpr (m == 2) {
    o[0] = d[0];
    o[os] = vadd(d[0], d[ds]);
    o[2 * os] = vsub(d[0], d[ds]);
    o[3 * os] = vsub(vzero(), d[ds]);
  } else {
    const Vec d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds];
    const Vec two = vset1(2.0f), four = vset1(4.0f), eight = vset1(8.0f);
    const Vec s02 = vadd(d0, d2), s13 = vadd(d1, d3);
    const Vec e = vfma(four, d2, d0), f = vfma(eight, d3, vmul(two, d1));
    o[0] = d0;
    o[os] = vadd(s02, s13);
    o[2 * os] = vsub(s02, s13);
    o[3 * os] = vadd(e, f);
    o[4 * os] = vsub(e, f);
    o[5 * os] = d3;
  }
}

// The 1-d transforms as function objects, for transform_2d.
template <int m>
struct Input1d {
  void operator()(const Vec* d, int ds, Vec* o, int os) const { input_1d<m>(d, ds, o, os); }
};
template <int m>
struct Output1d {
  void operator()(const Vec* d, int ds, Vec* o, int os) const { output_1d<m>(d, ds, o, os); }
};
template <int m>
struct Dy1d {
  void operator()(const Vec* d, int ds, Vec* o, int os) const { dy_1d<m>(d, ds, o, os); }
};

// The 2-d transform of an In x In tile of vectors, in(i, j), by the 1-d transform f (In values
// -> Out) along j, then along i: out(a, b, value) for a, b < Out. Every transform of the
// Winograd kernels (input, output, dy) is one, whatever its lanes hold and wherever its tile
// comes from and goes to.
template <int In, int Out, class Load, class F, class Store>
inline void transform_2d(Load in, F f, Store out) {
  Vec r[In][Out];
  for (int i = 0; i < In; ++i) {
    Vec e[In];
    for (int j = 0; j < In; ++j) e[j] = in(i, j);
    f(e, 1, &r[i][0], 1);
  }
  for (int b = 0; b < Out; ++b) {
    Vec o[Out];
    f(&r[0][b], Out, o, 1);
    for (int a = 0; a < Out; ++a) out(a, b, o[a]);
  }
}

// ---- 1-d weight-gradient transforms, one lane per (c, k) pair ---------------------------------

// G^T applied along one axis, for backward-weight: o[r] = sum_a G[a][r] d[a], alpha -> 3.
inline void weight_grad_1d_m2(const float* const* d, float* const* o, int64_t n) {
  const float* __restrict u0 = d[0];
  const float* __restrict u1 = d[1];
  const float* __restrict u2 = d[2];
  const float* __restrict u3 = d[3];
  float* __restrict o0 = o[0];
  float* __restrict o1 = o[1];
  float* __restrict o2 = o[2];
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const float h = 0.5f * (u1[t] + u2[t]);
    o0[t] = u0[t] + h;
    o1[t] = 0.5f * (u1[t] - u2[t]);
    o2[t] = h + u3[t];
  }
}

inline void weight_grad_1d_m4(const float* const* d, float* const* o, int64_t n) {
  const float* __restrict u0 = d[0];
  const float* __restrict u1 = d[1];
  const float* __restrict u2 = d[2];
  const float* __restrict u3 = d[3];
  const float* __restrict u4 = d[4];
  const float* __restrict u5 = d[5];
  float* __restrict o0 = o[0];
  float* __restrict o1 = o[1];
  float* __restrict o2 = o[2];
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const float s12 = u1[t] + u2[t], s34 = u3[t] + u4[t];
    o0[t] = 0.25f * u0[t] - s12 * (1.0f / 6.0f) + s34 * (1.0f / 24.0f);
    o1[t] = (u2[t] - u1[t]) * (1.0f / 6.0f) + (u3[t] - u4[t]) * (1.0f / 12.0f);
    o2[t] = (s34 - s12) * (1.0f / 6.0f) + u5[t];
  }
}

// ---- the plan ---------------------------------------------------------------------------------

struct Plan {
  int alpha = 4, xis = 16;
  int64_t tH = 0, tW = 0, T = 0;  // tiles per column, per row, in all
  int64_t Kpad = 0;               // K rounded up to kMR
  bool k_outer = false;
  int64_t Tb = 0;  // tiles per block: a multiple of kNR (k-outer: one block of all tiles)
  int64_t Kb = 0;  // output channels per group: a multiple of kMR
};

Plan choose_plan(const WinogradProblem& pb, int threads) {
  Plan pl;
  pl.alpha = pb.m + 2;
  pl.xis = pl.alpha * pl.alpha;
  pl.tH = ceil_div(pb.P, pb.m);
  pl.tW = ceil_div(pb.Q, pb.m);
  pl.T = pb.N * pl.tH * pl.tW;
  pl.Kpad = ceil_div(pb.K, kMR) * kMR;
  const int64_t Tall = ceil_div(pl.T, kNR) * kNR;
  const double u_bytes = 4.0 * pl.xis * pl.Kpad * pb.C;
  const double v_bytes = 4.0 * pl.xis * pb.C * Tall;
  // k-outer when U is the larger operand (few tiles, many channels) and all of V stays in the
  // shared cache. PYENGINE_WINOGRAD_ORDER=tiles|k forces an order (the tests cover both on
  // small shapes).
  pl.k_outer = u_bytes > v_bytes && v_bytes <= 8.0 * (1 << 20);
  if (const char* order = std::getenv("PYENGINE_WINOGRAD_ORDER")) {
    if (std::strcmp(order, "tiles") == 0) pl.k_outer = false;
    if (std::strcmp(order, "k") == 0) pl.k_outer = true;
  }
  const int64_t nkb = pl.Kpad / kMR;
  if (pl.k_outer) {
    pl.Tb = Tall;
    // A group's U (xis x Kb x C) within about 1 MiB and its M (xis x Kb x Tb) within 512 KiB;
    // enough groups to share out.
    int64_t g = std::min(static_cast<int64_t>((1 << 20) / (4.0 * pl.xis * pb.C * kMR)),
                         static_cast<int64_t>((512 << 10) / (4.0 * pl.xis * kMR * pl.Tb)));
    g = std::min(g, nkb / (2 * threads));
    pl.Kb = std::max<int64_t>(1, g) * kMR;
  } else {
    // A block's V (xis x C x Tb) within about 512 KiB (at most 4 panels), and enough blocks to
    // share out; a group's M (xis x Kb x Tb) within 256 KiB.
    int64_t panels = static_cast<int64_t>((512 << 10) / (4.0 * pl.xis * pb.C * kNR));
    panels = std::max<int64_t>(1, std::min<int64_t>(4, panels));
    while (panels > 1 && ceil_div(pl.T, panels * kNR) < 4 * threads) --panels;
    pl.Tb = panels * kNR;
    const int64_t g = static_cast<int64_t>((256 << 10) / (4.0 * pl.xis * kMR * pl.Tb));
    pl.Kb = std::max<int64_t>(1, std::min(g, nkb)) * kMR;
  }
  return pl;
}

// Calls f(n, ty, tx0, len, offset) for each segment (a run of tiles within one tile row) of the
// tiles t0 .. t0+count-1, offset being the segment's first tile relative to t0.
template <class F>
void for_each_segment(const Plan& pl, int64_t t0, int64_t count, F f) {
  int64_t t = t0;
  const int64_t end = t0 + count;
  while (t < end) {
    const int64_t n = t / (pl.tH * pl.tW);
    const int64_t rem = t % (pl.tH * pl.tW);
    const int64_t ty = rem / pl.tW, tx = rem % pl.tW;
    const int64_t len = std::min(pl.tW - tx, end - t);
    f(n, ty, tx, len, t - t0);
    t += len;
  }
}

// Tiles per pass of the transforms: their scratch (alpha^2 x kChunk floats) stays in L1.
constexpr int64_t kChunk = 128;

struct Scratch {
  Buffer d;  // input windows (alpha^2 x kChunk) or output tiles (m^2 x kChunk)
  Buffer g, tmp;  // weight transform
};

// ---- input transform --------------------------------------------------------------------------

// D[(i*alpha + j)*kChunk + off + u] = x plane xc at (ty*m + i - pad_top, (tx0+u)*m + j - pad_left)
// for u < len, 0 outside the plane.
template <int m>
void gather_windows(const WinogradProblem& pb, const float* xc, int64_t ty, int64_t tx0,
                    int64_t len, float* D) {
  constexpr int alpha = m + 2;
  const int64_t ih0 = ty * m - pb.pad_top;
  const bool rows_inside = ih0 >= 0 && ih0 + alpha <= pb.H;
  for (int64_t u = 0; u < len; ++u) {
    const int64_t iw0 = (tx0 + u) * m - pb.pad_left;
    float* du = D + u;
    if (rows_inside && iw0 >= 0 && iw0 + alpha <= pb.W) {
      const float* xr = xc + ih0 * pb.x_h + iw0 * pb.x_w;
#pragma GCC unroll 6
      for (int i = 0; i < alpha; ++i)
#pragma GCC unroll 6
        for (int j = 0; j < alpha; ++j)
          du[(i * alpha + j) * kChunk] = xr[i * pb.x_h + j * pb.x_w];
    } else {
      for (int i = 0; i < alpha; ++i) {
        const int64_t ih = ih0 + i;
        const bool row_ok = ih >= 0 && ih < pb.H;
        for (int j = 0; j < alpha; ++j) {
          const int64_t iw = iw0 + j;
          du[(i * alpha + j) * kChunk] =
              row_ok && iw >= 0 && iw < pb.W ? xc[ih * pb.x_h + iw * pb.x_w] : 0.0f;
        }
      }
    }
  }
}

#if defined(__AVX512F__)
// AVX-512: the windows of 16 tiles are loaded straight into registers by masked gathers (one
// per window point; lanes outside the plane, and past the last tile, read 0), not copied
// element by element into a scratch chunk. Needs every offset of x within int32.
bool gathers_fit(const WinogradProblem& pb) {
  const int64_t extent = (pb.N - 1) * pb.x_n + (pb.C - 1) * pb.x_c + (pb.H + 2) * pb.x_h +
                         (pb.W + 2) * pb.x_w;
  return pb.x_n >= 0 && pb.x_c >= 0 && pb.x_h >= 0 && pb.x_w >= 0 &&
         extent < (int64_t(1) << 31) - 1;
}

template <int m>
void input_transform_gathered(const Plan& pl, const WinogradProblem& pb, int64_t c, int64_t t0,
                              int64_t count, int64_t lanes, float* V, int64_t v_xi) {
  constexpr int alpha = m + 2;
  const float* base = pb.x + c * pb.x_c;
  int64_t n = t0 / (pl.tH * pl.tW), ty = t0 / pl.tW % pl.tH, tx = t0 % pl.tW;
  for (int64_t l = 0; l < lanes; l += kLanes) {
    alignas(64) int32_t off[kLanes], ih[kLanes], iw[kLanes];
    const int live = static_cast<int>(std::clamp<int64_t>(count - l, 0, kLanes));
    for (int u = 0; u < kLanes; ++u) {
      ih[u] = static_cast<int32_t>(ty * m - pb.pad_top);
      iw[u] = static_cast<int32_t>(tx * m - pb.pad_left);
      off[u] = static_cast<int32_t>(n * pb.x_n + ih[u] * pb.x_h + iw[u] * pb.x_w);
      if (u < live && ++tx == pl.tW) {
        tx = 0;
        if (++ty == pl.tH) ty = 0, ++n;
      }
    }
    const __m512i vo = _mm512_load_si512(off), vh = _mm512_load_si512(ih),
                  vw = _mm512_load_si512(iw);
    const __mmask16 lives = static_cast<__mmask16>((1u << live) - 1u);
    __mmask16 rows[alpha], cols[alpha];
    for (int i = 0; i < alpha; ++i) {  // (unsigned) (ih + i) < H: 0 <= ih + i < H
      rows[i] = _mm512_mask_cmplt_epu32_mask(lives, _mm512_add_epi32(vh, _mm512_set1_epi32(i)),
                                             _mm512_set1_epi32(static_cast<int32_t>(pb.H)));
      cols[i] = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vw, _mm512_set1_epi32(i)),
                                        _mm512_set1_epi32(static_cast<int32_t>(pb.W)));
    }
    auto gather = [&](int i, int j) {
      const __m512i idx = _mm512_add_epi32(
          vo, _mm512_set1_epi32(static_cast<int32_t>(i * pb.x_h + j * pb.x_w)));
      return Vec{_mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows[i] & cols[j], idx, base, 4)};
    };
    transform_2d<alpha, alpha>(gather, Input1d<m>{}, [&](int a, int b, Vec v) {
      simd::vstore(V + (a * alpha + b) * v_xi + l, v);
    });
  }
}
#endif

// V[xi * v_xi + t] for t < lanes (a multiple of kLanes): the input transform of channel c for
// the tiles t0 .. t0+count-1; lanes t >= count are 0.
template <int m>
void input_transform(const Plan& pl, const WinogradProblem& pb, int64_t c, int64_t t0,
                     int64_t count, int64_t lanes, float* V, int64_t v_xi, Scratch& s) {
  constexpr int alpha = m + 2;
#if defined(__AVX512F__)
  if (gathers_fit(pb)) return input_transform_gathered<m>(pl, pb, c, t0, count, lanes, V, v_xi);
#endif
  float* D = s.d.get(alpha * alpha * kChunk);
  for (int64_t c0 = 0; c0 < lanes; c0 += kChunk) {
    const int64_t cl = std::min(kChunk, lanes - c0);          // lanes of this pass
    const int64_t cc = std::clamp<int64_t>(count - c0, 0, cl);  // tiles among them
    for_each_segment(pl, t0 + c0, cc, [&](int64_t n, int64_t ty, int64_t tx, int64_t len,
                                          int64_t off) {
      gather_windows<m>(pb, pb.x + n * pb.x_n + c * pb.x_c, ty, tx, len, D + off);
    });
    if (cc < cl)
      for (int e = 0; e < alpha * alpha; ++e)
        std::memset(D + e * kChunk + cc, 0, sizeof(float) * (cl - cc));
    for (int64_t l = 0; l < cl; l += kLanes)
      transform_2d<alpha, alpha>(
          [&](int i, int j) { return simd::vload(D + (i * alpha + j) * kChunk + l); },
          Input1d<m>{},
          [&](int a, int b, Vec v) { simd::vstore(V + (a * alpha + b) * v_xi + c0 + l, v); });
  }
}

// ---- output transform -------------------------------------------------------------------------

// y plane yk (P x Q) of output channel k at the tiles t0 .. t0+count-1, whose products are
// M[xi * m_xi + t] (readable up to count rounded up to kLanes), with the bias added.
template <int m>
void output_transform(const Plan& pl, const WinogradProblem& pb, int64_t k, int64_t t0,
                      int64_t count, const float* M, int64_t m_xi, Scratch& s) {
  constexpr int alpha = m + 2;
  float* O = s.d.get(m * m * kChunk);
  const float bias = pb.bias ? pb.bias[k] : 0.0f;
  for (int64_t c0 = 0; c0 < count; c0 += kChunk) {
    const int64_t cc = std::min(kChunk, count - c0);
    for (int64_t l = 0; l < cc; l += kLanes)
      transform_2d<alpha, m>(
          [&](int a, int b) { return simd::vload(M + (a * alpha + b) * m_xi + c0 + l); },
          Output1d<m>{},
          [&](int i, int j, Vec v) { simd::vstore(O + (i * m + j) * kChunk + l, v); });
    for_each_segment(pl, t0 + c0, cc, [&](int64_t n, int64_t ty, int64_t tx, int64_t len,
                                          int64_t off) {
      float* yk = pb.y + n * pb.y_n + k * pb.y_k;
      const int64_t q0 = tx * m;
      // Tiles whose m columns all lie inside the output; the row's last one may overhang.
      const int64_t full = std::min(len, (pb.Q - q0) / m);
      for (int i = 0; i < m && ty * m + i < pb.P; ++i) {
        float* __restrict yr = yk + (ty * m + i) * pb.y_h + q0 * pb.y_w;
        const float* __restrict oi = O + i * m * kChunk + off;
        for (int64_t u = 0; u < full; ++u)
#pragma GCC unroll 4
          for (int j = 0; j < m; ++j) yr[(u * m + j) * pb.y_w] = oi[j * kChunk + u] + bias;
        for (int64_t u = full; u < len; ++u)
          for (int j = 0; j < m && q0 + u * m + j < pb.Q; ++j)
            yr[(u * m + j) * pb.y_w] = oi[j * kChunk + u] + bias;
      }
    });
  }
}

// ---- weight transform -------------------------------------------------------------------------
// U = G w G^T per (k, c) pair as one product: U[xi] = sum over rs of T[rs][xi] w[rs], with
// T[r*3 + s][a*alpha + b] = G[a][r] G[b][s]. The xi of one pair run along the vector lanes (9
// broadcast multiply-adds per vector of xi, w read with any strides: the backward-data's
// flipped, transposed weights too); kTB pairs at a time, then square transposes put each xi's
// pairs as one contiguous run of U. (Two passes of 1-d transforms over lanes of pairs spent
// most of their time copying the 9 weights of each pair into those lanes one by one.)

template <int m>
struct WeightTable {
  static constexpr int alpha = m + 2, xis = alpha * alpha;
  static constexpr int nv = (xis + kLanes - 1) / kLanes;  // vectors of xi per pair
  alignas(64) float t[9][nv * kLanes] = {};
  WeightTable() {
    // F(2x2,3x3) G: rows (1 0 0) (1/2 1/2 1/2) (1/2 -1/2 1/2) (0 0 1).
    // F(4x4,3x3) G: rows (1/4 0 0) (-1/6 -1/6 -1/6) (-1/6 1/6 -1/6) (1/24 1/12 1/6)
    // (1/24 -1/12 1/6) (0 0 1).
    const double g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const double g4[6][3] = {{0.25, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    for (int a = 0; a < alpha; ++a)
      for (int b = 0; b < alpha; ++b)
        for (int r = 0; r < 3; ++r)
          for (int sc = 0; sc < 3; ++sc) {
            const double ga = m == 2 ? g2[a][r] : g4[a][r];
            const double gb = m == 2 ? g2[b][sc] : g4[b][sc];
            t[r * 3 + sc][a * alpha + b] = static_cast<float>(ga * gb);
          }
  }
};

// U[xi * u_xi + (k/kMR) * C*kMR + c*kMR + k%kMR] for the output channels k0 .. k0+kcount-1
// (numbered from k0), all c; rows of the last panel beyond kcount are zero.
template <int m>
void weight_transform(const WinogradProblem& pb, int64_t k0, int64_t kcount, float* U,
                      int64_t u_xi, Scratch& s) {
  static const WeightTable<m> table;
  using Table = WeightTable<m>;
  constexpr int nv = Table::nv, ld = nv * kLanes;
  constexpr int64_t cpb = kTB / kMR;  // columns c per block of kTB pairs
  static_assert(kTB % kMR == 0 && kTB == kLanes, "a block of pairs is whole panels' columns");
  float* P = s.tmp.get(kTB * ld);   // P[pair][xi]
  float* tr = s.g.get(kTB * kTB);   // a transposed block whose rows or columns overhang U
  // Offsets from w(k, c, 0, 0) of the kMR x 3 x 3 weights w(k .. k+kMR-1, c, ., .).
  const int64_t lo = std::min<int64_t>(0, (kMR - 1) * pb.w_k) + std::min<int64_t>(0, 2 * pb.w_r) +
                     std::min<int64_t>(0, 2 * pb.w_s);
  const int64_t hi = std::max<int64_t>(0, (kMR - 1) * pb.w_k) + std::max<int64_t>(0, 2 * pb.w_r) +
                     std::max<int64_t>(0, 2 * pb.w_s);
  // Each c is a new page when c is w's slower axis (the backward-data's transposed w, whose c
  // stride is a whole filter bank), which the hardware prefetchers do not enter: its kMR x 9
  // weights are prefetched a few blocks early (a hint: rows past kcount or past w's end cannot
  // fault).
  const bool prefetch = std::abs(pb.w_k) < std::abs(pb.w_c);
  constexpr int64_t kAhead = 4;
  for (int64_t kb = 0; kb < ceil_div(kcount, kMR); ++kb) {
    const int64_t rows = std::min<int64_t>(kMR, kcount - kb * kMR);
    const float* wk = pb.w + (k0 + kb * kMR) * pb.w_k;
    float* Uk = U + kb * pb.C * kMR;
    for (int64_t c0 = 0; c0 < pb.C; c0 += cpb) {
      const int64_t cn = std::min(cpb, pb.C - c0);
      if (prefetch)
        for (int64_t cc = 0; cc < cpb; ++cc) {
          const float* nx = wk + (c0 + kAhead * cpb + cc) * pb.w_c;
          for (int64_t l = lo; l <= hi; l += 16) __builtin_prefetch(nx + l);
          __builtin_prefetch(nx + hi);
        }
      for (int64_t cc = 0; cc < cpb; ++cc)
        for (int r = 0; r < kMR; ++r) {
          Vec acc[nv];
          for (int v = 0; v < nv; ++v) acc[v] = simd::vzero();
          if (cc < cn && r < rows) {
            const float* wp = wk + r * pb.w_k + (c0 + cc) * pb.w_c;
            for (int rs = 0; rs < 9; ++rs) {
              const Vec wv = simd::vset1(wp[(rs / 3) * pb.w_r + (rs % 3) * pb.w_s]);
              for (int v = 0; v < nv; ++v)
                acc[v] = simd::vfma(wv, simd::vload(table.t[rs] + v * kLanes), acc[v]);
            }
          }
          float* row = P + (cc * kMR + r) * ld;
          for (int v = 0; v < nv; ++v) simd::vstore(row + v * kLanes, acc[v]);
        }
      const int64_t pairs = cn * kMR;
      for (int xi0 = 0; xi0 < Table::xis; xi0 += kTB) {
        const int nxi = std::min<int>(kTB, Table::xis - xi0);
        float* dst = Uk + xi0 * u_xi + c0 * kMR;
        if (nxi == kTB && pairs == kTB) {
          transpose_block(P + xi0, ld, dst, u_xi);
        } else {
          transpose_block(P + xi0, ld, tr, kTB);
          for (int j = 0; j < nxi; ++j)
            std::memcpy(dst + j * u_xi, tr + j * kTB, sizeof(float) * pairs);
        }
      }
    }
  }
}

// ---- products and the two loop orders ----------------------------------------------------------

// Mg[(xi*Kb + kb*kMR + r) * ldv + t] = sum_c U[xi][kb0 + kb][c][r] V[xi][c][t] for kb < nkb
// and t < count rounded up to kLanes (what output_transform reads): the group's alpha^2
// products. The last panel computes only the vectors that hold tiles (128 tiles in panels of
// 48 would otherwise compute 144, as res_c4 and res_c5 have).
void multiply_group(const Plan& pl, int64_t C, const float* U, int64_t u_xi, int64_t kb0,
                    int64_t nkb, const float* V, int64_t ldv, int64_t count, float* Mg,
                    int64_t Kb) {
  const int64_t panels = ceil_div(count, kNR);
  const int last_nv = static_cast<int>(ceil_div(count - (panels - 1) * kNR, kLanes));
  for (int xi = 0; xi < pl.xis; ++xi) {
    const float* Ux = U + xi * u_xi + kb0 * C * kMR;
    const float* Vx = V + xi * C * ldv;
    float* Mx = Mg + xi * Kb * ldv;
    for (int64_t kb = 0; kb < nkb; ++kb)
      for (int64_t pn = 0; pn < panels; ++pn) {
        const float* u = Ux + kb * C * kMR;
        const float* v = Vx + pn * kNR;
        float* mo = Mx + kb * kMR * ldv + pn * kNR;
        const int nv = pn + 1 < panels ? kNV : last_nv;
        outer_panel_n<kMR, kNV>(kMR, nv, C, u, kMR, v, ldv, mo, ldv, /*accumulate=*/false);
      }
  }
}

// Tiles outer: U for all k first (shared); then each thread takes blocks of Tb tiles, whose V
// and, group by group, M live in its own buffers.
template <int m>
void run_tiles_outer(const Plan& pl, const WinogradProblem& pb, int nt) {
  const int64_t nkb = pl.Kpad / kMR;
  const int64_t u_xi = pl.Kpad * pb.C;
  Buffer u_buf;
  float* U = u_buf.get(pl.xis * u_xi);
  const int64_t nblocks = ceil_div(pl.T, pl.Tb);
  const int64_t ldv = pl.Tb;
  (void)nt;
#pragma omp parallel num_threads(nt)
  {
    Scratch scratch;
#pragma omp for schedule(static)
    for (int64_t kb = 0; kb < nkb; ++kb)
      weight_transform<m>(pb, kb * kMR, std::min<int64_t>(kMR, pb.K - kb * kMR),
                       U + kb * pb.C * kMR, u_xi, scratch);
    Buffer v_buf, m_buf;
    float* V = v_buf.get(pl.xis * pb.C * ldv);
    float* Mg = m_buf.get(pl.xis * pl.Kb * ldv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t t0 = blk * pl.Tb;
      const int64_t count = std::min(pl.Tb, pl.T - t0);
      const int64_t panels = ceil_div(count, kNR);
      for (int64_t c = 0; c < pb.C; ++c)
        input_transform<m>(pl, pb, c, t0, count, panels * kNR, V + c * ldv, pb.C * ldv,
                           scratch);
      for (int64_t k0 = 0; k0 < pb.K; k0 += pl.Kb) {
        const int64_t kcount = std::min(pl.Kb, pb.K - k0);
        multiply_group(pl, pb.C, U, u_xi, k0 / kMR, ceil_div(kcount, kMR), V, ldv, count, Mg,
                       pl.Kb);
        for (int64_t kk = 0; kk < kcount; ++kk)
          output_transform<m>(pl, pb, k0 + kk, t0, count, Mg + kk * ldv, pl.Kb * ldv, scratch);
      }
    }
  }
}

// k outer: V for all tiles first (shared); then each thread takes groups of Kb output channels,
// transforms their weights into its own buffer and runs them against all tiles.
template <int m>
void run_k_outer(const Plan& pl, const WinogradProblem& pb, int nt) {
  const int64_t ldv = pl.Tb;
  Buffer v_buf;
  float* V = v_buf.get(pl.xis * pb.C * ldv);
  const int64_t ngroups = ceil_div(pb.K, pl.Kb);
  (void)nt;
#pragma omp parallel num_threads(nt)
  {
    Scratch scratch;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < pb.C; ++c)
      input_transform<m>(pl, pb, c, 0, pl.T, ldv, V + c * ldv, pb.C * ldv, scratch);
    Buffer u_buf, m_buf;
    float* U = u_buf.get(pl.xis * pl.Kb * pb.C);
    float* Mg = m_buf.get(pl.xis * pl.Kb * ldv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ngroups; ++g) {
      const int64_t k0 = g * pl.Kb;
      const int64_t kcount = std::min(pl.Kb, pb.K - k0);
      const int64_t nkb = ceil_div(kcount, kMR);
      const int64_t u_xi = nkb * kMR * pb.C;
      weight_transform<m>(pb, k0, kcount, U, u_xi, scratch);
      multiply_group(pl, pb.C, U, u_xi, 0, nkb, V, ldv, pl.T, Mg, pl.Kb);
      for (int64_t kk = 0; kk < kcount; ++kk)
        output_transform<m>(pl, pb, k0 + kk, 0, pl.T, Mg + kk * ldv, pl.Kb * ldv, scratch);
    }
  }
}

// ---- backward-weight ---------------------------------------------------------------------------
// dU[xi] (K x C) = sum over tiles t of Z[xi][t][k] V[xi][t][c] (Z = A dY A^T, V = B^T d B), then
// dw = G^T dU G. The transforms read channels-last copies of x and dy, one vector of channels
// of one tile at a time (every load a whole vector: no per-tile gather), and write V and Z
// tile-major, [xi][t][channel]: the layout the broadcast micro-kernel reads as it is, so the
// reduction over tiles packs nothing. (Tile-major lanes, as in the forward, need a gather per
// tile and a transposing pack for each of the alpha^2 GEMMs: together more than the products.)
//
// Work goes in chunks of kWeightTiles tiles against blocks of at most kWeightBlock output by
// input channels: a chunk's V and Z (alpha^2 x kWeightTiles x block) stay in L2, each xi's
// slices in L1 while the micro-kernel runs over them. Larger blocks transform each tile for
// fewer blocks (two threads, ms, blocks of 64 / 128: vgg 10.4 / 9.7, res_c4 4.2 / 3.7; tiles
// per chunk 16, 32, 64 measured within 5% of each other).
constexpr int64_t kWeightTiles = 32;
constexpr int64_t kWeightBlock = 128;

// dst[w * ldd + c] = src[c * src_c + w * src_w] for c < C, w < cols; channels C .. ldd-1 of
// those pixels are set to 0. Square blocks in registers where the rows are contiguous (the
// last block of each axis overlaps the one before it rather than running a scalar tail).
inline void copy_to_channels_last(const float* __restrict src, int64_t src_c, int64_t src_w,
                                  int64_t C, int64_t cols, float* __restrict dst, int64_t ldd) {
  if (src_w == 1 && C >= kTB && cols >= kTB) {
    for (int64_t w = 0; w < cols; w += kTB) {
      const int64_t w0 = std::min(w, cols - kTB);
      for (int64_t c = 0; c < C; c += kTB) {
        const int64_t c0 = std::min(c, C - kTB);
        transpose_block(src + c0 * src_c + w0, src_c, dst + w0 * ldd + c0, ldd);
      }
    }
  } else {
    for (int64_t w = 0; w < cols; ++w)
      for (int64_t c = 0; c < C; ++c) dst[w * ldd + c] = src[c * src_c + w * src_w];
  }
  if (C < ldd)
    for (int64_t w = 0; w < cols; ++w) std::memset(dst + w * ldd + C, 0, sizeof(float) * (ldd - C));
}

// The tile grid of one sub-problem and its channels-last, zero-padded copies:
//   X[n][hh][ww][c] (Hp x Wp x Cp): input (hh - pad_top, ww - pad_left), 0 outside the plane;
//   D[n][pp][qq][k] (Pp x Qp x Kp): dy (pp, qq), 0 past P and Q.
// Cp, Kp: C and K rounded up to kLanes, the extra channels 0. Tile (n, ty, tx) reads the
// alpha x alpha window of X at (ty*m, tx*m) and the m x m window of D at the same place.
struct WeightGrid {
  int64_t tH, tW, T, Hp, Wp, Pp, Qp;
  WeightGrid(const WinogradProblem& pb, int m)
      : tH(ceil_div(pb.P, m)), tW(ceil_div(pb.Q, m)), T(pb.N * tH * tW), Hp(tH * m + 2),
        Wp(tW * m + 2), Pp(tH * m), Qp(tW * m) {}
};

// Row hh of image n of X.
void input_row_channels_last(const WinogradProblem& pb, const WeightGrid& gr, int64_t n,
                             int64_t hh, int64_t Cp, float* X) {
  float* dst = X + (n * gr.Hp + hh) * gr.Wp * Cp;
  const int64_t ih = hh - pb.pad_top;
  if (ih < 0 || ih >= pb.H) {
    std::memset(dst, 0, sizeof(float) * gr.Wp * Cp);
    return;
  }
  const int64_t lo = std::clamp<int64_t>(pb.pad_left, 0, gr.Wp);
  const int64_t hi = std::clamp<int64_t>(pb.pad_left + pb.W, lo, gr.Wp);
  std::memset(dst, 0, sizeof(float) * lo * Cp);
  std::memset(dst + hi * Cp, 0, sizeof(float) * (gr.Wp - hi) * Cp);
  if (hi > lo)
    copy_to_channels_last(pb.x + n * pb.x_n + ih * pb.x_h + (lo - pb.pad_left) * pb.x_w, pb.x_c,
                          pb.x_w, pb.C, hi - lo, dst + lo * Cp, Cp);
}

// Row pp of image n of D.
void dy_row_channels_last(const WinogradProblem& pb, const WeightGrid& gr, int64_t n, int64_t pp,
                          int64_t Kp, float* D) {
  float* dst = D + (n * gr.Pp + pp) * gr.Qp * Kp;
  if (pp >= pb.P) {
    std::memset(dst, 0, sizeof(float) * gr.Qp * Kp);
    return;
  }
  copy_to_channels_last(pb.y + n * pb.y_n + pp * pb.y_h, pb.y_k, pb.y_w, pb.K, pb.Q, dst, Kp);
  std::memset(dst + pb.Q * Kp, 0, sizeof(float) * (gr.Qp - pb.Q) * Kp);
}

// V[xi * v_xi] = (B^T d B)[xi], d the alpha x alpha window at src (rows row, columns col apart).
template <int m>
inline void input_tile(const float* src, int64_t row, int64_t col, float* V, int64_t v_xi) {
  transform_2d<m + 2, m + 2>(
      [&](int i, int j) { return simd::vload(src + i * row + j * col); }, Input1d<m>{},
      [&](int a, int b, Vec v) { simd::vstore(V + (a * (m + 2) + b) * v_xi, v); });
}

// Z[xi * z_xi] = (A dY A^T)[xi], dY the m x m window at src.
template <int m>
inline void dy_tile(const float* src, int64_t row, int64_t col, float* Z, int64_t z_xi) {
  transform_2d<m, m + 2>(
      [&](int i, int j) { return simd::vload(src + i * row + j * col); }, Dy1d<m>{},
      [&](int a, int b, Vec v) { simd::vstore(Z + (a * (m + 2) + b) * z_xi, v); });
}

// dU (kn x cn, row stride ldu) (= when first, else +=) Z^T V over T tiles: Z rows of kn, V rows
// of cn floats (cn a multiple of kLanes).
void weight_products(int64_t T, const float* Z, int64_t kn, const float* V, int64_t cn,
                     float* dU, int64_t ldu, bool first) {
  for (int64_t k = 0; k < kn; k += kWMR)
    for (int64_t c = 0; c < cn; c += kWNV * kLanes) {
      const int mr = static_cast<int>(std::min<int64_t>(kWMR, kn - k));
      const int nv = static_cast<int>(std::min<int64_t>(kWNV, (cn - c) / kLanes));
      outer_panel_n<kWMR, kWNV>(mr, nv, T, Z + k, kn, V + c, cn, dU + k * ldu + c, ldu, !first);
    }
}

// One chunk: tiles t0 .. t0+count-1 (count <= kWeightTiles) of the grid against output
// channels [k0, k0 + kn) and input channels [c0, c0 + cn) (multiples of kLanes, within Kp and
// Cp): their V and Z into the thread's buffers, then dU[xi] (row stride Cp) = (first) or +=
// their products.
template <int m>
void weight_chunk(const WeightGrid& gr, const float* X, int64_t Cp, const float* D, int64_t Kp,
                  int64_t t0, int64_t count, int64_t k0, int64_t kn, int64_t c0, int64_t cn,
                  float* V, float* Z, float* dU, bool first) {
  constexpr int alpha = m + 2;
  const int64_t v_xi = kWeightTiles * cn, z_xi = kWeightTiles * kn;
  int64_t n = t0 / (gr.tH * gr.tW);
  int64_t ty = t0 / gr.tW % gr.tH, tx = t0 % gr.tW;
  for (int64_t u = 0; u < count; ++u) {
    const float* xs = X + ((n * gr.Hp + ty * m) * gr.Wp + tx * m) * Cp + c0;
    for (int64_t c = 0; c < cn; c += kLanes)
      input_tile<m>(xs + c, gr.Wp * Cp, Cp, V + u * cn + c, v_xi);
    const float* ds = D + ((n * gr.Pp + ty * m) * gr.Qp + tx * m) * Kp + k0;
    for (int64_t k = 0; k < kn; k += kLanes)
      dy_tile<m>(ds + k, gr.Qp * Kp, Kp, Z + u * kn + k, z_xi);
    if (++tx == gr.tW) {
      tx = 0;
      if (++ty == gr.tH) ty = 0, ++n;
    }
  }
  for (int xi = 0; xi < alpha * alpha; ++xi)
    weight_products(count, Z + xi * z_xi, kn, V + xi * v_xi, cn,
                    dU + xi * Kp * Cp + k0 * Cp + c0, Cp, first);
}

// dw[i][r][s] = sum over a, b of G[a][r] G[b][s] dU[(a*alpha + b) * u_xi + i], for i < n.
void inverse_weight_transform(int m, const float* dU, int64_t u_xi, int64_t n, float* dw,
                              Scratch& s) {
  const int alpha = m + 2;
  float* tmp = s.tmp.get(3 * 6 * n);  // tmp[r][b]: G^T along a
  float* out = s.g.get(9 * n);        // out[r][s]
  for (int b = 0; b < alpha; ++b) {
    const float* d[6] = {};
    float* o[3];
    for (int a = 0; a < alpha; ++a) d[a] = dU + (a * alpha + b) * u_xi;
    for (int r = 0; r < 3; ++r) o[r] = tmp + (r * 6 + b) * n;
    if (m == 2) weight_grad_1d_m2(d, o, n);
    else weight_grad_1d_m4(d, o, n);
  }
  for (int r = 0; r < 3; ++r) {
    const float* d[6] = {};
    float* o[3];
    for (int b = 0; b < alpha; ++b) d[b] = tmp + (r * 6 + b) * n;
    for (int sc = 0; sc < 3; ++sc) o[sc] = out + (r * 3 + sc) * n;
    if (m == 2) weight_grad_1d_m2(d, o, n);
    else weight_grad_1d_m4(d, o, n);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int rs = 0; rs < 9; ++rs) dw[i * 9 + rs] = out[rs * n + i];
}

// The sub-problems one after another: their channels-last copies (shared, built by all
// threads), then the chunks. With at least as many (output x input channel) blocks as threads
// (and an even share, or four blocks per thread) each thread owns whole blocks of dU and runs
// every tile against them; otherwise each thread takes a range of tiles against every block,
// into its own dU, and the threads' dU are added in thread order. Either way the sums run in
// an order fixed by the shape and the thread count.
template <int m>
void backward_weight(const WinogradProblem* subs, int count, float* dw, int nt) {
  constexpr int alpha = m + 2, xis = alpha * alpha;
  const int64_t C = subs[0].C, K = subs[0].K;
  const int64_t Cp = round_up(C, kLanes), Kp = round_up(K, kLanes);
  const int64_t Cb = std::min(Cp, kWeightBlock), Kb = std::min(Kp, kWeightBlock);
  const int64_t ncb = ceil_div(Cp, Cb), nblocks = ncb * ceil_div(Kp, Kb);
  const bool by_blocks = nblocks >= nt && (nblocks % nt == 0 || nblocks >= 4 * nt);
  const int64_t usize = xis * Kp * Cp;
  int64_t x_size = 0, d_size = 0;
  for (int i = 0; i < count; ++i) {
    const WeightGrid gr(subs[i], m);
    x_size = std::max(x_size, subs[i].N * gr.Hp * gr.Wp * Cp);
    d_size = std::max(d_size, subs[i].N * gr.Pp * gr.Qp * Kp);
  }
  Buffer u_buf, x_buf, d_buf;
  float* parts = u_buf.get(usize * (by_blocks ? 1 : nt));
  float* X = x_buf.get(x_size);
  float* D = d_buf.get(d_size);
  int team = 1;
#pragma omp parallel num_threads(nt)
  {
#if defined(_OPENMP)
    const int tid = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
#else
    const int tid = 0;
#endif
    Scratch scratch;
    Buffer v_buf, z_buf;
    float* V = v_buf.get(xis * kWeightTiles * Cb);
    float* Z = z_buf.get(xis * kWeightTiles * Kb);
    float* mine = by_blocks ? parts : parts + usize * tid;
    // One block (output channels from k0, input channels from c0) over tiles [a, b); the
    // first chunk that reaches a block's dU stores, the others add.
    auto run_block = [&](const WeightGrid& gr, int64_t blk, int64_t a, int64_t b, bool first) {
      const int64_t k0 = blk / ncb * Kb, c0 = blk % ncb * Cb;
      const int64_t kn = std::min(Kb, Kp - k0), cn = std::min(Cb, Cp - c0);
      for (int64_t t = a; t < b; t += kWeightTiles)
        weight_chunk<m>(gr, X, Cp, D, Kp, t, std::min(kWeightTiles, b - t), k0, kn, c0, cn, V,
                        Z, mine, first && t == a);
    };
    bool started = false;  // this thread has stored into its blocks (or its own dU)
    for (int i = 0; i < count; ++i) {
      const WinogradProblem& pb = subs[i];
      if (pb.P <= 0 || pb.Q <= 0 || pb.N <= 0) continue;
      const WeightGrid gr(pb, m);
#pragma omp for schedule(static)
      for (int64_t row = 0; row < pb.N * gr.Hp; ++row)
        input_row_channels_last(pb, gr, row / gr.Hp, row % gr.Hp, Cp, X);
#pragma omp for schedule(static)
      for (int64_t row = 0; row < pb.N * gr.Pp; ++row)
        dy_row_channels_last(pb, gr, row / gr.Pp, row % gr.Pp, Kp, D);
      if (by_blocks) {
        for (int64_t blk = nblocks * tid / team; blk < nblocks * (tid + 1) / team; ++blk)
          run_block(gr, blk, 0, gr.T, !started);
        started = true;
      } else {
        const int64_t a = gr.T * tid / team, b = gr.T * (tid + 1) / team;
        if (a < b) {
          for (int64_t blk = 0; blk < nblocks; ++blk) run_block(gr, blk, a, b, !started);
          started = true;
        }
      }
#pragma omp barrier
    }
    if (!started) {  // no tiles reached this thread's part of dU
      if (by_blocks) {
        for (int64_t blk = nblocks * tid / team; blk < nblocks * (tid + 1) / team; ++blk) {
          const int64_t k0 = blk / ncb * Kb, c0 = blk % ncb * Cb;
          const int64_t kn = std::min(Kb, Kp - k0), cn = std::min(Cb, Cp - c0);
          for (int xi = 0; xi < xis; ++xi)
            for (int64_t k = k0; k < k0 + kn; ++k)
              std::memset(parts + xi * Kp * Cp + k * Cp + c0, 0, sizeof(float) * cn);
        }
      } else {
        std::memset(mine, 0, sizeof(float) * usize);
      }
    }
#pragma omp barrier
    // dU = the threads' sums in thread order (tile ranges), then dw = G^T dU G, row by row.
#pragma omp for schedule(static)
    for (int64_t k = 0; k < K; ++k) {
      float* row = parts + k * Cp;
      if (!by_blocks)
        for (int t = 1; t < team; ++t)
          for (int xi = 0; xi < xis; ++xi) {
            float* __restrict acc = row + xi * Kp * Cp;
            const float* __restrict add = acc + usize * t;
            for (int64_t c = 0; c < C; ++c) acc[c] += add[c];
          }
      inverse_weight_transform(m, row, Kp * Cp, C, dw + k * C * 9, scratch);
    }
  }
}

}  // namespace

void winograd_run(const WinogradProblem& pb) {
  const int nt = num_threads();
  const Plan pl = choose_plan(pb, nt);
  if (pl.k_outer) {
    if (pb.m == 2) run_k_outer<2>(pl, pb, nt);
    else run_k_outer<4>(pl, pb, nt);
  } else {
    if (pb.m == 2) run_tiles_outer<2>(pl, pb, nt);
    else run_tiles_outer<4>(pl, pb, nt);
  }
}

void winograd_backward_weight_run(const WinogradProblem* subs, int count, float* dw) {
  const int nt = num_threads();
  if (subs[0].m == 2) backward_weight<2>(subs, count, dw, nt);
  else backward_weight<4>(subs, count, dw, nt);
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
