// The softmax and log_softmax kernels of softmax.h, written once and compiled once per ISA path:
// softmax.cpp (baseline), softmax_avx2.cpp and softmax_avx512.cpp include this file, each inside
// its own namespace pyengine::cpu::PYENGINE_ISA_NS, and export their entry points as a
// SoftmaxKernels table that softmax.cpp picks from at run time. The loops are exp-heavy, so the
// wider paths pay (the exp of vec_math.h vectorises at each path's width).
//
// Shape letters (as in softmax.h): the tensor is (B, D, I) around the softmax dimension, B the
// dimensions before it, D its length, I those after it; element (b, d, i) at (b*D + d)*I + i.
//   I == 1  the D values of one softmax are contiguous: row kernels, rows in parallel.
//   I > 1   they lie I apart: column kernels take a block of W columns of one b and sweep
//           its D rows a chunk of columns at a time, each row of a chunk contiguous, so the
//           vector lanes run across i (a strided walk per column would load one float per
//           cache line).
//
// Numerics (the reference is pyengine/backends/numpy_ref/softmax.py):
// - The max is subtracted before exp, so logits of 1e4 stay finite.
// - Sums accumulate in float32, one partial sum per vector lane (see row_sum), in an order that
//   does not depend on the thread count: results are bitwise reproducible.
// - NaN: whether or not the vectorised max keeps a NaN, exp(NaN - m) is NaN and poisons the
//   sum, so the whole softmax becomes NaN, as numpy's does. A max of +inf (inf - inf) and a row
//   of -inf (-inf - -inf) give NaN the same way, again like numpy.
// - log_softmax computes (x - m) - log(s), not x - (m + log s): next to an outlier of 1e4 the
//   sum m + log s would be rounded to a float spacing of 1e-3. log is vec_math.h's, which
//   vectorises: libm's, one call per column, cost the column kernel a third of its time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cpu/parallel.h"
#include "cpu/softmax_isa.h"
#include "cpu/vec_math.h"

namespace pyengine::cpu {
namespace PYENGINE_ISA_NS {
namespace {

// Columns per chunk of the column kernels (see there): 512 bytes of each of the D rows, so
// that a chunk's D x kChunk inputs (11 KB at D = 21) stay in L1 between its sweeps. The
// softmax backward, whose sweeps do no exp, goes faster with longer runs per row: it reads its
// chunks again from L2. Measured on 8 x 21 x 112 x 112 (AVX-512, 2 threads, ms):
//   columns per chunk        64     128    256    512
//   softmax forward         0.42   0.42   0.44   0.47
//   softmax backward        0.49   0.47   0.48   0.43
//   log_softmax forward     0.51   0.53   0.56   0.53   (before its exp sweep wrote y)
//   log_softmax backward    0.75   0.45   0.46   0.49
constexpr int64_t kChunk = 128;
constexpr int64_t kWideChunk = 512;

// Reductions are `omp simd` loops (-fopenmp-simd is on even without OpenMP): the pragma lets
// the compiler keep one partial result per vector lane, which it may not do for a plain float
// loop without -ffast-math. The order of the additions is thus fixed by the ISA path's vector
// width, never by the thread count.
float row_max(const float* __restrict x, int64_t D) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < D; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// sum over i < n of term(i); term may also store.
template <class Term>
float row_sum(int64_t n, Term term) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += term(i);
  return s;
}

// ---- I == 1: one contiguous row of D values ----------------------------------------------
//
// The compiler runs the last D % (vector width) elements of a loop as scalar code, where each
// exp costs as much as a vector of 16: for D = 1000 those 8 exps add 11% to a row's. So exp
// loops stop at a multiple of kTail and send the rest through exp_tail, which pads them to a
// whole block that vectorises.

// Lanes of exp_tail's block: a multiple of every path's vector width.
constexpr int64_t kTail = 16;

// e[k] = exp(x[k] - shift) for k < count (count <= kTail); e[count..kTail) = 0, the exp of the
// -inf they are padded with, so e can be summed whole. kNonpositive: every x[k] - shift is <= 0
// (x less its maximum), so the cheaper exp_nonpositive applies.
template <bool kNonpositive>
void exp_tail(float* __restrict e, const float* __restrict x, float shift, int64_t count) {
  for (int64_t k = 0; k < kTail; ++k)
    e[k] = k < count ? x[k] - shift : -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < kTail; ++k)
    e[k] = kNonpositive ? exp_nonpositive(e[k]) : exp_approx(e[k]);
}

// sum over i < D of exp(x[i] - m), m the row's maximum, so x[i] - m <= 0 (or NaN) and
// exp_nonpositive applies. It also writes y[i], with what the row's last sweep needs:
// exp(x[i] - m) for the softmax, x[i] - m for log_softmax (the sweep that writes y first pays
// for fetching its lines, which the exps here hide).
template <bool kLog>
float exp_sum(float* __restrict y, const float* __restrict x, float m, int64_t D) {
  const int64_t body = D - D % kTail;
  const float s = row_sum(body, [&](int64_t i) {
    const float t = x[i] - m, e = exp_nonpositive(t);
    y[i] = kLog ? t : e;
    return e;
  });
  if (body == D) return s;
  float e[kTail];
  exp_tail<true>(e, x + body, m, D - body);
  for (int64_t k = 0; k < D - body; ++k) y[body + k] = kLog ? x[body + k] - m : e[k];
  return s + row_sum(kTail, [&](int64_t k) { return e[k]; });
}

void softmax_row(float* __restrict y, const float* __restrict x, int64_t D) {
  const float m = row_max(x, D);
  const float inv = 1.0f / exp_sum<false>(y, x, m, D);
  for (int64_t i = 0; i < D; ++i) y[i] *= inv;
}

void log_softmax_row(float* __restrict y, const float* __restrict x, int64_t D) {
  const float m = row_max(x, D);
  const float lse = log_approx(exp_sum<true>(y, x, m, D));
  for (int64_t i = 0; i < D; ++i) y[i] -= lse;
}

void softmax_backward_row(float* __restrict dx, const float* __restrict y,
                          const float* __restrict dy, int64_t D) {
  const float dot = row_sum(D, [&](int64_t i) { return dy[i] * y[i]; });
  for (int64_t i = 0; i < D; ++i) dx[i] = y[i] * (dy[i] - dot);
}

// dx[i] = dy[i] - exp(y[i]) * s(i) for i < n: log_softmax's backward on a contiguous run. y is
// a log_softmax output, <= 0 up to rounding, so exp_nonpositive serves; but y is the caller's,
// so its largest value is tracked on the way, and a run holding one beyond exp_nonpositive's
// range (no log-probability is) is computed again with the general exp.
template <class Scale>
void log_softmax_dx(float* __restrict dx, const float* __restrict y, const float* __restrict dy,
                    int64_t n, Scale s) {
  float y_max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : y_max)
  for (int64_t i = 0; i < n; ++i) {
    dx[i] = dy[i] - exp_nonpositive(y[i]) * s(i);
    y_max = y[i] > y_max ? y[i] : y_max;
  }
  if (y_max <= kExpNonpositiveMax) return;
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] - exp_approx(y[i]) * s(i);
}

void log_softmax_backward_row(float* __restrict dx, const float* __restrict y,
                              const float* __restrict dy, int64_t D) {
  const float s = row_sum(D, [&](int64_t i) { return dy[i]; });
  const int64_t body = D - D % kTail;
  log_softmax_dx(dx, y, dy, body, [s](int64_t) { return s; });
  if (body == D) return;
  float e[kTail];
  exp_tail<false>(e, y + body, 0.0f, D - body);
  for (int64_t k = 0; k < D - body; ++k) dx[body + k] = dy[body + k] - e[k] * s;
}

// ---- I > 1: W columns i0..i0+W of one b; row d of the block starts at base + d*I ---------
//
// The block is swept in chunks of kChunk columns, all D rows of a chunk before the next one:
// the vector lanes run across the chunk's columns (contiguous in memory), and the sweeps after
// the first re-read the chunk from cache, so each input is read from memory once and each
// output written once. The column-wise reductions add in the order d = 0, 1, ..., whatever the
// chunking: results do not depend on it.

template <bool kLog>
void softmax_columns(float* __restrict y, const float* __restrict x, int64_t D, int64_t I,
                     int64_t W) {
  for (int64_t j0 = 0; j0 < W; j0 += kChunk) {
    const int64_t n = W - j0 < kChunk ? W - j0 : kChunk;
    const float* __restrict xc = x + j0;
    float* __restrict yc = y + j0;
    float m[kChunk], s[kChunk];
    for (int64_t j = 0; j < n; ++j) m[j] = -std::numeric_limits<float>::infinity();
    for (int64_t d = 0; d < D; ++d) {
      const float* __restrict xr = xc + d * I;
      for (int64_t j = 0; j < n; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
    }
    for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
    if constexpr (kLog) {
      // x - m goes to y on the exp sweep, as in exp_sum.
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict xr = xc + d * I;
        float* __restrict yr = yc + d * I;
        for (int64_t j = 0; j < n; ++j) {
          const float t = xr[j] - m[j];
          yr[j] = t;
          s[j] += exp_nonpositive(t);
        }
      }
      for (int64_t j = 0; j < n; ++j) s[j] = log_approx(s[j]);
      for (int64_t d = 0; d < D; ++d) {
        float* __restrict yr = yc + d * I;
        for (int64_t j = 0; j < n; ++j) yr[j] -= s[j];
      }
    } else {
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict xr = xc + d * I;
        float* __restrict yr = yc + d * I;
        for (int64_t j = 0; j < n; ++j) {
          const float e = exp_nonpositive(xr[j] - m[j]);
          yr[j] = e;
          s[j] += e;
        }
      }
      for (int64_t j = 0; j < n; ++j) s[j] = 1.0f / s[j];
      for (int64_t d = 0; d < D; ++d) {
        float* __restrict yr = yc + d * I;
        for (int64_t j = 0; j < n; ++j) yr[j] *= s[j];
      }
    }
  }
}

template <bool kLog>
void softmax_backward_columns(float* __restrict dx, const float* __restrict y,
                              const float* __restrict dy, int64_t D, int64_t I, int64_t W) {
  constexpr int64_t chunk = kLog ? kChunk : kWideChunk;
  for (int64_t j0 = 0; j0 < W; j0 += chunk) {
    const int64_t n = W - j0 < chunk ? W - j0 : chunk;
    const float* __restrict yc = y + j0;
    const float* __restrict dyc = dy + j0;
    float* __restrict dxc = dx + j0;
    float s[kWideChunk];
    for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
    if constexpr (kLog) {
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict dyr = dyc + d * I;
        for (int64_t j = 0; j < n; ++j) s[j] += dyr[j];
      }
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict yr = yc + d * I;
        const float* __restrict dyr = dyc + d * I;
        float* __restrict dxr = dxc + d * I;
        log_softmax_dx(dxr, yr, dyr, n, [&s](int64_t j) { return s[j]; });
      }
    } else {
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict yr = yc + d * I;
        const float* __restrict dyr = dyc + d * I;
        for (int64_t j = 0; j < n; ++j) s[j] += dyr[j] * yr[j];
      }
      for (int64_t d = 0; d < D; ++d) {
        const float* __restrict yr = yc + d * I;
        const float* __restrict dyr = dyc + d * I;
        float* __restrict dxr = dxc + d * I;
        for (int64_t j = 0; j < n; ++j) dxr[j] = yr[j] * (dyr[j] - s[j]);
      }
    }
  }
}

// ---- drivers: split the work into independent tasks ----------------------------------------
//
// A task is a contiguous stretch of the tensor: whole softmaxes b0..b1 (all their I columns),
// or, when there are too few of them for the threads, columns i0..i1 of one b. About 4 tasks
// per thread, no more: measured on 8 x 21 x 112 x 112 (softmax backward, 2 threads), one task
// per b takes 0.41 ms where tasks of 1024 columns take 0.49 ms (neighbouring tasks run on
// different cores, so each core's prefetcher fetches lines that the other core's task then
// needs). Tasks are handed out dynamically: each writes only its own outputs, so results do not
// depend on the thread that runs it, and a thread the OS preempts holds up only its current
// task.
template <class Fn>
void for_each_task(int64_t B, int64_t D, int64_t I, Fn fn) {
  const int64_t nt = num_threads();
  const int64_t want = 4 * nt;
  // Splitting a b into blocks of whole chunks, or grouping whole bs.
  const int64_t chunks = (I + kChunk - 1) / kChunk;
  const int64_t blocks = B >= want ? 1 : std::min(chunks, (want + B - 1) / B);
  const int64_t width = (chunks + blocks - 1) / blocks * kChunk;  // columns per block
  const int64_t group = B >= want ? (B + want - 1) / want : 1;     // bs per task
  const int64_t tasks = blocks > 1 ? B * ((I + width - 1) / width) : (B + group - 1) / group;
  [[maybe_unused]] const int threads = static_cast<int>(nt);  // unused without OpenMP
#pragma omp parallel for num_threads(threads) schedule(dynamic) if (worth_parallel(B * D * I))
  for (int64_t t = 0; t < tasks; ++t) {
    if (blocks > 1) {
      const int64_t per_b = (I + width - 1) / width;
      const int64_t b = t / per_b, i0 = (t % per_b) * width;
      fn(b, i0, std::min(I, i0 + width));
    } else {
      for (int64_t b = t * group; b < std::min(B, (t + 1) * group); ++b) fn(b, 0, I);
    }
  }
}

// kLog is a template parameter so that each kernel's loops hold no branch: tested inside the
// chunk loop, the flag cost the column kernels 10%.
template <bool kLog>
void forward_as(float* y, const float* x, int64_t B, int64_t D, int64_t I) {
  for_each_task(B, D, I, [&](int64_t b, int64_t i0, int64_t i1) {
    const int64_t offset = b * D * I + i0;
    if (I > 1) softmax_columns<kLog>(y + offset, x + offset, D, I, i1 - i0);
    else if constexpr (kLog) log_softmax_row(y + offset, x + offset, D);
    else softmax_row(y + offset, x + offset, D);
  });
}

template <bool kLog>
void backward_as(float* dx, const float* y, const float* dy, int64_t B, int64_t D, int64_t I) {
  for_each_task(B, D, I, [&](int64_t b, int64_t i0, int64_t i1) {
    const int64_t offset = b * D * I + i0;
    if (I > 1) softmax_backward_columns<kLog>(dx + offset, y + offset, dy + offset, D, I, i1 - i0);
    else if constexpr (kLog) log_softmax_backward_row(dx + offset, y + offset, dy + offset, D);
    else softmax_backward_row(dx + offset, y + offset, dy + offset, D);
  });
}

void forward(float* y, const float* x, int64_t B, int64_t D, int64_t I, bool log) {
  if (log) forward_as<true>(y, x, B, D, I);
  else forward_as<false>(y, x, B, D, I);
}

void backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D, int64_t I,
              bool log) {
  if (log) backward_as<true>(dx, y, dy, B, D, I);
  else backward_as<false>(dx, y, dy, B, D, I);
}

}  // namespace

// The entry points of this ISA path (declared in softmax_isa.h).
const SoftmaxKernels kSoftmaxKernels = {forward, backward};

}  // namespace PYENGINE_ISA_NS
}  // namespace pyengine::cpu
