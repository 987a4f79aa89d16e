// The loss kernels of loss.h, written once and compiled once per ISA path: loss.cpp (baseline),
// loss_avx2.cpp and loss_avx512.cpp include this file, each inside its own namespace
// pyengine::cpu::PYENGINE_ISA_NS, and export their entry points as a LossKernels table that
// loss.cpp picks from at run time. The row loops are exp-heavy, so the wider paths pay here.
//
// Shape letters (as in loss.h): M rows, C classes, n elements of an element-wise loss.
//
// A row of logits x is handled as m = max_c x[c] and log_s = log(sum_c exp(x[c] - m)), so that
// lse = m + log_s and logp[c] = (x[c] - m) - log_s: every large term cancels before it is
// rounded, and logits of 1e4 keep full precision. Row sums accumulate in double.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/loss_isa.h"
#include "cpu/parallel.h"
#include "cpu/vec_math.h"

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

// NaN logits are skipped here but reach the sum below through exp(NaN - m), which makes the
// row NaN, as the reference's is.
float row_max(const float* __restrict x, int64_t C) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

double row_sum_exp(const float* __restrict x, int64_t C, float m) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; ++c) s += static_cast<double>(exp_nonpositive(x[c] - m));
  return s;
}

// sum_c w[c] * (x[c] - m), w = 1 when null; in double, where x[c] - m is exact.
double row_weighted_offsets(const float* __restrict x, const float* __restrict w, int64_t C,
                            float m) {
  const double md = m;
  double s = 0.0;
  if (w == nullptr) {
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(x[c]) - md;
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(w[c]) * (static_cast<double>(x[c]) - md);
  }
  return s;
}

struct RowLse {
  float m;
  double log_s;
  double lse() const { return static_cast<double>(m) + log_s; }
};

RowLse row_lse(const float* x, int64_t C) {
  const float m = row_max(x, C);
  return {m, std::log(row_sum_exp(x, C, m))};
}

double weight_sum(const float* weight, int64_t C) {
  if (weight == nullptr) return static_cast<double>(C);
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) s += weight[c];
  return s;
}

// Runs fn(r) for every row. Rows are handed out dynamically (16 at a time): fn writes only row
// r's own outputs, so the result does not depend on the thread that runs it, and a thread the
// OS preempts holds up only its current rows.
template <class Fn>
void for_each_row(int64_t M, int64_t work, Fn fn) {
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16) if (worth_parallel(work))
  for (int64_t r = 0; r < M; ++r) fn(r);
}

// Sum of v[0..n) in index order: the value does not depend on how rows were split.
double ordered_sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

// Writes the reduced loss: per-row values for 'none', else their sum or their sum / denom.
void write_loss(float* loss, const std::vector<double>& rows, Reduction red, double denom) {
  if (red == Reduction::none) {
    for (size_t r = 0; r < rows.size(); ++r) loss[r] = static_cast<float>(rows[r]);
    return;
  }
  const double total = ordered_sum(rows);
  // 0 / 0 (every row ignored) is NaN, as in PyTorch.
  loss[0] = static_cast<float>(red == Reduction::sum ? total : total / denom);
}

// d(reduced loss) / d(row r's loss), before ignored rows are zeroed.
inline double upstream(const float* dloss, Reduction red, int64_t r, double denom) {
  if (red == Reduction::none) return dloss[r];
  if (red == Reduction::sum) return dloss[0];
  return static_cast<double>(dloss[0]) / denom;
}

inline bool is_valid(int64_t t, const LossOptions& o) { return t != o.ignore_index; }

inline double class_weight(const float* weight, int64_t t) {
  return weight == nullptr ? 1.0 : static_cast<double>(weight[t]);
}

// Total weight of the non-ignored rows: the denominator of 'mean' for class-index targets.
double valid_weight(const int64_t* target, const float* weight, int64_t M, const LossOptions& o) {
  double s = 0.0;
  for (int64_t r = 0; r < M; ++r)
    if (is_valid(target[r], o)) s += class_weight(weight, target[r]);
  return s;
}

// ---- cross-entropy: forward ------------------------------------------------------------------

void cross_entropy_forward_index(float* loss, double* lse, const float* logits,
                                 const int64_t* target, const float* weight, int64_t M,
                                 int64_t C, const LossOptions& o) {
  const double ls = o.label_smoothing;
  const double sum_w = weight_sum(weight, C);
  std::vector<double> rows(static_cast<size_t>(M)), wt(static_cast<size_t>(M));
  for_each_row(M, M * C, [&](int64_t r) {
    const float* x = logits + r * C;
    const RowLse s = row_lse(x, C);
    lse[r] = s.lse();
    const int64_t t = target[r];
    if (!is_valid(t, o)) {  // exactly 0, whatever the logits hold
      rows[r] = 0.0;
      wt[r] = 0.0;
      return;
    }
    const double w_t = class_weight(weight, t);
    double row = w_t * (s.log_s - (static_cast<double>(x[t]) - s.m));
    if (ls > 0.0) {
      // sum_c w[c] * -logp[c]; computed only with smoothing on, where PyTorch computes it (at
      // ls = 0 a -inf logit would turn it into 0 * inf = NaN).
      const double smooth = s.log_s * sum_w - row_weighted_offsets(x, weight, C, s.m);
      row = (1.0 - ls) * row + (ls / static_cast<double>(C)) * smooth;
    }
    rows[r] = row;
    wt[r] = w_t;
  });
  write_loss(loss, rows, o.reduction, o.reduction == Reduction::mean ? ordered_sum(wt) : 1.0);
}

void cross_entropy_forward_prob(float* loss, double* lse, const float* logits,
                                const float* target, const float* weight, int64_t M, int64_t C,
                                const LossOptions& o) {
  const double ls = o.label_smoothing;
  const double uniform = ls / static_cast<double>(C);
  std::vector<double> rows(static_cast<size_t>(M));
  for_each_row(M, M * C, [&](int64_t r) {
    const float* __restrict x = logits + r * C;
    const float* __restrict t = target + r * C;
    const RowLse s = row_lse(x, C);
    lse[r] = s.lse();
    const double md = s.m;
    // a[c] = w[c] t'[c]; the row's loss is -sum_c a[c] logp[c] = log_s sum_a - sum_c a[c](x[c] - m).
    double sum_a = 0.0, dot = 0.0;
#pragma omp simd reduction(+ : sum_a, dot)
    for (int64_t c = 0; c < C; ++c) {
      double a = static_cast<double>(t[c]);
      if (ls > 0.0) a = a * (1.0 - ls) + uniform;
      if (weight != nullptr) a *= static_cast<double>(weight[c]);
      sum_a += a;
      dot += a * (static_cast<double>(x[c]) - md);
    }
    rows[r] = s.log_s * sum_a - dot;
  });
  write_loss(loss, rows, o.reduction, static_cast<double>(M));
}

// ---- cross-entropy: backward -----------------------------------------------------------------

// exp(x - lse) in float with lse split into hi + lo floats: x - hi is exact wherever the result
// is not negligible (x within a factor 2 of hi), so the softmax keeps float precision even for
// logits of 1e4, whose float lse alone would be off by its ulp (1e-3).
struct LseSplit {
  float hi, lo;
  explicit LseSplit(double lse)
      : hi(static_cast<float>(lse)), lo(static_cast<float>(lse - static_cast<float>(lse))) {}
};

double lse_of_row(const double* lse, const float* x, int64_t C, int64_t r) {
  return lse != nullptr ? lse[r] : row_lse(x, C).lse();
}

void cross_entropy_backward_index(float* dlogits, const float* dloss, const float* logits,
                                  const int64_t* target, const float* weight, const double* lse,
                                  int64_t M, int64_t C, const LossOptions& o) {
  const double ls = o.label_smoothing;
  const double uniform = ls / static_cast<double>(C);
  const double sum_w = weight_sum(weight, C);
  const double denom = o.reduction == Reduction::mean ? valid_weight(target, weight, M, o) : 1.0;
  for_each_row(M, M * C, [&](int64_t r) {
    const float* __restrict x = logits + r * C;
    float* __restrict dx = dlogits + r * C;
    const int64_t t = target[r];
    const bool valid = is_valid(t, o);
    const double g = valid ? upstream(dloss, o.reduction, r, denom) : 0.0;
    const double w_t = valid ? class_weight(weight, t) : 0.0;
    // Row r's loss is sum_c a[c] * -logp[c] with a[c] = (1 - ls) w_t [c == t] + (ls / C) w[c],
    // so dlogits[c] = g * (softmax[c] * sum_a - a[c]).
    const double sum_a = (1.0 - ls) * w_t + (ls > 0.0 ? uniform * sum_w : 0.0);
    const double row_lse_d = lse_of_row(lse, x, C, r);
    const LseSplit split(row_lse_d);
    const float gs = static_cast<float>(g * sum_a);
    const float gu = static_cast<float>(g * uniform);
    if (ls > 0.0 && weight != nullptr) {
      for (int64_t c = 0; c < C; ++c)
        dx[c] = gs * exp_approx((x[c] - split.hi) - split.lo) - gu * weight[c];
    } else {
      for (int64_t c = 0; c < C; ++c) dx[c] = gs * exp_approx((x[c] - split.hi) - split.lo) - gu;
    }
    if (valid) {
      // The target element, where softmax * sum_a and a nearly cancel once the model is
      // confident: recomputed in double.
      const double p_t = std::exp(static_cast<double>(x[t]) - row_lse_d);
      const double a_t = (1.0 - ls) * w_t + uniform * class_weight(weight, t);
      dx[t] = static_cast<float>(g * (p_t * sum_a - a_t));
    }
  });
}

void cross_entropy_backward_prob(float* dlogits, const float* dloss, const float* logits,
                                 const float* target, const float* weight, const double* lse,
                                 int64_t M, int64_t C, const LossOptions& o) {
  const double ls = o.label_smoothing;
  const bool smooth = ls > 0.0;
  const float keep = smooth ? static_cast<float>(1.0 - ls) : 1.0f;
  const float uniform = smooth ? static_cast<float>(ls / static_cast<double>(C)) : 0.0f;
  for_each_row(M, M * C, [&](int64_t r) {
    const float* __restrict x = logits + r * C;
    const float* __restrict t = target + r * C;
    float* __restrict dx = dlogits + r * C;
    const double g = upstream(dloss, o.reduction, r, static_cast<double>(M));
    // a[c] = w[c] t'[c]; dlogits[c] = g * (softmax[c] * sum_a - a[c]).
    double sum_a = 0.0;
#pragma omp simd reduction(+ : sum_a)
    for (int64_t c = 0; c < C; ++c) {
      double a = static_cast<double>(t[c]);
      if (smooth) a = a * (1.0 - ls) + static_cast<double>(uniform);
      if (weight != nullptr) a *= static_cast<double>(weight[c]);
      sum_a += a;
    }
    const LseSplit split(lse_of_row(lse, x, C, r));
    const float gs = static_cast<float>(g * sum_a);
    const float gf = static_cast<float>(g);
    // Without smoothing keep is 1 and uniform 0, which leave t[c] as it is.
    if (weight == nullptr) {
      for (int64_t c = 0; c < C; ++c)
        dx[c] = gs * exp_approx((x[c] - split.hi) - split.lo) - gf * (t[c] * keep + uniform);
    } else {
      for (int64_t c = 0; c < C; ++c)
        dx[c] = gs * exp_approx((x[c] - split.hi) - split.lo) -
                gf * ((t[c] * keep + uniform) * weight[c]);
    }
  });
}

// ---- nll_loss --------------------------------------------------------------------------------

void nll_loss_forward(float* loss, const float* logp, const int64_t* target, const float* weight,
                      int64_t M, int64_t C, const LossOptions& o) {
  std::vector<double> rows(static_cast<size_t>(M));
  for (int64_t r = 0; r < M; ++r) {
    const int64_t t = target[r];
    rows[r] = is_valid(t, o) ? -static_cast<double>(logp[r * C + t]) * class_weight(weight, t)
                             : 0.0;
  }
  write_loss(loss, rows, o.reduction,
             o.reduction == Reduction::mean ? valid_weight(target, weight, M, o) : 1.0);
}

void nll_loss_backward(float* dlogp, const float* dloss, const int64_t* target,
                       const float* weight, int64_t M, int64_t C, const LossOptions& o) {
  const double denom = o.reduction == Reduction::mean ? valid_weight(target, weight, M, o) : 1.0;
  for_each_row(M, M * C, [&](int64_t r) {
    float* __restrict d = dlogp + r * C;
    for (int64_t c = 0; c < C; ++c) d[c] = 0.0f;
    const int64_t t = target[r];
    if (is_valid(t, o))
      d[t] = static_cast<float>(-upstream(dloss, o.reduction, r, denom) * class_weight(weight, t));
  });
}

// ---- element-wise losses ---------------------------------------------------------------------

// Blocks of a fixed size, so that the partial sums and their order do not depend on threads.
constexpr int64_t kBlock = 8192;

// Element-wise loss f(d) of d = x - t (double): per element for 'none', else reduced.
template <class F>
void elementwise_forward(float* loss, const float* x, const float* t, int64_t n, Reduction red,
                         F f) {
  [[maybe_unused]] const int nt = num_threads();
  if (red == Reduction::none) {
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(n))
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = b + kBlock < n ? b + kBlock : n;
      for (int64_t i = b; i < e; ++i)
        loss[i] = static_cast<float>(f(static_cast<double>(x[i]) - static_cast<double>(t[i])));
    }
    return;
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(n))
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t b = k * kBlock, e = b + kBlock < n ? b + kBlock : n;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += f(static_cast<double>(x[i]) - static_cast<double>(t[i]));
    partial[k] = s;
  }
  const double total = ordered_sum(partial);
  loss[0] = static_cast<float>(red == Reduction::sum ? total : total / static_cast<double>(n));
}

// dx = f'(d) * g, g per element for 'none', else dloss (divided by n for 'mean').
template <class F>
void elementwise_backward(float* dx, const float* dloss, const float* x, const float* t,
                          int64_t n, Reduction red, F slope) {
  const bool per_element = red == Reduction::none;
  const double g0 = per_element ? 0.0 : upstream(dloss, red, 0, static_cast<double>(n));
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(n))
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = b + kBlock < n ? b + kBlock : n;
    for (int64_t i = b; i < e; ++i) {
      const double g = per_element ? static_cast<double>(dloss[i]) : g0;
      dx[i] = static_cast<float>(slope(static_cast<double>(x[i]) - static_cast<double>(t[i])) * g);
    }
  }
}

void mse_loss_forward(float* loss, const float* x, const float* t, int64_t n, Reduction red) {
  elementwise_forward(loss, x, t, n, red, [](double d) { return d * d; });
}

void mse_loss_backward(float* dx, const float* dloss, const float* x, const float* t, int64_t n,
                       Reduction red) {
  elementwise_backward(dx, dloss, x, t, n, red, [](double d) { return 2.0 * d; });
}

void smooth_l1_loss_forward(float* loss, const float* x, const float* t, int64_t n,
                            Reduction red, double beta) {
  if (beta == 0.0) {  // L1: the quadratic branch is empty (and would divide by 0)
    elementwise_forward(loss, x, t, n, red, [](double d) { return std::fabs(d); });
    return;
  }
  const double half_beta = 0.5 * beta;
  elementwise_forward(loss, x, t, n, red, [beta, half_beta](double d) {
    const double ad = std::fabs(d);
    return ad < beta ? 0.5 * d * d / beta : ad - half_beta;
  });
}

void smooth_l1_loss_backward(float* dx, const float* dloss, const float* x, const float* t,
                             int64_t n, Reduction red, double beta) {
  if (beta == 0.0) {  // sign(d): 0 at 0, NaN for NaN, as numpy's and PyTorch's
    elementwise_backward(dx, dloss, x, t, n, red,
                         [](double d) { return d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : d * 0.0); });
    return;
  }
  elementwise_backward(dx, dloss, x, t, n, red, [beta](double d) {
    return d < -beta ? -1.0 : (d > beta ? 1.0 : d / beta);
  });
}

}  // namespace

// The entry points of this ISA path (declared in loss_isa.h).
const LossKernels kLossKernels = {
    cross_entropy_forward_index, cross_entropy_forward_prob, cross_entropy_backward_index,
    cross_entropy_backward_prob, nll_loss_forward,           nll_loss_backward,
    mse_loss_forward,            mse_loss_backward,          smooth_l1_loss_forward,
    smooth_l1_loss_backward,
};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
