// The implicit_gemm convolution for one ISA path (entry points in conv2d_kernels.h): GEMMs
// whose B operand is read in place from zero-padded input planes, so nothing is packed but the
// weights. Included, after conv2d_impl.h (whose helpers it uses), by conv2d.cpp (baseline),
// conv2d_avx2.cpp and conv2d_avx512.cpp; everything lives in pyengine::cpu::PYENGINE_ISA_NS.
//
// Shape letters: N batch, C input channels, K output channels, G groups (Cg = C/G, Kg = K/G),
// H W input plane, R S kernel, P Q output plane, (sh, sw) stride, (dh, dw) dilation.
//
// The idea. Copy the input once into planes Hs x Ws, zero-padded, split by stride phase: plane
// (c, a, b) row y column x holds x_pad(c, y*sh + a, x*sw + b). Output (p, q) of tap (r, s) then
// reads plane (c, (r dh) % sh, (s dw) % sw) at (p + (r dh)/sh, q + (s dw)/sw), so along an output
// row the taps read consecutive floats, and if the output grid is laid out with the planes'
// width Ws (columns q in [Q, Ws) computed and dropped), column j = n*Hs*Ws + p*Ws + q of every
// tap is one contiguous stretch of the planes: B row t = planes + off[t]. The micro-kernel
// (ukernel_direct_accumulate) loads it directly. The images follow each other within a
// channel's planes, so small planes still fill whole tiles. Cost: the padded copy (the size of
// x) and the dropped columns and rows ((Hs Ws - P Q) / Hs Ws of the work, a few percent for
// 56 x 56, more for 7 x 7, where conv2d.cpp's auto prefers im2col_gemm).
//
//   forward          y = W_g * taps(planes(x)) + b, as above.
//   backward-data    dx phase by phase: the rows h = i*sh + ph (and columns likewise) of dx get
//                    dy[i + d_r] * w[r] from the taps r with (ph + pad - r dh) % sh == 0, where
//                    d_r = (ph + pad - r dh) / sh: a stride-1 GEMM over planes of dy (padded so
//                    that every i + d_r is a row of the plane) with those taps' weights. Every dx
//                    element belongs to one phase and one column: written once per K block.
//   backward-weight  dW_g[k, t] = sum over j of dyE[k, j] * planes[off[t] + j], with dyE = dy laid
//                    out on the same column grid (zero in the dropped columns): dot kernels on
//                    rows read in place, no im2col.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/conv2d_impl.h"

namespace pyengine::cpu::PYENGINE_ISA_NS {

namespace {

// K block of the direct GEMM: the B rows of one tile (kc rows of NR floats from the planes,
// many shared between neighbouring taps) stay in L1 while every row panel uses them.
constexpr int64_t kKCPlanes = 192;
// Columns per block: the C block (M x NC) stays in L2 across the K blocks.
constexpr int64_t kNCPlanes = 1536;
// Pixels per chunk of the backward-weight dot products: kDNR plane rows of this length stay
// in L1 while every row of dy meets them.
constexpr int64_t kChunkPlanes = 1024;

// Geometry of a set of planes: `channels` source channels, each split into sh x sw phases of
// Hs x Ws; plane (c, a, b) row y column x holds src[c, y*sh + a - top, x*sw + b - left] (zero
// outside the source), image n's part of it at n*plane. The planes of one (c, a, b) for all
// images take cstride floats; a zeroed slack follows the last, so that a tile may read past the
// end of the column space.
struct Planes {
  int64_t channels, sh, sw, Hs, Ws, top, left, plane, cstride, size;
};

Planes make_planes(int64_t channels, int64_t N, int64_t sh, int64_t sw, int64_t Hs, int64_t Ws,
                   int64_t top, int64_t left) {
  Planes pl;
  pl.channels = channels;
  pl.sh = sh;
  pl.sw = sw;
  pl.Hs = Hs;
  pl.Ws = Ws;
  pl.top = top;
  pl.left = left;
  pl.plane = Hs * Ws;
  pl.cstride = N * pl.plane;
  pl.size = channels * sh * sw * pl.cstride + pl.plane + 4 * kNR + 64;
  return pl;
}

// Fills the planes from src (N, channels, Hsrc, Wsrc): task u of `tasks` = (c, a, b, n) rows.
void fill_plane(float* S, const float* src, int64_t N, int64_t Hsrc, int64_t Wsrc,
                const Planes& pl, int64_t u) {
  const int64_t n = u % N;
  const int64_t cab = u / N;  // (c*sh + a)*sw + b
  const int64_t b = cab % pl.sw;
  const int64_t a = (cab / pl.sw) % pl.sh;
  const int64_t c = cab / (pl.sw * pl.sh);
  float* dst = S + cab * pl.cstride + n * pl.plane;
  const float* sc = src + (n * pl.channels + c) * Hsrc * Wsrc;
  // Columns x whose source column x*sw + b - left lies in [0, Wsrc).
  const int64_t off = b - pl.left;
  const int64_t x0 = min64(max64(ceil_div_signed(-off, pl.sw), 0), pl.Ws);
  const int64_t x1 = max64(min64(max64(ceil_div_signed(Wsrc - off, pl.sw), 0), pl.Ws), x0);
  for (int64_t yy = 0; yy < pl.Hs; ++yy) {
    float* d = dst + yy * pl.Ws;
    const int64_t ih = yy * pl.sh + a - pl.top;
    if (ih < 0 || ih >= Hsrc) {
      for (int64_t xx = 0; xx < pl.Ws; ++xx) d[xx] = 0.0f;
      continue;
    }
    const float* row = sc + ih * Wsrc;
    for (int64_t xx = 0; xx < x0; ++xx) d[xx] = 0.0f;
    if (pl.sw == 1) {
      const float* s = row + off;
      for (int64_t xx = x0; xx < x1; ++xx) d[xx] = s[xx];
    } else {
      for (int64_t xx = x0; xx < x1; ++xx) d[xx] = row[xx * pl.sw + off];
    }
    for (int64_t xx = x1; xx < pl.Ws; ++xx) d[xx] = 0.0f;
  }
}

// Runs f(u) for u < count, shared by the team when nt > 1 (`omp for`, then its barrier).
template <class F>
inline void team_for(int nt, int64_t count, F&& f) {
  if (nt > 1) {
#pragma omp for schedule(static)
    for (int64_t u = 0; u < count; ++u) f(u);
  } else {
    for (int64_t u = 0; u < count; ++u) f(u);
  }
}

// Fills all planes and zeroes the slack; call from every thread of the team.
void fill_planes(float* S, const float* src, int64_t N, int64_t Hsrc, int64_t Wsrc,
                 const Planes& pl, int nt) {
  const int64_t tasks = pl.channels * pl.sh * pl.sw * N;
  team_for(nt, tasks + 1, [&](int64_t u) {
    if (u < tasks) {
      fill_plane(S, src, N, Hsrc, Wsrc, pl, u);
    } else {
      const int64_t used = pl.channels * pl.sh * pl.sw * pl.cstride;
      std::memset(S + used, 0, sizeof(float) * (pl.size - used));
    }
  });
}

// Where the columns of the plane grid go: column (n, y, x) with y < rows and x < cols is
// out[n*image + y*row + x*col], the others are dropped; `channel` separates the tile's rows.
struct OutputMap {
  float* out;
  int64_t image, channel, row, col, rows, cols;
};

// Stores the tile (mr rows of kNR, raw products) of columns [j, j + nr) through the map.
inline void store_plane_tile(const float* tile, int mr, int nr, int64_t j, const Planes& pl,
                             const OutputMap& m, const TileEpilogue& e) {
  int64_t n = j / pl.plane;
  int64_t yy = (j % pl.plane) / pl.Ws;
  int64_t xx = j % pl.Ws;
  for (int64_t t = 0; t < nr;) {
    const int64_t len = min64(pl.Ws - xx, nr - t);
    if (yy < m.rows && xx < m.cols) {
      const int64_t vlen = min64(len, m.cols - xx);
      float* o = m.out + n * m.image + yy * m.row + xx * m.col;
      if (m.col == 1) {
        store_tile_rows(tile + t, kNR, mr, vlen, o, m.channel, e);
      } else {  // strided columns (a phase of a strided backward-data)
        for (int i = 0; i < mr; ++i)
          for (int64_t u = 0; u < vlen; ++u) {
            float* op = o + i * m.channel + u * m.col;
            float v = tile[i * kNR + t + u] * e.alpha;
            if (e.beta != 0.0f) v += e.beta * *op;
            if (e.row_bias) v += e.row_bias[i];
            *op = v;
          }
      }
    }
    t += len;
    xx = 0;
    if (++yy == pl.Hs) {
      yy = 0;
      ++n;
    }
  }
}

// out(m, j) = sum_k A(m, k) * src[off[k] + j] for rows [0, M) and columns [j0, j1) through the
// map, with A packed (KBlocks kb, rows padded to rows_padded) and bias[m] added (may be null).
void direct_gemm(int64_t M, int64_t Kdim, const KBlocks& kb, const float* packed_a,
                 int64_t rows_padded, const float* src, const int64_t* off, int64_t j0, int64_t j1,
                 const Planes& pl, const OutputMap& map, const float* bias) {
  alignas(64) float tile[kMR * kNR];
  for (int64_t jc = j0; jc < j1; jc += kNCPlanes) {
    const int64_t jc1 = min64(jc + kNCPlanes, j1);
    for (int64_t bk = 0; bk < kb.count; ++bk) {
      const int64_t k0 = kb.begin(bk);
      const int64_t kc = kb.size(bk, Kdim);
      const float* a_block = packed_a + k0 * rows_padded;
      TileEpilogue e;
      e.beta = bk == 0 ? 0.0f : 1.0f;
      const bool last = bk == kb.count - 1;
      for (int64_t jr = jc; jr < jc1; jr += kNR) {
        const int nr = static_cast<int>(min64(kNR, jc1 - jr));
        for (int64_t ir = 0; ir < M; ir += kMR) {
          const int mr = static_cast<int>(min64(kMR, M - ir));
          typename V::T acc[kMR][kNV];
          ukernel_direct_accumulate(kc, a_block + ir * kc, src + jr, off + k0, acc);
          for (int i = 0; i < kMR; ++i)
            for (int v = 0; v < kNV; ++v) V::store(tile + i * kNR + v * V::W, acc[i][v]);
          OutputMap m = map;
          m.out += ir * map.channel;
          e.row_bias = last && bias ? bias + ir : nullptr;
          store_plane_tile(tile, mr, nr, jr, pl, m, e);
        }
      }
    }
  }
}

}  // namespace

// ---- forward ---------------------------------------------------------------------------------
void conv2d_forward_planes(float* y, const float* x, const float* w, const float* b,
                           const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t RS = g.R * g.S, CRS = Cg * RS;
  const int64_t sh = g.stride_h, sw = g.stride_w;
  const Planes pl = make_planes(g.C, g.N, sh, sw, g.P + (g.R - 1) * g.dilation_h / sh,
                                g.Q + (g.S - 1) * g.dilation_w / sw, g.pad_top, g.pad_left);
  Buffer S(pl.size);
  BufferOf<int64_t> off(CRS);
  for (int64_t t = 0; t < CRS; ++t) {
    const int64_t c = t / RS, r = (t / g.S) % g.R, s = t % g.S;
    const int64_t rd = r * g.dilation_h, sd = s * g.dilation_w;
    off[t] = ((c * sh + rd % sh) * sw + sd % sw) * pl.cstride + (rd / sh) * pl.Ws + sd / sw;
  }
  const KBlocks kb(CRS, kKCPlanes);
  const int64_t rows_padded = round_up(Kg, kMR);
  const int64_t panels_per_group = kb.count * ceil_div(Kg, kMR);
  Buffer packed_w(G * rows_padded * CRS);
  const int64_t J = g.N * pl.plane;
  const int64_t col_panels = ceil_div(J, kNR);

  run_team(conv_threads(g.K * CRS * J), [&](int t, int nt) {
    fill_planes(S.get(), x, g.N, g.H, g.W, pl, nt);
    team_for(nt, G * panels_per_group, [&](int64_t u) {
      const int64_t gi = u / panels_per_group;
      pack_a_one(w + gi * Kg * CRS, CRS, false, Kg, CRS, kb,
                 packed_w.get() + gi * rows_padded * CRS, u % panels_per_group);
    });
    int64_t p0, p1;
    split_range(col_panels, nt, t, p0, p1);
    const int64_t j0 = p0 * kNR, j1 = min64(p1 * kNR, J);
    if (j0 >= j1) return;
    for (int64_t gi = 0; gi < G; ++gi) {
      const OutputMap map{y + gi * Kg * g.P * g.Q, g.K * g.P * g.Q, g.P * g.Q, g.Q, 1, g.P, g.Q};
      direct_gemm(Kg, CRS, kb, packed_w.get() + gi * rows_padded * CRS, rows_padded,
                  S.get() + gi * Cg * sh * sw * pl.cstride, off.get(), j0, j1, pl, map,
                  b ? b + gi * Kg : nullptr);
    }
  });
}

// ---- backward-data ---------------------------------------------------------------------------
namespace {

// The taps of one phase along one axis: rows h = i*stride + ph of dx get dy[i + d] * w[r] for
// each tap r with (ph + pad - r*dil) % stride == 0, d = (ph + pad - r*dil) / stride.
struct PhaseTaps {
  int64_t count;
  int64_t tap[64];  // kernel positions (conv2d.cpp sends kernels over 64 wide to im2col_gemm)
  int64_t d[64];
};

PhaseTaps phase_taps(int64_t ph, int64_t pad, int64_t kernel, int64_t stride, int64_t dil) {
  PhaseTaps pt;
  pt.count = 0;
  for (int64_t r = 0; r < kernel; ++r) {
    const int64_t v = ph + pad - r * dil;
    if (((v % stride) + stride) % stride != 0) continue;
    pt.tap[pt.count] = r;
    pt.d[pt.count] = v >= 0 ? v / stride : -((-v) / stride);
    ++pt.count;
  }
  return pt;
}

}  // namespace

void conv2d_backward_data_planes(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t RS = g.R * g.S;
  const int64_t sh = g.stride_h, sw = g.stride_w;
  // The source planes: dy shifted by (E, F) so that every row i + d (column j + e) read is >= 0.
  int64_t dmin = 0, dmax = 0, emin = 0, emax = 0;
  for (int64_t ph = 0; ph < sh; ++ph) {
    const PhaseTaps t = phase_taps(ph, g.pad_top, g.R, sh, g.dilation_h);
    for (int64_t u = 0; u < t.count; ++u) {
      dmin = min64(dmin, t.d[u]);
      dmax = max64(dmax, t.d[u]);
    }
  }
  for (int64_t pw = 0; pw < sw; ++pw) {
    const PhaseTaps t = phase_taps(pw, g.pad_left, g.S, sw, g.dilation_w);
    for (int64_t u = 0; u < t.count; ++u) {
      emin = min64(emin, t.d[u]);
      emax = max64(emax, t.d[u]);
    }
  }
  const int64_t E = -dmin, F = -emin;      // >= 0
  const int64_t Imax = ceil_div(g.H, sh);  // output rows of the widest phase
  const int64_t Jmax = ceil_div(g.W, sw);
  const Planes pl = make_planes(g.K, g.N, 1, 1, Imax + dmax + E, Jmax + emax + F, E, F);
  Buffer S(pl.size);
  const int64_t J = g.N * pl.plane;
  const int64_t col_panels = ceil_div(J, kNR);
  // Per phase: the weights of its taps, packed, and the taps' offsets.
  const int64_t kdim_max = Kg * RS;
  Buffer amat(Cg * kdim_max);
  Buffer packed_a(round_up(Cg, kMR) * kdim_max);
  BufferOf<int64_t> off(kdim_max);
  const int threads = conv_threads(g.K * Cg * RS * J);

  run_team(threads, [&](int t, int nt) {
    fill_planes(S.get(), dy, g.N, g.P, g.Q, pl, nt);
    int64_t p0, p1;
    split_range(col_panels, nt, t, p0, p1);
    const int64_t j0 = p0 * kNR, j1 = min64(p1 * kNR, J);
    for (int64_t gi = 0; gi < G; ++gi) {
      for (int64_t ph = 0; ph < sh; ++ph) {
        const PhaseTaps tr = phase_taps(ph, g.pad_top, g.R, sh, g.dilation_h);
        for (int64_t pw = 0; pw < sw; ++pw) {
          const PhaseTaps ts = phase_taps(pw, g.pad_left, g.S, sw, g.dilation_w);
          if (ph >= g.H || pw >= g.W) continue;  // no dx row / column in this phase
          const int64_t rows = ceil_div(g.H - ph, sh), cols = ceil_div(g.W - pw, sw);
          const OutputMap map{dx + gi * Cg * g.H * g.W + ph * g.W + pw, g.C * g.H * g.W,
                              g.H * g.W, sh * g.W, sw, rows, cols};
          const int64_t taps = tr.count * ts.count;
          const int64_t kdim = Kg * taps;
          if (kdim == 0) {  // no tap reaches this phase: its dx is zero
            team_for(nt, g.N * Cg, [&](int64_t u) {
              float* o = map.out + (u / Cg) * map.image + (u % Cg) * map.channel;
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t jj = 0; jj < cols; ++jj) o[i * map.row + jj * map.col] = 0.0f;
            });
            continue;
          }
          const KBlocks kb(kdim, kKCPlanes);
          // A (Cg x kdim): A[c][(k, tap)] = w[gi*Kg + k][c][r][s]; shared, built by one thread
          // once the others are done with the previous phase's.
          if (nt > 1) {
#pragma omp barrier
          }
          if (t == 0) {
            for (int64_t k = 0; k < Kg; ++k)
              for (int64_t u = 0; u < tr.count; ++u)
                for (int64_t v = 0; v < ts.count; ++v) {
                  const int64_t col = (k * tr.count + u) * ts.count + v;
                  off[col] = (gi * Kg + k) * pl.cstride + (tr.d[u] + E) * pl.Ws + ts.d[v] + F;
                  const float* wk = w + ((gi * Kg + k) * Cg) * RS + tr.tap[u] * g.S + ts.tap[v];
                  for (int64_t c = 0; c < Cg; ++c) amat[c * kdim + col] = wk[c * RS];
                }
            pack_a_all_serial(amat.get(), kdim, false, Cg, kdim, kb, packed_a.get());
          }
          if (nt > 1) {
#pragma omp barrier
          }
          if (j0 < j1)
            direct_gemm(Cg, kdim, kb, packed_a.get(), round_up(Cg, kMR), S.get(), off.get(), j0,
                        j1, pl, map, nullptr);
        }
      }
    }
  });
}

// ---- backward-weight -------------------------------------------------------------------------
void conv2d_backward_weight_planes(float* dw, const float* dy, const float* x,
                                   const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t RS = g.R * g.S, CRS = Cg * RS;
  const int64_t sh = g.stride_h, sw = g.stride_w;
  const Planes pl = make_planes(g.C, g.N, sh, sw, g.P + (g.R - 1) * g.dilation_h / sh,
                                g.Q + (g.S - 1) * g.dilation_w / sw, g.pad_top, g.pad_left);
  Buffer S(pl.size);
  BufferOf<int64_t> off(CRS);
  for (int64_t t = 0; t < CRS; ++t) {
    const int64_t c = t / RS, r = (t / g.S) % g.R, s = t % g.S;
    const int64_t rd = r * g.dilation_h, sd = s * g.dilation_w;
    off[t] = ((c * sh + rd % sh) * sw + sd % sw) * pl.cstride + (rd / sh) * pl.Ws + sd / sw;
  }
  // dy on the planes' column grid, zero in the dropped columns; rows padded to whole vectors.
  const int64_t J = round_up(g.N * pl.plane, V::W);
  Buffer dyE(g.K * J);
  const int64_t tiles = ceil_div(CRS, kDNR);
  const int threads = conv_threads(g.K * CRS * g.N * g.P * g.Q);
  const bool split_tiles = threads == 1 || G * tiles >= 4 * threads;
  const int64_t wsize = g.K * CRS;
  Buffer partial(split_tiles ? 0 : threads * wsize);

  run_team(threads, [&](int t, int nt) {
    fill_planes(S.get(), x, g.N, g.H, g.W, pl, nt);
    team_for(nt, g.K * g.N, [&](int64_t u) {
      const int64_t k = u / g.N, n = u % g.N;
      float* d = dyE.get() + k * J + n * pl.plane;
      const float* s = dy + (n * g.K + k) * g.P * g.Q;
      for (int64_t yy = 0; yy < pl.Hs; ++yy)
        for (int64_t xx = 0; xx < pl.Ws; ++xx)
          d[yy * pl.Ws + xx] = (yy < g.P && xx < g.Q) ? s[yy * g.Q + xx] : 0.0f;
      if (n == g.N - 1)
        for (int64_t jj = g.N * pl.plane; jj < J; ++jj) dyE[k * J + jj] = 0.0f;
    });
    // dW_g[k][t] for tap tiles [u0, u1) of group gi over columns [q0, q1) into out.
    auto run = [&](float* out, int64_t gi, int64_t u0, int64_t u1, int64_t q0, int64_t q1) {
      const float* src = S.get() + gi * Cg * sh * sw * pl.cstride;
      const float* dyg = dyE.get() + gi * Kg * J;
      const int64_t chunks = ceil_div(q1 - q0, kChunkPlanes);
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t a = q0 + round_up((q1 - q0) * ch / chunks, V::W);
        const int64_t e =
            ch == chunks - 1 ? q1 : q0 + round_up((q1 - q0) * (ch + 1) / chunks, V::W);
        if (a >= e) continue;
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t t0 = u * kDNR;
          const int nr = static_cast<int>(min64(kDNR, CRS - t0));
          const float* brow[kDNR];
          for (int jj = 0; jj < kDNR; ++jj) brow[jj] = src + off[t0 + min64(jj, nr - 1)] + a;
          for (int64_t k = 0; k < Kg; k += kDMR) {
            const int mr = static_cast<int>(min64(kDMR, Kg - k));
            const float* arow[kDMR];
            for (int ii = 0; ii < kDMR; ++ii) arow[ii] = dyg + (k + min64(ii, mr - 1)) * J + a;
            dot_tile(e - a, arow, brow, out + k * CRS + t0, CRS, mr, nr, /*accumulate=*/ch > 0);
          }
        }
      }
    };
    if (split_tiles) {
      int64_t u0, u1;
      split_range(G * tiles, nt, t, u0, u1);
      for (int64_t gi = u0 / tiles; gi < G && gi * tiles < u1; ++gi)
        run(dw + gi * Kg * CRS, gi, max64(u0, gi * tiles) - gi * tiles,
            min64(u1, (gi + 1) * tiles) - gi * tiles, 0, J);
      return;
    }
    float* mine = partial.get() + t * wsize;
    int64_t q0, q1;
    split_range(J / V::W, nt, t, q0, q1);
    if (q0 >= q1) {
      std::memset(mine, 0, sizeof(float) * wsize);
    } else {
      for (int64_t gi = 0; gi < G; ++gi)
        run(mine + gi * Kg * CRS, gi, 0, tiles, q0 * V::W, q1 * V::W);
    }
    auto reduce = [&](int64_t e) {
      float s = partial[e];
      for (int u = 1; u < nt; ++u) s += partial[u * wsize + e];
      dw[e] = s;
    };
    if (nt > 1) {
#pragma omp barrier
    }
    team_for(nt, wsize, reduce);
  });
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
