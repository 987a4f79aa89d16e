// The im2col_gemm convolution for one ISA path (entry points declared in conv2d_kernels.h):
// included once by each of conv2d.cpp (baseline), conv2d_avx2.cpp and conv2d_avx512.cpp, each
// compiled with its own flags and PYENGINE_ISA_NS, so everything here lives in that namespace.
//
// Shape letters: N batch, C input channels, K output channels, G groups (Cg = C/G, Kg = K/G),
// H W input plane, R S kernel, P Q output plane; CRS = Cg*R*S, the rows of im2col(x); a
// "column" or "pixel" j = (n, p, q) flattened over the batch, so small planes (7x7) still fill
// whole register tiles. x_pad(n, c, h, w) is x with zeros outside [0, H) x [0, W).
//
//   forward          y_g (Kg x N*P*Q) = W_g (Kg x CRS) * im2col(x_g) (CRS x N*P*Q) + b_g.
//                    The GEMM's B panels are packed straight from x (an implicit im2col: no
//                    column matrix is ever materialised); tiles inside one image are stored by
//                    the micro-kernel, bias fused; tiles across two images via a small buffer.
//                    At stride 2 along w the S taps of one (c, r) come from a single split of
//                    each run's input row into its even and odd columns (stride2_taps_run).
//   backward-data    col (CRS x N*P*Q) = W_g^T (CRS x Kg) * dy_g (Kg x N*P*Q), each tile added
//                    into dx where its (c, r, s, n, p, q) points (col2im fused into the store).
//                    Threads own disjoint images (or channels) of dx, so no two write one element.
//   backward-weight  dW_g (Kg x CRS) = dy_g (Kg x pixels) * im2col(x_g)^T (pixels x CRS): the
//                    same broadcast micro-kernel with the pixels as the reduction. Both operands
//                    are contiguous along the pixels, so packing transposes them: dy into MR-row
//                    panels, im2col rows (built NR at a time) with in-register square transposes.
//                    With few output channels the transposes cost more than they save: dot
//                    kernels then read dy and im2col rows as they are (backward_weight_dot).
//                    At stride 2 the taps of one (c, r) share a split, as in the forward.
//                    At stride 1 with Q == W an im2col row is one shifted, masked copy of
//                    each input plane (ShiftedPlanes) instead of a gather per output row.
//
// Determinism: every sum runs in an order fixed by the shape and the thread count.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/conv2d_kernels.h"
#include "cpu/gemm_simd.h"
#include "cpu/parallel.h"

namespace pyengine::cpu::PYENGINE_ISA_NS {

namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ceil(a / b) for b > 0 and any a.
inline int64_t ceil_div_signed(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// For each kernel column s, the output columns q in [lo[s], hi[s]) read an input column
// q*sw - pad_left + s*dw inside [0, W); the others read padding.
void column_ranges(const ConvGeom& g, int64_t* lo, int64_t* hi) {
  for (int64_t s = 0; s < g.S; ++s) {
    const int64_t off = s * g.dilation_w - g.pad_left;
    const int64_t a = min64(max64(ceil_div_signed(-off, g.stride_w), 0), g.Q);
    const int64_t b = min64(max64(ceil_div_signed(g.W - off, g.stride_w), 0), g.Q);
    lo[s] = a;
    hi[s] = b > a ? b : a;
  }
}

// A stretch of consecutive columns within one output row (n, p): q in [q0, q0 + len), at
// offset `off` from the first column of the range it came from.
struct Run {
  int64_t n, p, q0, len, off;
};

// Calls f(run) for the runs that columns [j0, j0 + count) split into.
template <class F>
inline void for_each_run(int64_t j0, int64_t count, int64_t P, int64_t Q, F&& f) {
  const int64_t PQ = P * Q;
  int64_t n = j0 / PQ;
  int64_t p = (j0 % PQ) / Q;
  int64_t q = j0 % Q;
  for (int64_t off = 0; off < count;) {
    const int64_t len = min64(Q - q, count - off);
    f(Run{n, p, q, len, off});
    off += len;
    q = 0;
    if (++p == P) {
      p = 0;
      ++n;
    }
  }
}

// Calls f(n, pq0, len, off) for the stretches of columns [j0, j0 + count) within one image.
template <class F>
inline void for_each_image_segment(int64_t j0, int64_t count, int64_t PQ, F&& f) {
  int64_t n = j0 / PQ;
  int64_t pq = j0 % PQ;
  for (int64_t off = 0; off < count;) {
    const int64_t len = min64(PQ - pq, count - off);
    f(n, pq, len, off);
    off += len;
    pq = 0;
    ++n;
  }
}

#if defined(__AVX512F__)
// Lane i of a permutex2var over (a, b) takes lane 2i of the 32: the even floats of a and b.
inline __m512i even_lanes() {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
#endif

// dst[t] = src[2t] for t < n: every other float (stride-2 convolutions), whole vectors
// compressed with a permute; the last source vector is loaded masked so nothing past
// src[2(n-1)] is read.
inline void copy_stride2(float* __restrict dst, const float* __restrict src, int64_t n) {
  int64_t t = 0;
#if defined(__AVX512F__)
  const __m512i even = even_lanes();
  for (; t + 16 <= n; t += 16) {
    const __m512 a = _mm512_loadu_ps(src + 2 * t);
    const __m512 b = _mm512_maskz_loadu_ps(0x7FFF, src + 2 * t + 16);
    _mm512_storeu_ps(dst + t, _mm512_permutex2var_ps(a, even, b));
  }
  if (t < n) {  // r < 16 outputs from the 2r - 1 floats src[2t ..]
    const int r = static_cast<int>(n - t);
    const int ca = 2 * r - 1 < 16 ? 2 * r - 1 : 16;
    const int cb = 2 * r - 1 - ca;
    const __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << ca) - 1), src + 2 * t);
    const __m512 b =
        _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << cb) - 1), src + 2 * t + 16);
    V::store_n(dst + t, _mm512_permutex2var_ps(a, even, b), r);
    return;
  }
#elif defined(__AVX2__)
  for (; t + 8 <= n; t += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * t);
    const __m256 b = V::load_n(src + 2 * t + 8, 7);
    const __m256 ab = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 ..
    _mm256_storeu_ps(dst + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ab),
                                                                     _MM_SHUFFLE(3, 1, 2, 0))));
  }
#endif
  for (; t < n; ++t) dst[t] = src[2 * t];
}

// dst[t] = x_pad(row ih, column q*sw + off_w) for q = q0 + t, t < len: the im2col values of
// one (c, r, s) along one run. row: the input row, nullptr where ih is outside [0, H).
inline void gather_run(float* __restrict dst, const float* __restrict row, int64_t q0,
                       int64_t len, int64_t lo, int64_t hi, int64_t sw, int64_t off_w) {
  if (!row) {
    for (int64_t t = 0; t < len; ++t) dst[t] = 0.0f;
    return;
  }
  const int64_t a = min64(max64(lo, q0), q0 + len) - q0;
  const int64_t b = max64(min64(hi, q0 + len) - q0, a);
  for (int64_t t = 0; t < a; ++t) dst[t] = 0.0f;
  if (sw == 1) {
    const float* src = row + q0 + off_w;
    for (int64_t t = a; t < b; ++t) dst[t] = src[t];
  } else if (sw == 2) {
    if (b > a) copy_stride2(dst + a, row + (q0 + a) * 2 + off_w, b - a);
  } else {
    for (int64_t t = a; t < b; ++t) dst[t] = row[(q0 + t) * sw + off_w];
  }
  for (int64_t t = b; t < len; ++t) dst[t] = 0.0f;
}

// Stride-1 convolutions whose output rows are as wide as the input rows (Q == W: "same"
// padding along w, as in most 3x3 layers): the im2col row of (c, r, s) over one image is then
// the input plane itself read at a fixed flat offset, shift = (r*dh - pad_top)*W + s*dw -
// pad_left, with the columns that fall into the padding zeroed by a per-s mask (all-ones /
// zero bits, so the masked values are exact zeros even where the plane holds NaN or inf) and
// zeros where the flat index leaves the plane (the rows above and below it). One masked copy
// per image instead of one short run per output row: on small planes (14x14) the runs' setup
// cost as much as the copying.
struct ShiftedPlanes {
  bool applies = false;
  int64_t W = 0, HW = 0, PQ = 0;
  BufferOf<uint32_t> keep;  // S x PQ: keep[s * PQ + pq], all-ones where column q is inside

  explicit ShiftedPlanes(const ConvGeom& g) {
    // The masks take S x PQ words: up to 256 KiB. Larger planes have rows long enough that
    // gathering run by run costs about as much as the copy itself.
    applies = g.stride_h == 1 && g.stride_w == 1 && g.Q == g.W && g.S * g.P * g.Q <= 65536;
    if (!applies) return;
    W = g.W;
    HW = g.H * g.W;
    PQ = g.P * g.Q;
    keep.reset(g.S * PQ);
    for (int64_t s = 0; s < g.S; ++s) {
      const int64_t off = s * g.dilation_w - g.pad_left;
      for (int64_t pq = 0; pq < PQ; ++pq) {
        const int64_t iw = pq % g.Q + off;
        keep[s * PQ + pq] = iw >= 0 && iw < g.W ? 0xFFFFFFFFu : 0u;
      }
    }
  }

  int64_t shift(const ConvGeom& g, int64_t r, int64_t s) const {
    return (r * g.dilation_h - g.pad_top) * W + s * g.dilation_w - g.pad_left;
  }

  // dst[t] = im2col row (c, r, s) at pixel pq0 + t of one image, t < len; plane: x(n, c).
  void gather(float* __restrict dst, const float* __restrict plane, int64_t s, int64_t sh,
              int64_t pq0, int64_t len) const {
    const int64_t a = min64(max64(-sh - pq0, 0), len);
    const int64_t b = max64(min64(HW - sh - pq0, len), a);
    for (int64_t t = 0; t < a; ++t) dst[t] = 0.0f;
    const uint32_t* __restrict m = keep.get() + s * PQ + pq0;
    const int64_t first = pq0 + sh;  // plane index of t = 0 (only t in [a, b) is read)
    for (int64_t t = a; t < b; ++t) {
      uint32_t bits;
      std::memcpy(&bits, plane + (first + t), sizeof bits);
      bits &= m[t];
      std::memcpy(dst + t, &bits, sizeof bits);
    }
    for (int64_t t = b; t < len; ++t) dst[t] = 0.0f;
  }
};

// dst[2t] += src[t] for t < n (the col2im of stride-2 convolutions): src spread into the even
// lanes of two vectors with a permute and a zeroing mask, added to dst; the last dst vector
// is loaded and stored masked so nothing past dst[2(n-1)] is touched.
inline void add_stride2(float* __restrict dst, const float* __restrict src, int64_t n) {
  int64_t t = 0;
#if defined(__AVX512F__)
  const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i hi =
      _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  constexpr __mmask16 kEven = 0x5555;
  for (; t + 16 <= n; t += 16) {
    const __m512 v = _mm512_loadu_ps(src + t);
    float* d = dst + 2 * t;
    _mm512_storeu_ps(d,
                     _mm512_add_ps(_mm512_loadu_ps(d), _mm512_maskz_permutexvar_ps(kEven, lo, v)));
    const __m512 d1 = _mm512_maskz_loadu_ps(0x7FFF, d + 16);
    _mm512_mask_storeu_ps(d + 16, 0x7FFF,
                          _mm512_add_ps(d1, _mm512_maskz_permutexvar_ps(kEven, hi, v)));
  }
  if (t < n) {  // r < 16 sources onto the 2r - 1 floats dst[2t ..]
    const int r = static_cast<int>(n - t);
    const int ca = 2 * r - 1 < 16 ? 2 * r - 1 : 16;
    const int cb = 2 * r - 1 - ca;
    const __mmask16 ma = static_cast<__mmask16>((1u << ca) - 1);
    const __mmask16 mb = static_cast<__mmask16>((1u << cb) - 1);
    const __m512 v = V::load_n(src + t, r);
    float* d = dst + 2 * t;
    _mm512_mask_storeu_ps(d, ma, _mm512_add_ps(_mm512_maskz_loadu_ps(ma, d),
                                               _mm512_maskz_permutexvar_ps(kEven, lo, v)));
    _mm512_mask_storeu_ps(d + 16, mb, _mm512_add_ps(_mm512_maskz_loadu_ps(mb, d + 16),
                                                    _mm512_maskz_permutexvar_ps(kEven, hi, v)));
    return;
  }
#endif
  for (; t < n; ++t) dst[2 * t] += src[t];
}

// row(ih, column q*sw + off_w) += src[t] for q = q0 + t in the valid columns: the col2im of
// one (c, r, s) along one run.
inline void scatter_add_run(float* __restrict row, const float* __restrict src, int64_t q0,
                            int64_t len, int64_t lo, int64_t hi, int64_t sw, int64_t off_w) {
  const int64_t a = min64(max64(lo, q0), q0 + len) - q0;
  const int64_t b = max64(min64(hi, q0 + len) - q0, a);
  if (sw == 1) {
    float* dst = row + q0 + off_w;
    for (int64_t t = a; t < b; ++t) dst[t] += src[t];
  } else if (sw == 2) {
    if (b > a) add_stride2(row + (q0 + a) * 2 + off_w, src + a, b - a);
  } else {
    for (int64_t t = a; t < b; ++t) row[(q0 + t) * sw + off_w] += src[t];
  }
}

// Threads for a convolution of `macs` multiply-adds.
inline int conv_threads(int64_t macs) { return macs >= (int64_t(1) << 18) ? num_threads() : 1; }

template <class F>
inline void run_team(int threads, F&& body) {
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(thread_id(), team_size());
  } else {
    body(0, 1);
  }
}

// Incremental (c, r, s) of an im2col row index.
struct Crs {
  int64_t c, r, s;
  Crs(int64_t row, int64_t R, int64_t S) : c(row / (R * S)), r((row / S) % R), s(row % S) {}
  void next(int64_t R, int64_t S) {
    if (++s == S) {
      s = 0;
      if (++r == R) {
        r = 0;
        ++c;
      }
    }
  }
};

// Calls f(run, row) for each of `runs`: row is the input row that kernel row crs.r of channel
// crs.c reads for the run's output row, or nullptr where that row lies in the padding.
template <class F>
inline void for_each_run_row(const float* xg, const ConvGeom& g, const Crs& crs, const Run* runs,
                             int64_t nruns, F&& f) {
  const int64_t HW = g.H * g.W;
  const float* xc = xg + crs.c * HW;
  const int64_t ih_off = crs.r * g.dilation_h - g.pad_top;
  for (int64_t u = 0; u < nruns; ++u) {
    const Run& run = runs[u];
    const int64_t ih = run.p * g.stride_h + ih_off;
    f(run, ih >= 0 && ih < g.H ? xc + run.n * g.C * HW + ih * g.W : nullptr);
  }
}

// Row (c, r, s) = crs of im2col(x_g) along `runs` (each run's values at dst + run.off): one
// gather per output row. lo, hi: column_ranges. The forward's panels and the backward-weight
// rows both build their rows here.
inline void gather_im2col_runs(float* dst, const float* xg, const ConvGeom& g, const int64_t* lo,
                               const int64_t* hi, const Crs& crs, const Run* runs,
                               int64_t nruns) {
  const int64_t off_w = crs.s * g.dilation_w - g.pad_left;
  for_each_run_row(xg, g, crs, runs, nruns, [&](const Run& run, const float* row) {
    gather_run(dst + run.off, row, run.q0, run.len, lo[crs.s], hi[crs.s], g.stride_w, off_w);
  });
}

// Stride-2 taps whose reach, (S - 1) * dw, is at most this share one phase split per run (see
// gather_stride2_taps); the split's buffers hold kNR + this / 2 + 1 floats.
constexpr int64_t kMaxPhaseReach = 30;

bool phase_split_applies(const ConvGeom& g) {
  return g.stride_w == 2 && g.S > 1 && (g.S - 1) * g.dilation_w <= kMaxPhaseReach;
}

// How many im2col rows, from crs on, the packers build in one go when `room` rows are left:
// all S taps of (c, r) where they share a phase split and all fit, else the one row.
inline int64_t rows_in_one_go(bool split, const Crs& crs, int64_t room, int64_t S) {
  return split && crs.s == 0 && S <= room ? S : 1;
}

// Row s of dst (row stride ld), s < S, gets the len <= kNR values x_pad(row, first + 2t + s*dw),
// t < len: the S taps of one (c, r) along one run at stride 2. Tap s reads the even (s*dw even)
// or odd columns of the input row from `first` on, s*dw / 2 further along, so the row is split
// once into its even and odd columns (zero in the padding) and every tap is a contiguous piece
// of one of the two: one strided split in place of S strided gathers.
#if defined(__AVX512F__)
// AVX-512: the split stays in registers (up to 4 vectors per phase, built by masked loads that
// read nothing in the padding and one permute each), and each tap's vectors are cut from it by
// a two-register permute. (Through a buffer in memory, the taps' loads of what the split had
// just stored cost as much as the gathers they replace.)
inline __mmask16 columns_inside(int64_t start, int64_t W) {
  const int64_t lo = min64(max64(-start, 0), 16), hi = min64(max64(W - start, 0), 16);
  return hi > lo ? static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
}

inline void stride2_taps_run(float* dst, int64_t ld, const float* row, int64_t first,
                             int64_t len, int64_t W, int64_t S, int64_t dw) {
  const __m512i even = even_lanes();
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int64_t need = len + (S - 1) * dw / 2;  // phase entries read
  const int64_t nv = need / 16 + 1;             // vectors, and one more for the last cut
  __m512 phase[2][kNR / 16 + kMaxPhaseReach / 32 + 2];
  for (int64_t k = 0; k < nv; ++k) {
    const int64_t start = first + 32 * k;  // columns [start, start + 32) make vector k
    const __m512 a = _mm512_maskz_loadu_ps(columns_inside(start, W), row + start);
    const __m512 b = _mm512_maskz_loadu_ps(columns_inside(start + 16, W), row + start + 16);
    phase[0][k] = _mm512_permutex2var_ps(a, even, b);
    phase[1][k] = _mm512_permutex2var_ps(a, odd, b);
  }
  for (int64_t s = 0; s < S; ++s) {
    const int64_t o = s * dw;
    const __m512* ph = phase[o & 1];
    const __m512i cut = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(o >> 1)));
    float* d = dst + s * ld;
    int64_t t = 0, k = 0;
    for (; t + 16 <= len; t += 16, ++k)
      _mm512_storeu_ps(d + t, _mm512_permutex2var_ps(ph[k], cut, ph[k + 1]));
    if (t < len)
      V::store_n(d + t, _mm512_permutex2var_ps(ph[k], cut, ph[k + 1]), static_cast<int>(len - t));
  }
}
#else
// e[i] = x_pad(row, first + 2i) for i < n: every other column of one input row from column
// `first` (which may lie in the padding), zero outside [0, W).
inline void fill_phase(float* __restrict e, const float* __restrict row, int64_t first, int64_t n,
                       int64_t W) {
  const int64_t a = min64(max64(ceil_div_signed(-first, 2), 0), n);
  const int64_t b = max64(min64(ceil_div_signed(W - first, 2), n), a);
  for (int64_t i = 0; i < a; ++i) e[i] = 0.0f;
  if (b > a) copy_stride2(e + a, row + first + 2 * a, b - a);
  for (int64_t i = b; i < n; ++i) e[i] = 0.0f;
}

inline void stride2_taps_run(float* dst, int64_t ld, const float* row, int64_t first,
                             int64_t len, int64_t W, int64_t S, int64_t dw) {
  const int64_t need = len + (S - 1) * dw / 2 + 1;
  float phase[2][kNR + kMaxPhaseReach / 2 + 1];
  fill_phase(phase[0], row, first, need, W);
  fill_phase(phase[1], row, first + 1, need, W);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t o = s * dw;
    const float* __restrict src = phase[o & 1] + (o >> 1);
    float* __restrict d = dst + s * ld;
    for (int64_t t = 0; t < len; ++t) d[t] = src[t];
  }
}
#endif

// Rows (c, r, s) of im2col(x_g) for every s at once, row s at dst + s * ld, along `runs`, for
// stride-2 convolutions (phase_split_applies): stride2_taps_run per run, kNR columns at a time.
inline void gather_stride2_taps(float* dst, int64_t ld, const float* xg, const ConvGeom& g,
                                const Crs& crs, const Run* runs, int64_t nruns) {
  for_each_run_row(xg, g, crs, runs, nruns, [&](const Run& run, const float* row) {
    if (!row) {
      for (int64_t s = 0; s < g.S; ++s)
        for (int64_t t = 0; t < run.len; ++t) dst[s * ld + run.off + t] = 0.0f;
      return;
    }
    for (int64_t t = 0; t < run.len; t += kNR)
      stride2_taps_run(dst + run.off + t, ld, row, 2 * (run.q0 + t) - g.pad_left,
                       min64(kNR, run.len - t), g.W, g.S, g.dilation_w);
  });
}

// Rows of im2col(x_g) along the pixels, for the backward-weight GEMMs (their reduction runs
// along the pixels): one shifted masked copy per image where ShiftedPlanes applies, else one
// gather per output row. Built once per call, read by every thread.
struct Im2colRows {
  const ConvGeom& g;
  ShiftedPlanes sp;
  BufferOf<int64_t> ranges;  // lo[s] = ranges[s], hi[s] = ranges[S + s] (column_ranges)

  explicit Im2colRows(const ConvGeom& geom) : g(geom), sp(geom), ranges(2 * geom.S) {
    column_ranges(g, ranges.get(), ranges.get() + g.S);
  }

  // Row crs over pixels [j0, j0 + len) into dst[0, len); runs[0, nruns): the runs of that
  // range (runs_of), only read when the shifted copy does not apply.
  void row(float* __restrict dst, const float* xg, const Crs& crs, int64_t j0, int64_t len,
           const Run* runs, int64_t nruns) const {
    if (!sp.applies)
      return gather_im2col_runs(dst, xg, g, ranges.get(), ranges.get() + g.S, crs, runs, nruns);
    const int64_t HW = g.H * g.W;
    const float* xc = xg + crs.c * HW;
    const int64_t sh = sp.shift(g, crs.r, crs.s);
    for_each_image_segment(j0, len, sp.PQ, [&](int64_t n, int64_t pq, int64_t seg, int64_t off) {
      sp.gather(dst + off, xc + n * g.C * HW, crs.s, sh, pq, seg);
    });
  }

  // The runs of pixels [j0, j0 + len) into runs (at least len + 1 entries) when row() reads
  // them; returns their count.
  int64_t runs_of(int64_t j0, int64_t len, Run* runs) const {
    if (sp.applies) return 0;
    int64_t nruns = 0;
    for_each_run(j0, len, g.P, g.Q, [&](const Run& run) { runs[nruns++] = run; });
    return nruns;
  }
};

// B panels of the forward GEMM: im2col(x_g) rows [k0, k0 + kc), columns [jc, jc + nc), as
// ceil(nc / NR) panels of kc x NR (zero past nc). xg: x at the group's first channel. Row by
// row of im2col (kk outer): each run of columns reads consecutive input of one row, and the
// runs of the block continue each other, so the input is read as a few sequential streams.
// runs: scratch for at least nc + nc / NR + 1 entries.
void pack_im2col_panels(const float* xg, const ConvGeom& g, const int64_t* lo, const int64_t* hi,
                        int64_t k0, int64_t kc, int64_t jc, int64_t nc, float* dst, Run* runs) {
  // Runs of the block, cut at panel boundaries; off becomes the run's offset in dst.
  int64_t nruns = 0;
  for (int64_t jr = 0; jr < nc; jr += kNR)
    for_each_run(jc + jr, min64(kNR, nc - jr), g.P, g.Q, [&](const Run& run) {
      runs[nruns] = run;
      runs[nruns].off = jr * kc + run.off;  // panel jr / NR, column run.off within it
      ++nruns;
    });
  const int64_t tail = nc % kNR;  // columns past nc in the last panel: zero
  float* tail_dst = tail ? dst + (nc - tail) * kc + tail : nullptr;
  const bool split = phase_split_applies(g);
  Crs crs(k0, g.R, g.S);
  for (int64_t kk = 0; kk < kc;) {
    const int64_t rows = rows_in_one_go(split, crs, kc - kk, g.S);
    if (rows > 1) gather_stride2_taps(dst + kk * kNR, kNR, xg, g, crs, runs, nruns);
    else gather_im2col_runs(dst + kk * kNR, xg, g, lo, hi, crs, runs, nruns);
    for (int64_t e = 0; e < rows; ++e, ++kk, crs.next(g.R, g.S))
      if (tail_dst)
        for (int64_t t = 0; t < kNR - tail; ++t) tail_dst[kk * kNR + t] = 0.0f;
  }
}

}  // namespace

// ---- forward ---------------------------------------------------------------------------------
void conv2d_forward_im2col(float* y, const float* x, const float* w, const float* b,
                           const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t CRS = Cg * g.R * g.S;
  const int64_t PQ = g.P * g.Q;
  const int64_t cols = g.N * PQ;
  const KBlocks kb(CRS, kKC);
  const int64_t rows_padded = round_up(Kg, kMR);
  Buffer packed_w(G * rows_padded * CRS);
  BufferOf<int64_t> ranges(2 * g.S);
  column_ranges(g, ranges.get(), ranges.get() + g.S);
  const int64_t* lo = ranges.get();
  const int64_t* hi = ranges.get() + g.S;
  const int64_t col_panels = ceil_div(cols, kNR);
  const int64_t row_panels = ceil_div(Kg, kMR);
  const int64_t panels_per_group = kb.count * row_panels;
  const int threads = conv_threads(g.K * CRS * cols);
  // Few column panels (small planes, e.g. 7x7): the threads share each packed B block and
  // split the rows instead, rather than leave one thread a panel more than the other.
  const bool share_b = threads > 1 && col_panels < 4 * threads && row_panels >= 2 * threads;
  const int64_t nc_shared = min64(kNC, round_up(cols, kNR));
  Buffer shared_b(share_b ? kb.kc * nc_shared : 0);

  run_team(threads, [&](int t, int nt) {
    // The packed weights are shared: every thread packs some panels, then all wait. (A team
    // of one may be running inside a caller's parallel region: no `omp for` then.)
    auto pack_w = [&](int64_t u) {
      const int64_t gi = u / panels_per_group;
      pack_a_one(w + gi * Kg * CRS, CRS, false, Kg, CRS, kb,
                 packed_w.get() + gi * rows_padded * CRS, u % panels_per_group);
    };
    if (nt > 1) {
#pragma omp for schedule(static)
      for (int64_t u = 0; u < G * panels_per_group; ++u) pack_w(u);
    } else {
      for (int64_t u = 0; u < G * panels_per_group; ++u) pack_w(u);
    }
    int64_t i0 = 0, i1 = Kg, j0 = 0, j1 = cols;
    int64_t p0, p1;
    const bool shared = share_b && nt > 1;
    if (shared) {
      split_range(row_panels, nt, t, p0, p1);
      i0 = p0 * kMR;
      i1 = min64(p1 * kMR, Kg);
    } else {
      split_range(col_panels, nt, t, p0, p1);
      j0 = p0 * kNR;
      j1 = min64(p1 * kNR, cols);
      if (j0 >= j1) return;
    }
    const int64_t nc_max = shared ? nc_shared : min64(kNC, round_up(j1 - j0, kNR));
    Buffer own_b(shared ? 0 : kb.kc * nc_max);
    BufferOf<Run> runs(nc_max + nc_max / kNR + 1);
    float* bbuf = shared ? shared_b.get() : own_b.get();
    for (int64_t gi = 0; gi < G; ++gi) {
      const float* xg = x + gi * Cg * g.H * g.W;
      const float* bias = b ? b + gi * Kg : nullptr;
      auto pack_b = [&](int64_t k0, int64_t kc, int64_t jc, int64_t nc, float* dst) {
        if (!shared) return pack_im2col_panels(xg, g, lo, hi, k0, kc, jc, nc, dst, runs.get());
        // Everyone is done with the previous block, packs a share of this one, waits.
#pragma omp barrier
        const int64_t panels = ceil_div(nc, kNR);
        int64_t q0, q1;
        split_range(panels, nt, t, q0, q1);
        if (q0 < q1)
          pack_im2col_panels(xg, g, lo, hi, k0, kc, jc + q0 * kNR, min64(nc, q1 * kNR) - q0 * kNR,
                             dst + q0 * kNR * kc, runs.get());
#pragma omp barrier
      };
      auto sink = [&](int64_t i, int64_t j, int mr, int nr, int64_t kc, const float* pa,
                      const float* pb, bool first, bool last) {
        TileEpilogue e;
        e.beta = first ? 0.0f : 1.0f;
        e.row_bias = last && bias ? bias + i : nullptr;
        const int64_t n = j / PQ;
        const int64_t pq = j % PQ;
        if (pq + nr <= PQ) {  // the tile lies in one image: rows of y are rows of C
          ukernel(kc, pa, pb, y + (n * g.K + gi * Kg + i) * PQ + pq, PQ, mr, nr, e);
          return;
        }
        alignas(64) float tile[kMR * kNR];
        ukernel_to_tile(kc, pa, pb, tile);
        for_each_image_segment(j, nr, PQ, [&](int64_t sn, int64_t spq, int64_t len, int64_t off) {
          store_tile_rows(tile + off, kNR, mr, len, y + (sn * g.K + gi * Kg + i) * PQ + spq, PQ,
                          e);
        });
      };
      blocked_gemm(CRS, kb, i0, i1, j0, j1, packed_w.get() + gi * rows_padded * CRS, 0,
                   rows_padded, nc_max, bbuf, pack_b, sink);
    }
  });
}

// ---- backward-data ---------------------------------------------------------------------------
void conv2d_backward_data_im2col(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t RS = g.R * g.S;
  const int64_t CRS = Cg * RS;
  const int64_t HW = g.H * g.W;
  const int64_t PQ = g.P * g.Q;
  const KBlocks kb(Kg, kKC);
  BufferOf<int64_t> ranges(2 * g.S);
  column_ranges(g, ranges.get(), ranges.get() + g.S);
  const int64_t* lo = ranges.get();
  const int64_t* hi = ranges.get() + g.S;
  const int threads = conv_threads(g.K * CRS * g.N * PQ);
  // Threads own whole images of dx when they share them out evenly, else ranges of channels.
  const bool split_images = g.N % threads == 0 || g.N >= 4 * threads;

  run_team(threads, [&](int t, int nt) {
    int64_t n0 = 0, n1 = g.N, c0 = 0, c1 = g.C;
    if (split_images) split_range(g.N, nt, t, n0, n1);
    else split_range(g.C, nt, t, c0, c1);
    if (n0 >= n1 || c0 >= c1) return;
    for (int64_t n = n0; n < n1; ++n)
      std::memset(dx + (n * g.C + c0) * HW, 0, sizeof(float) * (c1 - c0) * HW);
    const int64_t j0 = n0 * PQ, j1 = n1 * PQ;
    const int64_t nc_max = min64(kNC, round_up(j1 - j0, kNR));
    Buffer bbuf(kb.kc * nc_max);
    Buffer packed_a(round_up(min64(Cg, c1 - c0) * RS, kMR) * Kg);
    for (int64_t gi = 0; gi < G; ++gi) {
      const int64_t lc0 = max64(c0, gi * Cg) - gi * Cg;
      const int64_t lc1 = min64(c1, (gi + 1) * Cg) - gi * Cg;
      if (lc0 >= lc1) continue;
      const int64_t rows = (lc1 - lc0) * RS;
      const int64_t rows_padded = round_up(rows, kMR);
      // A(i, k) = w[gi*Kg + k][lc0*RS + i]: W_g^T, which the weight holds transposed.
      pack_a_all_serial(w + gi * Kg * CRS + lc0 * RS, CRS, true, rows, Kg, kb, packed_a.get());
      auto pack_b = [&](int64_t k0, int64_t kc, int64_t jc, int64_t nc, float* dst) {
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t ncols = min64(kNR, nc - jr);
          float* panel = dst + jr * kc;
          for_each_image_segment(jc + jr, ncols, PQ, [&](int64_t n, int64_t pq, int64_t len,
                                                         int64_t off) {
            const float* src = dy + (n * g.K + gi * Kg + k0) * PQ + pq;
            for (int64_t kk = 0; kk < kc; ++kk) {
              float* d = panel + kk * kNR + off;
              const float* s = src + kk * PQ;
              for (int64_t u = 0; u < len; ++u) d[u] = s[u];
            }
          });
          if (ncols < kNR)
            for (int64_t kk = 0; kk < kc; ++kk)
              for (int64_t u = ncols; u < kNR; ++u) panel[kk * kNR + u] = 0.0f;
        }
      };
      auto sink = [&](int64_t i, int64_t j, int mr, int nr, int64_t kc, const float* pa,
                      const float* pb, bool, bool) {
        alignas(64) float tile[kMR * kNR];
        ukernel_to_tile(kc, pa, pb, tile);
        Run runs[kNR];
        int nruns = 0;
        for_each_run(j, nr, g.P, g.Q, [&](const Run& run) { runs[nruns++] = run; });
        Crs crs(lc0 * RS + i, g.R, g.S);
        for (int ii = 0; ii < mr; ++ii, crs.next(g.R, g.S)) {
          float* dxc = dx + (gi * Cg + crs.c) * HW;
          const int64_t ih_off = crs.r * g.dilation_h - g.pad_top;
          const int64_t off_w = crs.s * g.dilation_w - g.pad_left;
          for (int u = 0; u < nruns; ++u) {
            const Run& run = runs[u];
            const int64_t ih = run.p * g.stride_h + ih_off;
            if (ih < 0 || ih >= g.H) continue;
            scatter_add_run(dxc + run.n * g.C * HW + ih * g.W, tile + ii * kNR + run.off, run.q0,
                            run.len, lo[crs.s], hi[crs.s], g.stride_w, off_w);
          }
        }
      };
      blocked_gemm(Kg, kb, 0, rows, j0, j1, packed_a.get(), 0, rows_padded, nc_max, bbuf.get(),
                   pack_b, sink);
    }
  });
}

// ---- backward-weight -------------------------------------------------------------------------
namespace {

// Pixels per K block of the backward-weight GEMM (its reduction runs along the pixels): the A
// panel (MR x KC of dy) stays in L1, the B block (KC x NC of im2col(x)^T) in L2.
constexpr int64_t kKCW = 384;

// Packs dy_g rows [0, Kg), pixels [j0, j0 + kc) as A of the GEMM: row panels of MR rows,
// kcp x MR each (the MR values of one pixel adjacent), zero past Kg and past kc.
void pack_dy_panels(const float* dyg, const ConvGeom& g, int64_t Kg, int64_t j0, int64_t kc,
                    int64_t kcp, float* dst) {
  const int64_t PQ = g.P * g.Q;
  const int64_t panels = ceil_div(Kg, kMR);
  for (int64_t p = 0; p < panels; ++p) {
    float* d = dst + p * kcp * kMR;
    for (int64_t i = 0; i < kMR; ++i) {
      const int64_t k = p * kMR + i;
      if (k >= Kg) {
        for (int64_t u = 0; u < kcp; ++u) d[u * kMR + i] = 0.0f;
        continue;
      }
      for_each_image_segment(j0, kc, PQ, [&](int64_t n, int64_t pq, int64_t len, int64_t off) {
        const float* src = dyg + (n * g.K + k) * PQ + pq;
        float* dd = d + off * kMR + i;
        for (int64_t u = 0; u < len; ++u) dd[u * kMR] = src[u];
      });
      for (int64_t u = kc; u < kcp; ++u) d[u * kMR + i] = 0.0f;
    }
  }
}

// One B panel of the GEMM: im2col(x_g)^T for pixels [j0, j0 + kc) (the runs of that range) and
// im2col rows [t0, t0 + rows), rows <= NR: built as NR rows of kcp pixels in tmp (rows past
// `rows` and pixels past kc zero), then transposed block by block into dst (kcp x NR).
void pack_im2col_transposed(const float* xg, const Im2colRows& im2col, const Run* runs,
                            int64_t nruns, int64_t j0, int64_t kc, int64_t kcp, int64_t t0,
                            int64_t rows, float* tmp, float* dst) {
  const ConvGeom& g = im2col.g;
  const bool split = phase_split_applies(g);
  Crs crs(t0, g.R, g.S);
  for (int64_t t = 0; t < kNR;) {
    if (t >= rows) {
      for (int64_t u = 0; u < kcp; ++u) tmp[t * kcp + u] = 0.0f;
      ++t;
      continue;
    }
    const int64_t taps = rows_in_one_go(split, crs, rows - t, g.S);
    if (taps > 1) gather_stride2_taps(tmp + t * kcp, kcp, xg, g, crs, runs, nruns);
    else im2col.row(tmp + t * kcp, xg, crs, j0, kc, runs, nruns);
    for (int64_t e = 0; e < taps; ++e, ++t, crs.next(g.R, g.S))
      for (int64_t u = kc; u < kcp; ++u) tmp[t * kcp + u] = 0.0f;
  }
  for (int64_t tb = 0; tb < kNR; tb += kTB)
    for (int64_t jb = 0; jb < kcp; jb += kTB)
      transpose_block(tmp + tb * kcp + jb, kcp, dst + jb * kNR + tb, kNR);
}

// dW_g (Kg x CRS, row stride CRS) columns [c0, c1) of group gi, summed over pixels [q0, q1):
// GEMM with M = Kg, N = the im2col rows, K = the pixels, in K blocks of up to kKCW pixels (the
// first block stores, the others add), with thread-private buffers.
struct WeightBuffers {
  Buffer a, b, tmp;
  BufferOf<Run> runs;
};

void backward_weight_gemm(float* out, const float* dy, const float* x, const Im2colRows& im2col,
                          int64_t gi, int64_t c0, int64_t c1, int64_t q0, int64_t q1,
                          WeightBuffers& buf) {
  const ConvGeom& g = im2col.g;
  const int64_t Cg = g.C / g.G, Kg = g.K / g.G;
  const float* xg = x + gi * Cg * g.H * g.W;
  const float* dyg = dy + gi * Kg * g.P * g.Q;
  const KBlocks kb(q1 - q0, kKCW);
  for (int64_t bk = 0; bk < kb.count; ++bk) {
    const int64_t j0 = q0 + kb.begin(bk);
    const int64_t kc = kb.size(bk, q1 - q0);
    const int64_t kcp = round_up(kc, kTB);
    pack_dy_panels(dyg, g, Kg, j0, kc, kcp, buf.a.get());
    const int64_t nruns = im2col.runs_of(j0, kc, buf.runs.get());
    TileEpilogue e;
    e.beta = bk == 0 ? 0.0f : 1.0f;
    for (int64_t jc = c0; jc < c1; jc += kNC) {
      const int64_t nc = min64(kNC, c1 - jc);
      for (int64_t jr = 0; jr < nc; jr += kNR)
        pack_im2col_transposed(xg, im2col, buf.runs.get(), nruns, j0, kc, kcp, jc + jr,
                               min64(kNR, nc - jr), buf.tmp.get(), buf.b.get() + jr * kcp);
      for (int64_t ir = 0; ir < Kg; ir += kMR) {
        const int mr = static_cast<int>(min64(kMR, Kg - ir));
        for (int64_t jr = 0; jr < nc; jr += kNR)
          ukernel(kcp, buf.a.get() + ir * kcp, buf.b.get() + jr * kcp,
                  out + ir * (Cg * g.R * g.S) + jc + jr, Cg * g.R * g.S, mr,
                  static_cast<int>(min64(kNR, nc - jr)), e);
      }
    }
  }
}

// The dot-kernel form of the same sum, for few output channels (Kg) or few im2col rows, where
// packing transposed B panels costs more than it saves: dW_g[k, crs] for crs tiles [u0, u1) of
// kDNR rows, over pixels [q0, q1), into out (row stride CRS). Pixels go in chunks of up to
// kChunk: per chunk dy is copied into a zero-padded buffer and im2col built kDNR rows at a
// time, each reused by every row of dy; both are read as rows (no transposition).
constexpr int64_t kChunk = 512;

void backward_weight_dot(float* out, const float* dy, const float* x, const Im2colRows& im2col,
                         int64_t gi, int64_t u0, int64_t u1, int64_t q0, int64_t q1,
                         WeightBuffers& buf) {
  const ConvGeom& g = im2col.g;
  float* dybuf = buf.a.get();
  float* colbuf = buf.b.get();
  const int64_t Cg = g.C / g.G, Kg = g.K / g.G;
  const int64_t CRS = Cg * g.R * g.S;
  const int64_t HW = g.H * g.W;
  const int64_t PQ = g.P * g.Q;
  const float* xg = x + gi * Cg * HW;
  const int64_t chunks = ceil_div(q1 - q0, kChunk);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t a = q0 + (q1 - q0) * ch / chunks;  // balanced chunks
    const int64_t len = q0 + (q1 - q0) * (ch + 1) / chunks - a;
    const int64_t ld = round_up(len, V::W);
    for_each_image_segment(a, len, PQ, [&](int64_t n, int64_t pq, int64_t seg, int64_t off) {
      const float* src = dy + (n * g.K + gi * Kg) * PQ + pq;
      for (int64_t k = 0; k < Kg; ++k)
        std::memcpy(dybuf + k * ld + off, src + k * PQ, sizeof(float) * seg);
    });
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t t = len; t < ld; ++t) dybuf[k * ld + t] = 0.0f;
    const int64_t nruns = im2col.runs_of(a, len, buf.runs.get());
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t crs0 = u * kDNR;
      const int rows = static_cast<int>(min64(kDNR, CRS - crs0));
      Crs crs(crs0, g.R, g.S);
      for (int i = 0; i < rows; ++i, crs.next(g.R, g.S)) {
        float* d = colbuf + i * ld;
        im2col.row(d, xg, crs, a, len, buf.runs.get(), nruns);
        for (int64_t t = len; t < ld; ++t) d[t] = 0.0f;
      }
      const float* brow[kDNR];
      for (int jj = 0; jj < kDNR; ++jj) brow[jj] = colbuf + min64(jj, rows - 1) * ld;
      for (int64_t k = 0; k < Kg; k += kDMR) {
        const int mr = static_cast<int>(min64(kDMR, Kg - k));
        const float* arow[kDMR];
        for (int ii = 0; ii < kDMR; ++ii) arow[ii] = dybuf + (k + min64(ii, mr - 1)) * ld;
        dot_tile(ld, arow, brow, out + k * CRS + crs0, CRS, mr, rows, /*accumulate=*/ch > 0);
      }
    }
  }
}

}  // namespace

void conv2d_backward_weight_im2col(float* dw, const float* dy, const float* x,
                                   const ConvGeom& g) {
  const int64_t G = g.G, Cg = g.C / G, Kg = g.K / G;
  const int64_t CRS = Cg * g.R * g.S;
  const int64_t pixels = g.N * g.P * g.Q;
  const Im2colRows im2col(g);
  // The broadcast GEMM needs enough rows (Kg) to pay for transposing its B panels, and enough
  // im2col rows to fill them; else dot kernels. Measured on the benchmark shapes (two threads):
  // with im2col rows gathered run by run the GEMM wins from Kg = 128 on, the dot form below;
  // with shifted-plane rows from Kg = 32 on (Kg = 64: mnist_c2 1.95 ms vs 2.15, dilated 7.3
  // vs 8.1).
  const bool gemm_form = Kg >= (im2col.sp.applies ? 32 : 96) && CRS >= 2 * kNR;
  const int64_t unit = gemm_form ? kNR : kDNR;  // columns of dW per unit of work
  const int64_t units = ceil_div(CRS, unit);    // per group
  const int threads = conv_threads(g.K * CRS * pixels);
  // Threads own disjoint columns of dW when there are enough (each element is then summed in
  // the same order for any thread count); else each sums its share of the pixels into a
  // private dW, and the private copies are added in thread order. The GEMM form also splits the
  // pixels when dW is small (a private copy stays in L2 and adding them is cheap) and there
  // are many pixels: split by columns, every thread would pack all of dy (two threads, ms,
  // pixels / columns: mnist_c2 1.8 / 2.1, dilated 6.7 / 7.4, pointwise 3.8 / 4.1; strided,
  // 147K weights, 7.2 / 7.0).
  const int64_t wsize = g.K * CRS;
  const bool small_dw = gemm_form && wsize <= 64 * 1024 && pixels >= 4 * kKCW * threads;
  const bool split_columns =
      threads == 1 || (!small_dw && G * units >= (gemm_form ? 2 : 4) * threads);
  Buffer partial(split_columns ? 0 : threads * wsize);

  run_team(threads, [&](int t, int nt) {
    WeightBuffers buf;
    const int64_t len_max = round_up(min64(gemm_form ? kKCW : kChunk, pixels), kTB * V::W);
    if (gemm_form) {
      buf.a.reset(round_up(Kg, kMR) * len_max);
      buf.b.reset(min64(kNC, round_up(CRS, kNR)) * len_max);
      buf.tmp.reset(kNR * len_max);
      buf.runs.reset(len_max + 1);
    } else {
      buf.a.reset(Kg * len_max);    // dy chunk
      buf.b.reset(kDNR * len_max);  // im2col rows
      buf.runs.reset(len_max + 1);
    }
    // Columns [c0, c1) (multiples of the unit) of group gi over pixels [q0, q1) into out.
    auto run = [&](float* out, int64_t gi, int64_t c0, int64_t c1, int64_t q0, int64_t q1) {
      if (gemm_form)
        backward_weight_gemm(out, dy, x, im2col, gi, c0, c1, q0, q1, buf);
      else
        backward_weight_dot(out, dy, x, im2col, gi, c0 / kDNR, ceil_div(c1, kDNR), q0, q1, buf);
    };
    if (split_columns) {
      int64_t u0, u1;
      split_range(G * units, nt, t, u0, u1);
      for (int64_t gi = u0 / units; gi < G && gi * units < u1; ++gi) {
        const int64_t a = max64(u0, gi * units) - gi * units;
        const int64_t b = min64(u1, (gi + 1) * units) - gi * units;
        run(dw + gi * Kg * CRS, gi, a * unit, min64(b * unit, CRS), 0, pixels);
      }
      return;
    }
    float* mine = partial.get() + t * wsize;
    int64_t q0, q1;
    split_range(pixels, nt, t, q0, q1);
    if (q0 >= q1) {
      std::memset(mine, 0, sizeof(float) * wsize);
    } else {
      for (int64_t gi = 0; gi < G; ++gi) run(mine + gi * Kg * CRS, gi, 0, CRS, q0, q1);
    }
    auto reduce = [&](int64_t e) {
      float s = partial[e];
      for (int u = 1; u < nt; ++u) s += partial[u * wsize + e];
      dw[e] = s;
    };
    if (nt > 1) {
#pragma omp barrier
#pragma omp for schedule(static)
      for (int64_t e = 0; e < wsize; ++e) reduce(e);
    } else {
      for (int64_t e = 0; e < wsize; ++e) reduce(e);
    }
  });
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
