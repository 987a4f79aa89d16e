// The softmax and log_softmax kernels of softmax.h, written once and compiled once per ISA path:
// softmax.cpp (baseline), softmax_avx2.cpp and softmax_avx512.cpp include this file, each inside
// its own namespace pyengine::cpu::PYENGINE_ISA_NS, and export their entry points as a
// SoftmaxKernels table that softmax.cpp picks from at run time. The loops are exp-heavy, so the
// wider paths pay (the exp of vec_math.h vectorises at each path's width).
//
// Shape letters (as in softmax.h): the tensor is (B, D, I) around the softmax dimension, B the
// dimensions before it, D its length, I those after it; element (b, d, i) at (b*D + d)*I + i.
//   I == 1  the D values of one softmax are contiguous: row kernels, rows in parallel.
//   I > 1   they lie I apart: column kernels take a block of up to W columns of one b and
//           sweep its D rows, each row of the block contiguous, so the vector lanes run across
//           i (a strided walk per column would load one float per cache line).
//
// Numerics (the reference is pyengine/backends/numpy_ref/softmax.py):
// - The max is subtracted before exp, so logits of 1e4 stay finite.
// - Sums accumulate in float32, one partial sum per vector lane (see row_sum), in an order that
//   does not depend on the thread count: results are bitwise reproducible.
// - NaN: whether or not the vectorised max keeps a NaN, exp(NaN - m) is NaN and poisons the
//   sum, so the whole softmax becomes NaN, as numpy's does. A max of +inf (inf - inf) and a row
//   of -inf (-inf - -inf) give NaN the same way, again like numpy.
// - log_softmax computes (x - m) - log(s), not x - (m + log s): next to an outlier of 1e4 the
//   sum m + log s would be rounded to a float spacing of 1e-3.
#pragma once

#include <cmath>
#include <limits>

#include "cpu/parallel.h"
#include "cpu/softmax_isa.h"
#include "cpu/vec_math.h"

namespace pyengine::cpu {
namespace PYENGINE_ISA_NS {
namespace {

// Columns per block of the column kernels: the block of x and y (2 * D * W floats) should stay
// in a 256 KiB L2, but at least 16 columns so that the vector lanes are full.
constexpr int64_t kMaxColumnBlock = 1024;

int64_t column_block(int64_t D, int64_t I) {
  int64_t w = (32768 / D) / 16 * 16;
  w = w < 16 ? 16 : (w > kMaxColumnBlock ? kMaxColumnBlock : w);
  return w < I ? w : I;
}

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

void softmax_row(float* __restrict y, const float* __restrict x, int64_t D) {
  const float m = row_max(x, D);
  const float s = row_sum(D, [&](int64_t i) {
    const float e = exp_approx(x[i] - m);
    y[i] = e;
    return e;
  });
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < D; ++i) y[i] *= inv;
}

void log_softmax_row(float* __restrict y, const float* __restrict x, int64_t D) {
  const float m = row_max(x, D);
  const float s = row_sum(D, [&](int64_t i) { return exp_approx(x[i] - m); });
  const float lse = std::log(s);
  for (int64_t i = 0; i < D; ++i) y[i] = (x[i] - m) - lse;
}

void softmax_backward_row(float* __restrict dx, const float* __restrict y,
                          const float* __restrict dy, int64_t D) {
  const float dot = row_sum(D, [&](int64_t i) { return dy[i] * y[i]; });
  for (int64_t i = 0; i < D; ++i) dx[i] = y[i] * (dy[i] - dot);
}

void log_softmax_backward_row(float* __restrict dx, const float* __restrict y,
                              const float* __restrict dy, int64_t D) {
  const float s = row_sum(D, [&](int64_t i) { return dy[i]; });
  for (int64_t i = 0; i < D; ++i) dx[i] = dy[i] - exp_approx(y[i]) * s;
}

// ---- I > 1: W columns i0..i0+W of one b; row d of the block starts at base + d*I ---------

void softmax_columns(float* __restrict y, const float* __restrict x, int64_t D, int64_t I,
                     int64_t W, bool log) {
  float m[kMaxColumnBlock];
  float s[kMaxColumnBlock];
  for (int64_t j = 0; j < W; ++j) m[j] = -std::numeric_limits<float>::infinity();
  for (int64_t d = 0; d < D; ++d) {
    const float* __restrict xr = x + d * I;
    for (int64_t j = 0; j < W; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  for (int64_t j = 0; j < W; ++j) s[j] = 0.0f;
  if (log) {
    for (int64_t d = 0; d < D; ++d) {
      const float* __restrict xr = x + d * I;
      for (int64_t j = 0; j < W; ++j) s[j] += exp_approx(xr[j] - m[j]);
    }
    for (int64_t j = 0; j < W; ++j) s[j] = std::log(s[j]);
    for (int64_t d = 0; d < D; ++d) {
      const float* __restrict xr = x + d * I;
      float* __restrict yr = y + d * I;
      for (int64_t j = 0; j < W; ++j) yr[j] = (xr[j] - m[j]) - s[j];
    }
  } else {
    for (int64_t d = 0; d < D; ++d) {
      const float* __restrict xr = x + d * I;
      float* __restrict yr = y + d * I;
      for (int64_t j = 0; j < W; ++j) {
        const float e = exp_approx(xr[j] - m[j]);
        yr[j] = e;
        s[j] += e;
      }
    }
    for (int64_t j = 0; j < W; ++j) s[j] = 1.0f / s[j];
    for (int64_t d = 0; d < D; ++d) {
      float* __restrict yr = y + d * I;
      for (int64_t j = 0; j < W; ++j) yr[j] *= s[j];
    }
  }
}

void softmax_backward_columns(float* __restrict dx, const float* __restrict y,
                              const float* __restrict dy, int64_t D, int64_t I, int64_t W,
                              bool log) {
  float s[kMaxColumnBlock];
  for (int64_t j = 0; j < W; ++j) s[j] = 0.0f;
  for (int64_t d = 0; d < D; ++d) {
    const float* __restrict yr = y + d * I;
    const float* __restrict dyr = dy + d * I;
    if (log) {
      for (int64_t j = 0; j < W; ++j) s[j] += dyr[j];
    } else {
      for (int64_t j = 0; j < W; ++j) s[j] += dyr[j] * yr[j];
    }
  }
  for (int64_t d = 0; d < D; ++d) {
    const float* __restrict yr = y + d * I;
    const float* __restrict dyr = dy + d * I;
    float* __restrict dxr = dx + d * I;
    if (log) {
      for (int64_t j = 0; j < W; ++j) dxr[j] = dyr[j] - exp_approx(yr[j]) * s[j];
    } else {
      for (int64_t j = 0; j < W; ++j) dxr[j] = yr[j] * (dyr[j] - s[j]);
    }
  }
}

// ---- drivers: split the work into independent tasks (rows, or blocks of columns) ----------
// Tasks are handed out dynamically: each writes only its own outputs, so results do not depend
// on the thread that runs it, and a thread the OS preempts holds up only its current task.

void forward(float* y, const float* x, int64_t B, int64_t D, int64_t I, bool log) {
  [[maybe_unused]] const int nt = num_threads();  // unused without OpenMP
  if (I == 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16) if (worth_parallel(B * D))
    for (int64_t b = 0; b < B; ++b) {
      if (log) log_softmax_row(y + b * D, x + b * D, D);
      else softmax_row(y + b * D, x + b * D, D);
    }
    return;
  }
  const int64_t W = column_block(D, I);
  const int64_t blocks = (I + W - 1) / W;
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(B * D * I))
  for (int64_t task = 0; task < B * blocks; ++task) {
    const int64_t b = task / blocks;
    const int64_t i0 = (task % blocks) * W;
    const int64_t offset = b * D * I + i0;
    softmax_columns(y + offset, x + offset, D, I, (I - i0 < W ? I - i0 : W), log);
  }
}

void backward(float* dx, const float* y, const float* dy, int64_t B, int64_t D, int64_t I,
              bool log) {
  [[maybe_unused]] const int nt = num_threads();  // unused without OpenMP
  if (I == 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16) if (worth_parallel(B * D))
    for (int64_t b = 0; b < B; ++b) {
      if (log) log_softmax_backward_row(dx + b * D, y + b * D, dy + b * D, D);
      else softmax_backward_row(dx + b * D, y + b * D, dy + b * D, D);
    }
    return;
  }
  const int64_t W = column_block(D, I);
  const int64_t blocks = (I + W - 1) / W;
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(B * D * I))
  for (int64_t task = 0; task < B * blocks; ++task) {
    const int64_t b = task / blocks;
    const int64_t i0 = (task % blocks) * W;
    const int64_t offset = b * D * I + i0;
    softmax_backward_columns(dx + offset, y + offset, dy + offset, D, I,
                             (I - i0 < W ? I - i0 : W), log);
  }
}

}  // namespace

// The entry points of this ISA path (declared in softmax_isa.h).
const SoftmaxKernels kSoftmaxKernels = {forward, backward};

}  // namespace PYENGINE_ISA_NS
}  // namespace pyengine::cpu
