// The batch normalisation kernels of batch_norm.h, written once and compiled once per ISA path:
// batch_norm.cpp (baseline), batch_norm_avx2.cpp and batch_norm_avx512.cpp include this file,
// each inside its own namespace pyengine::cpu::PYENGINE_ISA_NS, and export their entry points
// as a BatchNormKernels table that batch_norm.cpp picks from at run time.
//
// Shape letters (as in batch_norm.h): N batch, C channels, L positions; x is (N, C, L).
//
// Work unit: a block of whole rows (n, c, 0..L) of one channel, about kBlock values. Each
// block's statistics are computed from data it just read (two passes over a block that sits in
// L1: its mean, then its squared deviations from that mean), and blocks are merged in block
// order with Chan's formula. That is one pass over memory, as accurate as a two-pass variance,
// and independent of the thread count.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/batch_norm_isa.h"
#include "cpu/parallel.h"

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

constexpr int64_t kBlock = 8192;  // values per block: 32 KiB of x, an L1's worth

struct Blocks {
  int64_t N, C, L;
  int64_t rows;         // rows (values of n) per block
  int64_t per_channel;  // blocks per channel

  Blocks(int64_t n, int64_t c, int64_t l) : N(n), C(c), L(l) {
    rows = L >= kBlock ? 1 : kBlock / (L > 0 ? L : 1);
    per_channel = (N + rows - 1) / rows;
  }
  int64_t count() const { return C * per_channel; }
  int64_t row_offset(int64_t n, int64_t c) const { return (n * C + c) * L; }
};

// Runs fn(c, n0, n1, k) for block k (rows [n0, n1) of channel c), all blocks in parallel,
// handed out dynamically (a block's result does not depend on the thread that computes it).
template <class Fn>
void for_each_block(const Blocks& b, Fn fn) {
  [[maybe_unused]] const int nt = num_threads();
  const int64_t blocks = b.count();
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(b.N * b.C * b.L))
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t c = k / b.per_channel, n0 = (k % b.per_channel) * b.rows;
    fn(c, n0, n0 + b.rows < b.N ? n0 + b.rows : b.N, k);
  }
}

double sum_row(const float* __restrict x, int64_t L) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t l = 0; l < L; ++l) s += x[l];
  return s;
}

double sum_squared_deviation(const float* __restrict x, int64_t L, double mean) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t l = 0; l < L; ++l) {
    const double d = static_cast<double>(x[l]) - mean;
    s += d * d;
  }
  return s;
}

// A float split as hi + lo floats: (x - hi) - lo keeps x - v accurate when v is a double.
struct Split {
  float hi, lo;
  explicit Split(double v) : hi(static_cast<float>(v)), lo(static_cast<float>(v - static_cast<float>(v))) {}
};

void batch_norm_forward_train(float* y, float* mean_out, float* invstd_out, const float* x,
                              const float* weight, const float* bias, int64_t N, int64_t C,
                              int64_t L, double eps) {
  const Blocks b(N, C, L);
  std::vector<double> bmean(static_cast<size_t>(b.count())), bm2(bmean.size());
  for_each_block(b, [&](int64_t c, int64_t n0, int64_t n1, int64_t k) {
    double s = 0.0;
    for (int64_t n = n0; n < n1; ++n) s += sum_row(x + b.row_offset(n, c), L);
    const double cnt = static_cast<double>((n1 - n0) * L);
    const double m = s / cnt;
    double m2 = 0.0;
    for (int64_t n = n0; n < n1; ++n) m2 += sum_squared_deviation(x + b.row_offset(n, c), L, m);
    bmean[k] = m;
    bm2[k] = m2;
  });
  std::vector<double> mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    // Chan et al.: merge (count, mean, M2) of the channel's blocks in order.
    double cnt = 0.0, m = 0.0, m2 = 0.0;
    for (int64_t j = 0; j < b.per_channel; ++j) {
      const int64_t k = c * b.per_channel + j;
      const int64_t n0 = j * b.rows, n1 = n0 + b.rows < N ? n0 + b.rows : N;
      const double cb = static_cast<double>((n1 - n0) * L);
      const double delta = bmean[k] - m;
      const double total = cnt + cb;
      m += delta * (cb / total);
      m2 += bm2[k] + delta * delta * (cnt * cb / total);
      cnt = total;
    }
    mean[c] = m;
    invstd[c] = 1.0 / std::sqrt(m2 / cnt + eps);
    mean_out[c] = static_cast<float>(m);
    invstd_out[c] = static_cast<float>(invstd[c]);
  }
  for_each_block(b, [&](int64_t c, int64_t n0, int64_t n1, int64_t) {
    const Split mu(mean[c]);
    const double sc = invstd[c] * (weight ? static_cast<double>(weight[c]) : 1.0);
    const float scale = static_cast<float>(sc);
    const float shift = bias ? bias[c] : 0.0f;
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict xr = x + b.row_offset(n, c);
      float* __restrict yr = y + b.row_offset(n, c);
      for (int64_t l = 0; l < L; ++l) yr[l] = ((xr[l] - mu.hi) - mu.lo) * scale + shift;
    }
  });
}

void batch_norm_forward_eval(float* y, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             int64_t N, int64_t C, int64_t L, double eps) {
  const Blocks b(N, C, L);
  const float eps_f = static_cast<float>(eps);
  for_each_block(b, [&](int64_t c, int64_t n0, int64_t n1, int64_t) {
    // float32 throughout, in the reference's order of operations.
    const float rm = running_mean[c];
    const float is = 1.0f / std::sqrt(running_var[c] + eps_f);
    const float w = weight ? weight[c] : 1.0f;
    const float sh = bias ? bias[c] : 0.0f;
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict xr = x + b.row_offset(n, c);
      float* __restrict yr = y + b.row_offset(n, c);
      for (int64_t l = 0; l < L; ++l) yr[l] = (xr[l] - rm) * is * w + sh;
    }
  });
}

void batch_norm_backward(float* dx, float* dweight, float* dbias, const float* dy,
                         const float* x, const float* weight, const float* mean,
                         const float* invstd, int64_t N, int64_t C, int64_t L, bool training) {
  const Blocks b(N, C, L);
  // Per block: sum dy and sum dy * (x - mean), in double.
  std::vector<double> bdy(static_cast<size_t>(b.count())), bdyx(bdy.size());
  for_each_block(b, [&](int64_t c, int64_t n0, int64_t n1, int64_t k) {
    const double mu = mean[c];
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict xr = x + b.row_offset(n, c);
      const float* __restrict gr = dy + b.row_offset(n, c);
#pragma omp simd reduction(+ : sdy, sdyx)
      for (int64_t l = 0; l < L; ++l) {
        const double g = gr[l];
        sdy += g;
        sdyx += g * (static_cast<double>(xr[l]) - mu);
      }
    }
    bdy[k] = sdy;
    bdyx[k] = sdyx;
  });
  const double count = static_cast<double>(N * L);
  // dx = a * dy + k1 * (x - mean) + k0 per channel (see numpy_ref: with xhat = (x - mean) *
  // invstd and scale = invstd * weight, dx = scale * (dy - dbias / count - xhat * dweight /
  // count) in training, scale * dy otherwise).
  std::vector<float> a(static_cast<size_t>(C)), k1(a.size()), k0(a.size());
  for (int64_t c = 0; c < C; ++c) {
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t j = 0; j < b.per_channel; ++j) {
      sdy += bdy[c * b.per_channel + j];
      sdyx += bdyx[c * b.per_channel + j];
    }
    const double is = invstd[c];
    const double dw = sdyx * is;
    dbias[c] = static_cast<float>(sdy);
    dweight[c] = static_cast<float>(dw);
    const double scale = is * (weight ? static_cast<double>(weight[c]) : 1.0);
    a[c] = static_cast<float>(scale);
    k1[c] = training && count > 0 ? static_cast<float>(-scale * is * dw / count) : 0.0f;
    k0[c] = training && count > 0 ? static_cast<float>(-scale * sdy / count) : 0.0f;
  }
  for_each_block(b, [&](int64_t c, int64_t n0, int64_t n1, int64_t) {
    const float ac = a[c], k1c = k1[c], k0c = k0[c], mu = mean[c];
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict xr = x + b.row_offset(n, c);
      const float* __restrict gr = dy + b.row_offset(n, c);
      float* __restrict dr = dx + b.row_offset(n, c);
      if (training) {
        for (int64_t l = 0; l < L; ++l) dr[l] = ac * gr[l] + (k1c * (xr[l] - mu) + k0c);
      } else {
        for (int64_t l = 0; l < L; ++l) dr[l] = ac * gr[l];
      }
    }
  });
}

}  // namespace

// The entry points of this ISA path (declared in batch_norm_isa.h).
const BatchNormKernels kBatchNormKernels = {
    batch_norm_forward_train,
    batch_norm_forward_eval,
    batch_norm_backward,
};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
