// The pooling kernels of pool2d.h, written once and compiled once per ISA path: pool2d.cpp
// (baseline), pool2d_avx2.cpp and pool2d_avx512.cpp include this file, each inside its own
// namespace pyengine::cpu::PYENGINE_ISA_NS, and export their entry points as a Pool2dKernels
// table that pool2d.cpp picks from at run time. The loops are plain C++ that the compiler
// vectorises at the width of the including translation unit.
//
// Shape letters (as in pool2d.h): NC planes, H W input plane, P Q output plane, R S kernel taps.
// Window i along an axis starts at i*stride - pad; its tap r reads i*stride - pad + r*dilation.
//
// Work split: a task is a whole plane, or a block of its rows when there are few planes
// (output rows for the forward kernels, input rows for the backward ones). A task writes only
// its own rows, so threads never share an output element, and every sum is added in an order
// fixed by the code, never by the threads: results are the same for any thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/params.h"
#include "cpu/parallel.h"
#include "cpu/pool2d_isa.h"
#include "cpu/vec_math.h"

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

// Streaming kernels (a few operations per element, like the global average) run about 8
// elements per ns on one core, so below 2^17 elements a second thread saves less than waking it
// costs: microseconds when the team is still spinning from the previous kernel, tens of them on
// a loaded machine, a whole scheduler tick (4-8 ms) when its cores are oversubscribed. ResNet's
// global average, 8 x 512 x 7 x 7 (2^17.6 elements), two threads: forward 15 us against 29 on
// one, backward 28 against 29.
inline bool worth_streaming_parallel(int64_t elements) { return elements >= (int64_t{1} << 17); }

// One axis of a window pool: which taps of window i fall inside the input, and which windows
// lie wholly inside it (the interior, where a loop needs no bounds checks).
struct Axis {
  int64_t in, out, kernel, stride, pad, dilation;

  int64_t start(int64_t i) const { return i * stride - pad; }

  // Taps [*lo, *hi) of window i that read inside [0, in); empty (lo == hi) if none.
  void taps(int64_t i, int64_t* lo, int64_t* hi) const {
    const int64_t s = start(i);
    if (dilation == 1) {  // the common case, without the divisions (they cost more than a tap)
      const int64_t a = s >= 0 ? 0 : -s;
      const int64_t b = in - s < kernel ? in - s : kernel;
      *lo = a < kernel ? a : kernel;
      *hi = b > *lo ? b : *lo;
      return;
    }
    const int64_t a = s >= 0 ? 0 : (-s + dilation - 1) / dilation;
    const int64_t last = in - 1 - s;  // tap r is inside iff r * dilation <= last
    int64_t b = last < 0 ? 0 : last / dilation + 1;
    b = b < kernel ? b : kernel;
    *lo = a < kernel ? a : kernel;
    *hi = b > *lo ? b : *lo;
  }

  int64_t interior_begin() const {
    const int64_t b = (pad + stride - 1) / stride;
    return b < out ? b : out;
  }

  int64_t interior_end() const {
    const int64_t num = in - 1 - (kernel - 1) * dilation + pad;
    int64_t e = num < 0 ? 0 : num / stride + 1;
    e = e < out ? e : out;
    const int64_t b = interior_begin();
    return e > b ? e : b;
  }
};

Axis rows_of(const Pool2dParams& p, int64_t H, int64_t P) {
  return Axis{H, P, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h};
}

Axis cols_of(const Pool2dParams& p, int64_t W, int64_t Q) {
  return Axis{W, Q, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w};
}

// For windows [start_i, end_i) along an axis whose starts and ends never decrease with i, the
// windows that contain input position k form one run [lo[k], hi[k]) (empty when lo == hi).
template <class Bounds>
void windows_containing(int64_t in, int64_t out, Bounds bounds, std::vector<int64_t>& lo,
                        std::vector<int64_t>& hi) {
  lo.assign(in, out);
  hi.assign(in, 0);
  for (int64_t i = 0; i < out; ++i) {
    int64_t a, b;
    bounds(i, &a, &b);
    a = a < 0 ? 0 : a;
    b = b > in ? in : b;
    for (int64_t k = a; k < b; ++k) {
      lo[k] = i < lo[k] ? i : lo[k];
      hi[k] = i + 1 > hi[k] ? i + 1 : hi[k];
    }
  }
  for (int64_t k = 0; k < in; ++k)
    if (hi[k] < lo[k]) lo[k] = hi[k] = 0;
}

// Work (elements) of a task at least, where there are planes enough to group: a task hand-out
// costs a contended atomic, and with one small plane per task (2x2 pooling of 28x28 planes,
// 0.5 us each) the two threads ran no faster than one.
constexpr int64_t kTaskWork = 32768;

// Runs body(plane, row_begin, row_end, scratch) over rows [0, rows) of every plane. A task is
// a group of whole planes (about kTaskWork elements) when there are enough planes to keep the
// threads busy, else a block of one plane's rows. Tasks are handed out dynamically: a result
// never depends on which thread ran a task (each writes only its own rows), and on a busy
// machine a preempted thread then holds up only its current task, not a static share of the
// work. Each thread owns a scratch vector of `scratch_len` elements of T.
template <class T, class Body>
void for_each_row_block(int64_t NC, int64_t rows, int64_t work, int64_t scratch_len,
                        Body body) {
  const int64_t nt = num_threads();
  int64_t blocks = 1, group = 1;
  if (NC < 4 * nt) {
    blocks = std::min(rows, (4 * nt + NC - 1) / NC);
  } else {
    const int64_t per_plane = std::max<int64_t>(1, work / NC);
    group = std::clamp<int64_t>(kTaskWork / per_plane, 1, NC / (4 * nt));
  }
  const int64_t len = (rows + blocks - 1) / blocks;
  blocks = (rows + len - 1) / len;
  const int64_t tasks = blocks > 1 ? NC * blocks : (NC + group - 1) / group;
  [[maybe_unused]] const int threads = static_cast<int>(nt);
#pragma omp parallel num_threads(threads) if (worth_parallel(work))
  {
    std::vector<T> scratch(static_cast<size_t>(scratch_len > 0 ? scratch_len : 1));
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      if (blocks > 1) {
        const int64_t plane = t / blocks, r0 = (t % blocks) * len;
        body(plane, r0, std::min(rows, r0 + len), scratch.data());
      } else {
        for (int64_t plane = t * group; plane < std::min(NC, (t + 1) * group); ++plane)
          body(plane, 0, rows, scratch.data());
      }
    }
  }
}

// ---- max pooling: forward -------------------------------------------------------------------

// PyTorch's update rule: a tap replaces the running maximum when it is greater or NaN, so the
// first maximum wins ties and the last NaN wins. (A bitwise or: nothing to short-circuit.)
inline bool takes(float v, float m) { return (v > m) | (v != v); }

// Windows j0..j1 of one output row, any geometry: only the taps inside the input compete, and
// a window without any (possible with dilation) gives -inf and index -1. Scalar, one window at
// a time: it serves the border windows (a column or two per row), the rows without interior
// windows and geometries whose offsets overflow int32; the bulk goes to the vector kernels.
void max_row_general(float* __restrict y, int64_t* __restrict ind, const float* __restrict x,
                     const Axis& ah, const Axis& aw, int64_t i, int64_t j0, int64_t j1) {
  int64_t r0, r1;
  ah.taps(i, &r0, &r1);
  const int64_t hs = ah.start(i);
  for (int64_t j = j0; j < j1; ++j) {
    int64_t s0, s1;
    aw.taps(j, &s0, &s1);
    const int64_t ws = aw.start(j);
    float m = -std::numeric_limits<float>::infinity();
    int64_t best = -1;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t h = hs + r * ah.dilation;
      const float* __restrict xr = x + h * aw.in;
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t w = ws + s * aw.dilation;
        const float v = xr[w];
        if ((best < 0) | takes(v, m)) {
          m = v;
          best = h * aw.in + w;
        }
      }
    }
    y[j] = m;
    ind[j] = best;
  }
}

// n interior windows of one output row whose R rows all lie inside, R x S taps at dilation 1
// and column stride SW known at compile time, so the loop over windows vectorises (the taps
// unroll). x0 points at tap (0, 0) of the first window. The winner's offset r*W + s from that
// tap goes to pos as int32 (the caller widens it), which keeps every vector lane 32 bits wide:
// tracking int64 positions here costs three times the instructions.
template <int R, int S, int SW>
struct MaxFixed {
  static_assert(R >= 1 && R <= 3 && S >= 1 && S <= 3, "taps are spelled out up to 3 x 3");
  static constexpr bool kFixed = true;

  // Row r's winner over its S taps, offsets counted from tap (0, 0); nan: whether any of them
  // is NaN (then the winner is NaN too).
  static void row_best(const float* __restrict p, int32_t base, float& m, int32_t& t,
                       bool& nan) {
    const float v0 = p[0];
    m = v0;
    t = base;
    nan = v0 != v0;
    if constexpr (S >= 2) {
      const float v = p[1];
      const bool k = takes(v, m);
      m = pick(k, v, m);
      t = pick(k, base + 1, t);
      nan = nan | (v != v);
    }
    if constexpr (S >= 3) {
      const float v = p[2];
      const bool k = takes(v, m);
      m = pick(k, v, m);
      t = pick(k, base + 2, t);
      nan = nan | (v != v);
    }
  }

  // Each row's winner first, then the rows': the rule combines the results of consecutive runs
  // of taps exactly as it combines single taps (the last NaN of either run, else the first
  // maximum), and the rows' chains are independent, so the dependent compares are
  // R - 1 + S - 1 deep instead of R * S - 1. A row's NaN test uses its own flag rather than
  // m != m: GCC turns the latter into a select between two masks, which its vectoriser refuses.
  static void row(float* __restrict y, int32_t* __restrict pos, const float* __restrict x0,
                  int32_t W, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
      const float* __restrict xp = x0 + j * SW;
      float m0, m1, m2;
      int32_t t0, t1, t2;
      bool n0, n1, n2;
      row_best(xp, 0, m0, t0, n0);
      if constexpr (R >= 2) {
        row_best(xp + W, W, m1, t1, n1);
        const bool k = (m1 > m0) | n1;
        m0 = pick(k, m1, m0);
        t0 = pick(k, t1, t0);
      }
      if constexpr (R >= 3) {
        row_best(xp + 2 * W, 2 * W, m2, t2, n2);
        const bool k = (m2 > m0) | n2;
        m0 = pick(k, m2, m0);
        t0 = pick(k, t2, t0);
      }
      y[j] = m0;
      pos[j] = t0;
    }
  }
};

struct NoFixed {
  static constexpr bool kFixed = false;
};

// Interior windows [jb, je) of output row i (every column tap inside), valid tap rows [r0, r1):
// taps outer, windows inner, so that each window's chain of compares runs through y and pos
// while the loop over windows has independent iterations, which vectorise (strided loads for a
// compile-time column stride SW, gathers for SW = 0: any stride). pos gets each winner's
// offset from tap (0, 0) of its window.
template <int SW>
void max_row_taps(float* __restrict y, int32_t* __restrict pos, const float* x, const Axis& ah,
                  const Axis& aw, int64_t i, int64_t r0, int64_t r1, int64_t jb, int64_t n) {
  const int64_t W = aw.in, sw = SW > 0 ? SW : aw.stride;
  const float* origin = x + ah.start(i) * W + aw.start(jb);  // tap (0, 0) of window jb
  bool first = true;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t s = 0; s < aw.kernel; ++s) {
      const int64_t off = r * ah.dilation * W + s * aw.dilation;
      const float* __restrict xs = origin + off;
      const int32_t o = static_cast<int32_t>(off);
      if (first) {
        for (int64_t k = 0; k < n; ++k) {
          y[k] = xs[k * sw];
          pos[k] = o;
        }
        first = false;
        continue;
      }
      for (int64_t k = 0; k < n; ++k) {
        const float v = xs[k * sw], m = y[k];
        const bool take = takes(v, m);
        y[k] = pick(take, v, m);
        pos[k] = pick(take, o, pos[k]);
      }
    }
  }
}

// Runs row(begin, count) over [0, n) so that vector loops never reach their scalar tails, where
// the select chains turn into long serial code: whole blocks of B (a multiple of the loop's
// vector width on every path), then the last B again, overlapping (each call recomputes its
// windows from scratch, so the overlap writes the same values twice). Below B, one plain call.
template <int B, class Row>
void in_blocks(int64_t n, Row row) {
  if (n < B) {
    row(0, n);
    return;
  }
  const int64_t whole = n - n % B;
  row(0, whole);
  if (whole < n) row(n - B, B);
}

template <class Fixed, int SW>
void max_forward_with(float* y, int64_t* indices, const float* x, int64_t NC, int64_t H,
                      int64_t W, const Pool2dParams& p) {
  const int64_t P = p.output_h(H), Q = p.output_w(W);
  const Axis ah = rows_of(p, H, P), aw = cols_of(p, W, Q);
  const int64_t jb = aw.interior_begin(), je = aw.interior_end();
  const int64_t sw = SW > 0 ? SW : p.stride_w;
  for_each_row_block<int32_t>(NC, P, NC * H * W, Q, [&](int64_t plane, int64_t i0, int64_t i1,
                                                         int32_t* pos) {
    const float* xp = x + plane * H * W;
    for (int64_t i = i0; i < i1; ++i) {
      float* yr = y + (plane * P + i) * Q;
      int64_t* ir = indices + (plane * P + i) * Q;
      int64_t r0, r1;
      ah.taps(i, &r0, &r1);
      if (r0 == r1 || je <= jb) {  // no row inside, or no interior column
        max_row_general(yr, ir, xp, ah, aw, i, 0, Q);
        continue;
      }
      max_row_general(yr, ir, xp, ah, aw, i, 0, jb);
      max_row_general(yr, ir, xp, ah, aw, i, je, Q);
      const int64_t n = je - jb;  // a local: the stores below could alias a captured one
      const int64_t first = ah.start(i) * W + aw.start(jb);
      float* yj = yr + jb;
      bool fixed = false;
      if constexpr (Fixed::kFixed) fixed = r1 - r0 == p.kernel_h;
      if (fixed) {
        // Measured on 112-wide planes (AVX-512, 1 thread): blocks of 16 pay at column stride 1
        // (1.3 vs 2.7 ns per window for 3x3) and cost at stride 2 (2.6 vs 1.7 ns), where blocks
        // of 8 pay on short rows (2x2 on 28x28 planes: 0.6 vs 1.3 ns per input element; on
        // 112x112 even).
        if constexpr (Fixed::kFixed) {
          if (SW == 1) {
            in_blocks<16>(n, [&](int64_t b, int64_t count) {
              Fixed::row(yj + b, pos + b, xp + first + b, static_cast<int32_t>(W), count);
            });
          } else {
            in_blocks<8>(n, [&](int64_t b, int64_t count) {
              Fixed::row(yj + b, pos + b, xp + first + b * SW, static_cast<int32_t>(W), count);
            });
          }
        }
      } else {
        in_blocks<16>(n, [&](int64_t b, int64_t count) {
          max_row_taps<SW>(yj + b, pos + b, xp, ah, aw, i, r0, r1, jb + b, count);
        });
      }
      int64_t* __restrict irj = ir + jb;
      for (int64_t j = 0; j < n; ++j) irj[j] = first + j * sw + pos[j];
    }
  });
}

void max_pool2d_forward(float* y, int64_t* indices, const float* x, int64_t NC, int64_t H,
                        int64_t W, const Pool2dParams& p) {
  // Window offsets (up to dilation rows of W) are kept in int32.
  const int64_t span = (p.kernel_h - 1) * p.dilation_h * W + (p.kernel_w - 1) * p.dilation_w;
  if (span >= (int64_t{1} << 31)) {
    for_each_row_block<int32_t>(NC, p.output_h(H), NC * H * W, 0, [&](int64_t plane, int64_t i0,
                                                                    int64_t i1, int32_t*) {
      const int64_t P = p.output_h(H), Q = p.output_w(W);
      const Axis ah = rows_of(p, H, P), aw = cols_of(p, W, Q);
      for (int64_t i = i0; i < i1; ++i)
        max_row_general(y + (plane * P + i) * Q, indices + (plane * P + i) * Q,
                        x + plane * H * W, ah, aw, i, 0, Q);
    });
    return;
  }
  const bool d1 = p.dilation_h == 1 && p.dilation_w == 1;
  const int64_t kh = p.kernel_h, kw = p.kernel_w, sw = p.stride_w;
  if (d1 && kh == 2 && kw == 2 && sw == 2)
    return max_forward_with<MaxFixed<2, 2, 2>, 2>(y, indices, x, NC, H, W, p);
  if (d1 && kh == 3 && kw == 3 && sw == 2)
    return max_forward_with<MaxFixed<3, 3, 2>, 2>(y, indices, x, NC, H, W, p);
  if (d1 && kh == 3 && kw == 3 && sw == 1)
    return max_forward_with<MaxFixed<3, 3, 1>, 1>(y, indices, x, NC, H, W, p);
  if (d1 && kh == 2 && kw == 2 && sw == 1)
    return max_forward_with<MaxFixed<2, 2, 1>, 1>(y, indices, x, NC, H, W, p);
  if (sw == 1) return max_forward_with<NoFixed, 1>(y, indices, x, NC, H, W, p);
  if (sw == 2) return max_forward_with<NoFixed, 2>(y, indices, x, NC, H, W, p);
  max_forward_with<NoFixed, 0>(y, indices, x, NC, H, W, p);
}

// ---- max pooling: backward ------------------------------------------------------------------
//
// dx is the largest array the backward touches (4x dy for 2x2 windows at stride 2) and the
// kernel is bound by memory traffic, so both forms below write each dx element to memory once:
// no whole-plane zero fill that a later pass reads back. Streaming (non-temporal) stores do not
// pay: the benchmark's 26 MB dx sits in the L3 cache, where they measured slower than plain ones.
//
// Which dy an element receives: that of each window whose index names it and whose taps'
// rows contain it (an index outside its window's rows, -1 for a window made only of padding or
// garbage, contributes nothing, so no write can leave the task's rows). Where windows do not
// overlap, the index must also name one of the window's columns.

// For each input position along an axis, the window whose taps hold it, or -1: at most one
// when windows do not overlap (stride >= the kernel's extent).
std::vector<int64_t> tap_owners(const Axis& a) {
  std::vector<int64_t> owner(static_cast<size_t>(a.in), -1);
  for (int64_t j = 0; j < a.out; ++j) {
    int64_t lo, hi;
    a.taps(j, &lo, &hi);
    for (int64_t t = lo; t < hi; ++t) owner[a.start(j) + t * a.dilation] = j;
  }
  return owner;
}

// Columns [w0, w1) of dx row h: its window along the row is ir / gr (that row's indices and
// dy), along the columns owner[w]; base = h * W, the flat position of column 0.
void max_gather_columns(float* __restrict dxr, const int64_t* __restrict ir,
                        const float* __restrict gr, const int64_t* __restrict owner,
                        int64_t base, int64_t w0, int64_t w1) {
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t j = owner[w];
    const int64_t jj = j >= 0 ? j : 0;  // a window to read; its match counts only for j >= 0
    dxr[w] = pick(j >= 0 && ir[jj] == base + w, gr[jj], 0.0f);
  }
}

// n windows of S contiguous columns each (kernel == stride == S, dilation 1), all inside the
// row: window j owns columns j*S .. j*S + S-1 from dxr, whose flat position is base. One index
// and one dy per window feed S stores, with no table lookup, so the loop vectorises (S-way
// interleaved stores).
template <int S>
void max_gather_windows(float* __restrict dxr, const int64_t* __restrict ir,
                        const float* __restrict gr, int64_t base, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t k = ir[j] - (base + j * S);  // the winner's column within window j
    const float g = gr[j];
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) dxr[j * S + s] = pick(k == s, g, 0.0f);
  }
}

// Windows per call of max_gather_windows (in_blocks): 8 on short rows (2x2 on 14x14 / 28x28
// planes, ns per dx element: 0.75 / 0.42 against 0.93 / 0.53 with 4, 0.83 / 0.44 with 16).
constexpr int kGatherBlock = 8;

// Windows that do not overlap: every dx element has at most one window, so each task computes
// its rows as a gather, dy where the index names the element and 0 elsewhere, in one pass.
// A row of windows of kernel == stride == 2 or 3 columns (the common 2x2 / 3x3 pools) runs its
// interior through max_gather_windows (kGatherBlock windows per call), the rest through the
// owner table.
void max_backward_disjoint(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t H, int64_t W, const Pool2dParams& p) {
  const int64_t P = p.output_h(H), Q = p.output_w(W);
  const Axis ah = rows_of(p, H, P), aw = cols_of(p, W, Q);
  const std::vector<int64_t> row_owner = tap_owners(ah), col_owner = tap_owners(aw);
  const int64_t S = p.dilation_w == 1 && p.kernel_w == p.stride_w ? p.kernel_w : 0;
  int64_t jb = aw.interior_begin(), je = aw.interior_end();
  if (S != 2 && S != 3) jb = je = 0;
  const int64_t wb = aw.start(jb), we = jb < je ? aw.start(je) : wb;  // fixed-path columns
  for_each_row_block<float>(NC, H, NC * H * W, 0, [&](int64_t plane, int64_t h0, int64_t h1,
                                                       float*) {
    for (int64_t h = h0; h < h1; ++h) {
      float* __restrict dxr = dx + (plane * H + h) * W;
      const int64_t i = row_owner[h];
      if (i < 0) {
        for (int64_t w = 0; w < W; ++w) dxr[w] = 0.0f;
        continue;
      }
      const int64_t* ir = indices + (plane * P + i) * Q;
      const float* gr = dy + (plane * P + i) * Q;
      const int64_t base = h * W;
      if (we <= wb) {
        max_gather_columns(dxr, ir, gr, col_owner.data(), base, 0, W);
        continue;
      }
      max_gather_columns(dxr, ir, gr, col_owner.data(), base, 0, wb);
      in_blocks<kGatherBlock>(je - jb, [&](int64_t b, int64_t count) {
        const int64_t j = jb + b, w = wb + b * S;  // the block's first window and column
        if (S == 2) max_gather_windows<2>(dxr + w, ir + j, gr + j, base + w, count);
        else max_gather_windows<3>(dxr + w, ir + j, gr + j, base + w, count);
      });
      max_gather_columns(dxr, ir, gr, col_owner.data(), base, we, W);
    }
  });
}

// Overlapping windows: an element may sum several dy, so the task scatters, visiting its
// windows in row-major order (as the reference adds them) and adding each dy at its index.
// Rows are zeroed just before the first window that reaches them, not the whole task first:
// the few rows a window row spans stay in L1 between the zero and the adds, where a 50 KB
// plane zeroed up front would spill to L2 and come back. Visiting windows costs one test per
// window, where gathering per element would test each (element, candidate window) pair:
// about 4x the work for 3x3 windows at stride 2.
void max_backward_overlapping(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                              int64_t H, int64_t W, const Pool2dParams& p) {
  const int64_t P = p.output_h(H), Q = p.output_w(W);
  const Axis ah = rows_of(p, H, P);
  const int64_t reach = (p.kernel_h - 1) * p.dilation_h;  // rows a window spans, less one
  for_each_row_block<float>(NC, H, NC * H * W, 0, [&](int64_t plane, int64_t h0, int64_t h1,
                                                       float*) {
    float* __restrict dxp = dx + plane * H * W;
    // Output rows i whose windows [i*s - pad, i*s - pad + reach] meet [h0, h1).
    const int64_t num = h0 + p.pad_h - reach;
    const int64_t i0 = num <= 0 ? 0 : (num + p.stride_h - 1) / p.stride_h;
    const int64_t i1 = std::min(P, (h1 - 1 + p.pad_h) / p.stride_h + 1);
    const int64_t* __restrict ip = indices + plane * P * Q;
    const float* __restrict gp = dy + plane * P * Q;
    int64_t zeroed = h0;  // rows [h0, zeroed) are zero or hold sums
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t top = std::max(h0, ah.start(i));
      const int64_t bottom = std::min(h1, ah.start(i) + reach + 1);
      if (bottom <= top) continue;
      if (bottom > zeroed) {
        for (int64_t k = zeroed * W; k < bottom * W; ++k) dxp[k] = 0.0f;
        zeroed = bottom;
      }
      const int64_t lo = top * W, span = (bottom - top) * W;
      const int64_t* __restrict ir = ip + i * Q;
      const float* __restrict gr = gp + i * Q;
      for (int64_t j = 0; j < Q; ++j) {
        const int64_t k = ir[j];
        if (static_cast<uint64_t>(k - lo) < static_cast<uint64_t>(span)) dxp[k] += gr[j];
      }
    }
    for (int64_t k = zeroed * W; k < h1 * W; ++k) dxp[k] = 0.0f;
  });
}

void max_pool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                         int64_t H, int64_t W, const Pool2dParams& p) {
  const bool disjoint = p.stride_h > (p.kernel_h - 1) * p.dilation_h &&
                        p.stride_w > (p.kernel_w - 1) * p.dilation_w;
  if (disjoint) return max_backward_disjoint(dx, dy, indices, NC, H, W, p);
  max_backward_overlapping(dx, dy, indices, NC, H, W, p);
}

// ---- average pooling: forward ---------------------------------------------------------------

// Divisor of every window (P x Q, shared by all planes), as the reference computes it: an
// integer count converted to float once.
std::vector<float> avg_divisors(const Pool2dParams& p, int64_t H, int64_t W, int64_t P,
                                int64_t Q) {
  std::vector<float> d(static_cast<size_t>(P * Q));
  if (p.divisor_override != 0) {
    std::fill(d.begin(), d.end(), static_cast<float>(p.divisor_override));
    return d;
  }
  auto extent = [&](int64_t i, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
    const int64_t s = i * stride - pad;
    int64_t e = s + kernel;
    e = e < size + pad ? e : size + pad;  // ceil_mode windows are clipped to the padded input
    if (p.count_include_pad) return e - s;
    return (e < size ? e : size) - (s > 0 ? s : 0);
  };
  for (int64_t i = 0; i < P; ++i) {
    const int64_t eh = extent(i, p.stride_h, p.pad_h, p.kernel_h, H);
    for (int64_t j = 0; j < Q; ++j)
      d[i * Q + j] = static_cast<float>(eh * extent(j, p.stride_w, p.pad_w, p.kernel_w, W));
  }
  return d;
}

// Window sums of n interior windows (all R x S taps inside), taps added in row-major order as
// the reference adds them, divided by their common divisor.
template <int R, int S, int SW>
struct AvgFixed {
  static constexpr bool kFixed = true;

  static void row(float* __restrict y, const float* __restrict x0, int64_t W, float divisor,
                  int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
      const float* __restrict xp = x0 + j * SW;
      float sum = 0.0f;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
        for (int s = 0; s < S; ++s) sum += xp[r * W + s];
      }
      y[j] = sum / divisor;
    }
  }
};

void avg_row_general(float* __restrict y, const float* __restrict x, const float* div,
                     const Axis& ah, const Axis& aw, int64_t i, int64_t j0, int64_t j1) {
  int64_t r0, r1;
  ah.taps(i, &r0, &r1);
  const int64_t hs = ah.start(i);
  for (int64_t j = j0; j < j1; ++j) {
    int64_t s0, s1;
    aw.taps(j, &s0, &s1);
    const int64_t ws = aw.start(j);
    float sum = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + (hs + r) * aw.in + ws;
      for (int64_t s = s0; s < s1; ++s) sum += xr[s];
    }
    y[j] = sum / div[j];
  }
}

template <class Fixed>
void avg_forward_with(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                      const Pool2dParams& p) {
  const int64_t P = p.output_h(H), Q = p.output_w(W);
  const Axis ah = rows_of(p, H, P), aw = cols_of(p, W, Q);
  const std::vector<float> div = avg_divisors(p, H, W, P, Q);
  const int64_t jb = aw.interior_begin(), je = aw.interior_end();
  for_each_row_block<float>(NC, P, NC * H * W, 0, [&](int64_t plane, int64_t i0, int64_t i1,
                                                       float*) {
    const float* xp = x + plane * H * W;
    for (int64_t i = i0; i < i1; ++i) {
      float* yr = y + (plane * P + i) * Q;
      const float* dr = div.data() + i * Q;
      int64_t r0, r1;
      ah.taps(i, &r0, &r1);
      if constexpr (Fixed::kFixed) {
        if (r1 - r0 == p.kernel_h && je > jb) {
          avg_row_general(yr, xp, dr, ah, aw, i, 0, jb);
          // Interior windows cover R x S input elements: every divisor rule agrees on them.
          Fixed::row(yr + jb, xp + ah.start(i) * W + aw.start(jb), W, dr[jb], je - jb);
          avg_row_general(yr, xp, dr, ah, aw, i, je, Q);
          continue;
        }
      }
      avg_row_general(yr, xp, dr, ah, aw, i, 0, Q);
    }
  });
}

void avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                        const Pool2dParams& p) {
  const int64_t kh = p.kernel_h, kw = p.kernel_w, sw = p.stride_w;
  if (kh == 2 && kw == 2 && sw == 2)
    return avg_forward_with<AvgFixed<2, 2, 2>>(y, x, NC, H, W, p);
  if (kh == 3 && kw == 3 && sw == 2)
    return avg_forward_with<AvgFixed<3, 3, 2>>(y, x, NC, H, W, p);
  if (kh == 3 && kw == 3 && sw == 1)
    return avg_forward_with<AvgFixed<3, 3, 1>>(y, x, NC, H, W, p);
  if (kh == 2 && kw == 2 && sw == 1)
    return avg_forward_with<AvgFixed<2, 2, 1>>(y, x, NC, H, W, p);
  avg_forward_with<NoFixed>(y, x, NC, H, W, p);
}

// ---- average pooling backward: column geometry -----------------------------------------------

// Tap s of window j reads input column w = j * stride + off, off = s * dilation - pad. A
// backward task accumulates one dx row in `stride` classes of columns, class e holding columns
// e, e + stride, ... at places 0, 1, ...: for a fixed tap, consecutive windows then reach
// consecutive places of one class, so the loops over windows are contiguous and vectorise.
struct TapColumns {
  int64_t j0, j1;  // the windows whose tap reads a column inside [0, W)
  int64_t first;   // place in the accumulator of window j0's column (class * len + place)
};

struct ColumnClasses {
  int64_t stride, W, len;  // len: places per class, ceil(W / stride)
  std::vector<TapColumns> taps;  // from the last tap to the first: each column meets its
                                 // windows in increasing j
};

ColumnClasses column_classes(const Axis& aw) {
  ColumnClasses cc{aw.stride, aw.in, (aw.in + aw.stride - 1) / aw.stride, {}};
  for (int64_t s = aw.kernel - 1; s >= 0; --s) {
    const int64_t off = s * aw.dilation - aw.pad;
    const int64_t j0 = off >= 0 ? 0 : (-off + aw.stride - 1) / aw.stride;
    int64_t j1 = aw.in - 1 - off < 0 ? 0 : (aw.in - 1 - off) / aw.stride + 1;
    j1 = j1 < aw.out ? j1 : aw.out;
    if (j1 <= j0) continue;
    const int64_t w0 = j0 * aw.stride + off;
    cc.taps.push_back({j0, j1, (w0 % aw.stride) * cc.len + w0 / aw.stride});
  }
  return cc;
}

// The dx row from its class accumulators.
void write_classes(float* __restrict dxr, const float* __restrict acc, const ColumnClasses& cc) {
  const int64_t W = cc.W, len = cc.len;
  if (cc.stride == 1) {
    std::memcpy(dxr, acc, static_cast<size_t>(W) * sizeof(float));
  } else if (cc.stride == 2) {
    const float* __restrict a0 = acc;
    const float* __restrict a1 = acc + len;
    const int64_t pairs = W / 2;
    for (int64_t m = 0; m < pairs; ++m) {
      dxr[2 * m] = a0[m];
      dxr[2 * m + 1] = a1[m];
    }
    if (W % 2) dxr[W - 1] = a0[pairs];
  } else {
    for (int64_t e = 0; e < cc.stride && e < W; ++e) {
      const float* __restrict a = acc + e * len;
      for (int64_t m = 0; e + m * cc.stride < W; ++m) dxr[e + m * cc.stride] = a[m];
    }
  }
}

// Calls fn(i) for the output rows i whose windows have a tap in input row h, in increasing
// order (taps from last to first).
template <class Fn>
void for_rows_reaching(const Axis& ah, int64_t h, Fn fn) {
  for (int64_t r = ah.kernel - 1; r >= 0; --r) {
    const int64_t num = h + ah.pad - r * ah.dilation;
    if (num >= 0 && num % ah.stride == 0 && num / ah.stride < ah.out) fn(num / ah.stride);
  }
}

// ---- average pooling: backward (gather) -----------------------------------------------------

// Task rows h of one plane: c[j] = sum of dy / divisor over the output rows that reach h, then
// every element adds c over the windows whose taps read its column.
void avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                         const Pool2dParams& p) {
  const int64_t P = p.output_h(H), Q = p.output_w(W);
  const Axis ah = rows_of(p, H, P);
  const ColumnClasses cc = column_classes(cols_of(p, W, Q));
  const std::vector<float> div = avg_divisors(p, H, W, P, Q);
  const int64_t acc_len = cc.stride * cc.len;
  for_each_row_block<float>(NC, H, NC * H * W, acc_len + Q,
                            [&](int64_t plane, int64_t h0, int64_t h1, float* scratch) {
    float* __restrict acc = scratch;
    float* __restrict c = scratch + acc_len;
    const float* dyp = dy + plane * P * Q;
    for (int64_t h = h0; h < h1; ++h) {
      int64_t windows = 0;
      for_rows_reaching(ah, h, [&](int64_t i) {
        const float* __restrict g = dyp + i * Q;
        const float* __restrict d = div.data() + i * Q;
        if (windows++ == 0) {
          for (int64_t j = 0; j < Q; ++j) c[j] = g[j] / d[j];
        } else {
          for (int64_t j = 0; j < Q; ++j) c[j] += g[j] / d[j];
        }
      });
      float* dxr = dx + (plane * H + h) * W;
      if (windows == 0) {
        for (int64_t w = 0; w < W; ++w) dxr[w] = 0.0f;
        continue;
      }
      for (int64_t k = 0; k < acc_len; ++k) acc[k] = 0.0f;
      for (const TapColumns& tc : cc.taps) {
        const float* __restrict cj = c + tc.j0;
        float* __restrict a = acc + tc.first;
        for (int64_t k = 0; k < tc.j1 - tc.j0; ++k) a[k] += cj[k];
      }
      write_classes(dxr, acc, cc);
    }
  });
}

// ---- max unpooling --------------------------------------------------------------------------

// Planes per task of max_unpool2d's passes (each plane reads or writes Lin + Lout elements).
inline int64_t unpool_planes_per_task(int64_t Lin, int64_t Lout) {
  return std::max<int64_t>(1, kTaskWork / (Lin + Lout));
}

void max_unpool2d_forward(float* y, const float* x, const int64_t* indices, int64_t NC,
                          int64_t Lin, int64_t Lout) {
  [[maybe_unused]] const int nt = num_threads();
  [[maybe_unused]] const int64_t planes_per_task = unpool_planes_per_task(Lin, Lout);
#pragma omp parallel for num_threads(nt) schedule(dynamic, planes_per_task) \
    if (worth_parallel(NC * Lout))
  for (int64_t plane = 0; plane < NC; ++plane) {
    float* __restrict yp = y + plane * Lout;
    const float* __restrict xp = x + plane * Lin;
    const int64_t* __restrict ip = indices + plane * Lin;
    for (int64_t k = 0; k < Lout; ++k) yp[k] = 0.0f;
    // In order, so the last of repeated indices wins; the range test is a second guard
    // behind the binding's check, never taken for valid input.
    for (int64_t k = 0; k < Lin; ++k)
      if (static_cast<uint64_t>(ip[k]) < static_cast<uint64_t>(Lout)) yp[ip[k]] = xp[k];
  }
}

void max_unpool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t Lin, int64_t Lout) {
  [[maybe_unused]] const int nt = num_threads();
  [[maybe_unused]] const int64_t planes_per_task = unpool_planes_per_task(Lin, Lout);
#pragma omp parallel for num_threads(nt) schedule(dynamic, planes_per_task) \
    if (worth_parallel(NC * Lin))
  for (int64_t plane = 0; plane < NC; ++plane) {
    float* __restrict dxp = dx + plane * Lin;
    const float* __restrict dyp = dy + plane * Lout;
    const int64_t* __restrict ip = indices + plane * Lin;
    for (int64_t k = 0; k < Lin; ++k) {
      const int64_t at = ip[k];
      dxp[k] = static_cast<uint64_t>(at) < static_cast<uint64_t>(Lout) ? dyp[at] : 0.0f;
    }
  }
}

// ---- adaptive average pooling ---------------------------------------------------------------

// dx row h of an adaptive pool from the per-column sums c[j] of dy / area over the windows'
// rows that contain h: each element adds c over the windows [lo[w], hi[w]) that contain its
// column (adaptive windows vary in size, so no class trick here).
void spread_columns(float* __restrict dxr, const float* __restrict c, const int64_t* lo,
                    const int64_t* hi, int64_t W) {
  for (int64_t w = 0; w < W; ++w) {
    float sum = 0.0f;
    for (int64_t j = lo[w]; j < hi[w]; ++j) sum += c[j];
    dxr[w] = sum;
  }
}

// Window i of an adaptive pool of `in` to `out`: [floor(i*in/out), ceil((i+1)*in/out)).
inline void adaptive_bounds(int64_t i, int64_t in, int64_t out, int64_t* a, int64_t* b) {
  *a = (i * in) / out;
  *b = ((i + 1) * in + out - 1) / out;
}

// Sum of a short contiguous plane (global pooling sees 7x7 = 49 values) in two 4-lane
// accumulators, spelled with GCC's generic vector type (one SSE register each, at every path):
// the compiler left to itself runs 16-wide AVX-512 on a 49-value plane and spends more on the
// tail and the horizontal sum than on the 3 vector adds (0.036 against 0.026 ms for 4096
// planes). The order of the additions is the source's, the same on every path.
typedef float Lanes4 __attribute__((vector_size(16)));

inline Lanes4 load4(const float* x) {
  Lanes4 v;
  std::memcpy(&v, x, sizeof v);
  return v;
}

inline float plane_sum(const float* x, int64_t L) {
  Lanes4 a = {0.0f, 0.0f, 0.0f, 0.0f}, b = a;
  int64_t k = 0;
  for (; k + 8 <= L; k += 8) {
    a += load4(x + k);
    b += load4(x + k + 4);
  }
  if (k + 4 <= L) {
    a += load4(x + k);
    k += 4;
  }
  float tail = 0.0f;
  for (; k < L; ++k) tail += x[k];
  a += b;
  return ((a[0] + a[2]) + (a[1] + a[3])) + tail;
}

void adaptive_avg_pool2d_forward(float* y, const float* x, int64_t NC, int64_t H, int64_t W,
                                 int64_t P, int64_t Q) {
  if (P == 1 && Q == 1) {  // global average: one contiguous sum per plane
    const int64_t L = H * W;
    const float area = static_cast<float>(L);
    [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64) if (worth_streaming_parallel(NC * L))
    for (int64_t plane = 0; plane < NC; ++plane) y[plane] = plane_sum(x + plane * L, L) / area;
    return;
  }
  for_each_row_block<float>(NC, P, NC * H * W, W, [&](int64_t plane, int64_t i0, int64_t i1,
                                                       float* rowsum) {
    const float* xp = x + plane * H * W;
    for (int64_t i = i0; i < i1; ++i) {
      int64_t h0, h1;
      adaptive_bounds(i, H, P, &h0, &h1);
      for (int64_t w = 0; w < W; ++w) rowsum[w] = xp[h0 * W + w];
      for (int64_t h = h0 + 1; h < h1; ++h) {
        const float* __restrict xr = xp + h * W;
        for (int64_t w = 0; w < W; ++w) rowsum[w] += xr[w];
      }
      float* yr = y + (plane * P + i) * Q;
      for (int64_t j = 0; j < Q; ++j) {
        int64_t w0, w1;
        adaptive_bounds(j, W, Q, &w0, &w1);
        float sum = 0.0f;
        for (int64_t w = w0; w < w1; ++w) sum += rowsum[w];
        yr[j] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
  });
}

void adaptive_avg_pool2d_backward(float* dx, const float* dy, int64_t NC, int64_t H, int64_t W,
                                  int64_t P, int64_t Q) {
  if (P == 1 && Q == 1) {  // global average: every element gets dy / (H * W)
    const int64_t L = H * W;
    const float area = static_cast<float>(L);
    [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64) if (worth_streaming_parallel(NC * L))
    for (int64_t plane = 0; plane < NC; ++plane) {
      const float g = dy[plane] / area;
      float* __restrict dxp = dx + plane * L;
      for (int64_t k = 0; k < L; ++k) dxp[k] = g;
    }
    return;
  }
  std::vector<float> area(static_cast<size_t>(P * Q));
  for (int64_t i = 0; i < P; ++i) {
    int64_t h0, h1;
    adaptive_bounds(i, H, P, &h0, &h1);
    for (int64_t j = 0; j < Q; ++j) {
      int64_t w0, w1;
      adaptive_bounds(j, W, Q, &w0, &w1);
      area[i * Q + j] = static_cast<float>((h1 - h0) * (w1 - w0));
    }
  }
  std::vector<int64_t> ilo, ihi, jlo, jhi;
  windows_containing(H, P, [&](int64_t i, int64_t* a, int64_t* b) {
    adaptive_bounds(i, H, P, a, b);
  }, ilo, ihi);
  windows_containing(W, Q, [&](int64_t j, int64_t* a, int64_t* b) {
    adaptive_bounds(j, W, Q, a, b);
  }, jlo, jhi);
  for_each_row_block<float>(NC, H, NC * H * W, Q, [&](int64_t plane, int64_t h0, int64_t h1,
                                                       float* c) {
    const float* dyp = dy + plane * P * Q;
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t j = 0; j < Q; ++j) c[j] = 0.0f;
      for (int64_t i = ilo[h]; i < ihi[h]; ++i) {
        const float* __restrict g = dyp + i * Q;
        const float* __restrict a = area.data() + i * Q;
        for (int64_t j = 0; j < Q; ++j) c[j] += g[j] / a[j];
      }
      spread_columns(dx + (plane * H + h) * W, c, jlo.data(), jhi.data(), W);
    }
  });
}

}  // namespace

// The entry points of this ISA path (declared in pool2d_isa.h).
const Pool2dKernels kPool2dKernels = {
    max_pool2d_forward,          max_pool2d_backward,          avg_pool2d_forward,
    avg_pool2d_backward,         max_unpool2d_forward,         max_unpool2d_backward,
    adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward,
};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
