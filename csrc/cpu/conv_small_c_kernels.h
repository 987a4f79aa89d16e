// The few-input-channel direct convolution kernels of one ISA path: included once by
// conv_small_c.cpp (baseline), conv_small_c_avx2.cpp and conv_small_c_avx512.cpp. See
// conv_small_c.h for the problem.
//
// Shape letters: N C H W input, K output channels, R S kernel, P Q output, t = (c*R + r)*S + s
// a tap (CRS of them). A first layer has a tiny reduction (C*R*S = 9 .. 147) and a huge output,
// so im2col + GEMM spends its time copying; here each image's C planes are copied once into
// zero-padded, stride-phase-split buffers (depthwise_plane.h) and read directly:
//   forward          lanes along the output row q, a register block of KB output channels x
//                    NV vectors: per tap, NV loads and KB broadcast weights feed KB*NV FMAs.
//                    (KB, NV) is chosen per shape among a few, for the least padding waste.
//   backward-weight  dw[k][t] = sum over n, p, q of dy[n,k,p,q] x_t[n,p,q]: register block of
//                    KB channels x TB taps, partial sums per lane over a chunk of rows, then
//                    summed into the thread's partial dw; the threads' partials are added in
//                    thread order, so results depend on the thread count only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "cpu/conv_small_c.h"
#include "cpu/depthwise_plane.h"
#include "cpu/parallel.h"
#include "cpu/winograd_simd.h"

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

using direct_conv::InputPlane;
using simd::Buffer;
using simd::ceil_div;
using simd::kLanes;
using simd::Vec;

// Widest pass along a row: the plane buffers leave room for it past Q.
constexpr int64_t kMaxPass = 3 * kLanes;

// The padded planes of the C channels of a few images, each rebuilt only when its slot is
// taken by another image.
class PlaneCache {
 public:
  PlaneCache(const InputPlane& ip, int64_t C, int64_t slots) : ip_(ip), C_(C), slots_(slots) {
    buf_ = data_.get(slots * C * ip.size());
    std::memset(buf_, 0, sizeof(float) * slots * C * ip.size());
    image_.assign(slots, -1);
  }
  // The planes of image n (C planes of ip.size() floats).
  const float* get(const float* x, int64_t n) {
    const int64_t slot = n % slots_;
    float* planes = buf_ + slot * C_ * ip_.size();
    if (image_[slot] != n) {
      for (int64_t c = 0; c < C_; ++c)
        ip_.fill(planes + c * ip_.size(), x + (n * C_ + c) * ip_.H * ip_.W);
      image_[slot] = n;
    }
    return planes;
  }

 private:
  const InputPlane& ip_;
  int64_t C_, slots_;
  Buffer data_;
  float* buf_ = nullptr;
  std::vector<int64_t> image_;
};

// Where tap t = (c*R + r)*S + s reads, past the start of its output row in an image's planes
// (C planes of ip.size() floats): computed once, as it takes divisions.
std::vector<int64_t> tap_offsets(const SmallCProblem& pb, const InputPlane& ip) {
  const int64_t RS = pb.R * pb.S;
  std::vector<int64_t> off(pb.C * RS);
  for (int64_t t = 0; t < pb.C * RS; ++t)
    off[t] = t / RS * ip.size() +
             ip.tap_offset(t % RS / pb.S * pb.p.dilation_h, t % pb.S * pb.p.dilation_w);
  return off;
}

// ---- forward ------------------------------------------------------------------------------------

// off[t]: where tap t reads, past the start of its output row in the planes (tap_offsets).
template <int KB, int NV>
void forward_row(const SmallCProblem& pb, const InputPlane& ip, const float* planes,
                 const int64_t* off, const float* wpk, const float* b, float* y, int64_t n,
                 int64_t py) {
  const Conv2dParams& p = pb.p;
  const int64_t CRS = pb.C * pb.R * pb.S;
  const int64_t nkb = ceil_div(pb.K, KB);
  for (int64_t q0 = 0; q0 < pb.Q; q0 += NV * kLanes) {
    const int64_t nq = std::min<int64_t>(NV * kLanes, pb.Q - q0);
    for (int64_t kb = 0; kb < nkb; ++kb) {
      Vec acc[KB][NV];
#pragma GCC unroll 16
      for (int kk = 0; kk < KB; ++kk) {
        const int64_t k = kb * KB + kk;
        const Vec bias = simd::vset1(b && k < pb.K ? b[k] : 0.0f);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[kk][v] = bias;
      }
      const float* wk = wpk + kb * CRS * KB;
      const float* row = planes + ip.row_offset(py * p.stride_h) + q0;
      for (int64_t t = 0; t < CRS; ++t, wk += KB) {
        const float* src = row + off[t];
        Vec xv[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) xv[v] = simd::vload(src + v * kLanes);
#pragma GCC unroll 16
        for (int kk = 0; kk < KB; ++kk) {
          const Vec wv = simd::vset1(wk[kk]);
#pragma GCC unroll 16
          for (int v = 0; v < NV; ++v) acc[kk][v] = simd::vfma(wv, xv[v], acc[kk][v]);
        }
      }
#pragma GCC unroll 16
      for (int kk = 0; kk < KB; ++kk) {
        if (kb * KB + kk >= pb.K) continue;  // not a loop exit: acc must stay in registers
        float* yr = y + ((n * pb.K + kb * KB + kk) * pb.P + py) * pb.Q + q0;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          const int64_t rem = nq - v * kLanes;
          if (rem >= kLanes) simd::vstore(yr + v * kLanes, acc[kk][v]);
          else if (rem > 0) simd::vstore_part(yr + v * kLanes, acc[kk][v], static_cast<int>(rem));
        }
      }
    }
  }
}

template <int KB, int NV>
void forward(const SmallCProblem& pb, float* y, const float* x, const float* w, const float* b) {
  const int64_t CRS = pb.C * pb.R * pb.S;
  const int64_t nkb = ceil_div(pb.K, KB);
  // wpk[kb][t][kk] = w[kb*KB + kk][t]: the KB weights of a tap are one contiguous run.
  std::vector<float> wpk(nkb * CRS * KB, 0.0f);
  for (int64_t k = 0; k < pb.K; ++k)
    for (int64_t t = 0; t < CRS; ++t) wpk[((k / KB) * CRS + t) * KB + k % KB] = w[k * CRS + t];
  const InputPlane ip(pb.H, pb.W, pb.P, pb.Q, pb.R, pb.S, pb.p, kMaxPass);
  const std::vector<int64_t> off = tap_offsets(pb, ip);
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel num_threads(nt) if (worth_parallel(pb.N * pb.K * pb.P * pb.Q * CRS))
  {
    PlaneCache cache(ip, pb.C, 1);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < pb.N * pb.P; ++row) {
      const int64_t n = row / pb.P, py = row % pb.P;
      forward_row<KB, NV>(pb, ip, cache.get(x, n), off.data(), wpk.data(), b, y, n, py);
    }
  }
}

// ---- backward-weight ----------------------------------------------------------------------------

// part[k][t] += sum over the rows of the chunk of dy[n,k,p,:] . x_t[n,p,:] for the KB channels
// from k0 and the TB taps from t0 (channels and taps past the end read a zero row and are not
// stored).
// planes[n - n0]: the padded planes of the images of the chunk (fetched beforehand: a call in
// the row loop would make the compiler spill the partial sums around it).
template <int KB, int TB>
void weight_block(const SmallCProblem& pb, const InputPlane& ip, const float* const* planes_of,
                  int64_t n0, const int64_t* off, const float* dy, const float* zeros,
                  int64_t row0, int64_t row1, int64_t k0, int64_t t0, float* part) {
  const Conv2dParams& p = pb.p;
  const int64_t CRS = pb.C * pb.R * pb.S;
  Vec acc[KB][TB];
#pragma GCC unroll 16
  for (int kk = 0; kk < KB; ++kk)
#pragma GCC unroll 16
    for (int t = 0; t < TB; ++t) acc[kk][t] = simd::vzero();
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t n = row / pb.P, py = row % pb.P;
    const float* planes = planes_of[n - n0];
    const float* g[KB];
#pragma GCC unroll 16
    for (int kk = 0; kk < KB; ++kk)
      g[kk] = k0 + kk < pb.K ? dy + ((n * pb.K + k0 + kk) * pb.P + py) * pb.Q : zeros;
    const float* in_row = planes + ip.row_offset(py * p.stride_h);
    const float* src[TB];
#pragma GCC unroll 16
    for (int t = 0; t < TB; ++t) src[t] = t0 + t < CRS ? in_row + off[t0 + t] : zeros;
    // Whole vectors, then the row's last partial one apart: a select between the two loads
    // inside the loop would make the compiler keep acc in memory.
    int64_t q0 = 0;
    for (; q0 + kLanes <= pb.Q; q0 += kLanes) {
      Vec gv[KB];
#pragma GCC unroll 16
      for (int kk = 0; kk < KB; ++kk) gv[kk] = simd::vload(g[kk] + q0);
#pragma GCC unroll 9
      for (int t = 0; t < TB; ++t) {
        const Vec xv = simd::vload(src[t] + q0);
#pragma GCC unroll 16
        for (int kk = 0; kk < KB; ++kk) acc[kk][t] = simd::vfma(gv[kk], xv, acc[kk][t]);
      }
    }
    if (q0 < pb.Q) {
      // Lanes past Q are 0 in dy, so the padded input they meet adds nothing.
      Vec gv[KB];
#pragma GCC unroll 16
      for (int kk = 0; kk < KB; ++kk)
        gv[kk] = simd::vload_part(g[kk] + q0, static_cast<int>(pb.Q - q0));
#pragma GCC unroll 9
      for (int t = 0; t < TB; ++t) {
        const Vec xv = simd::vload(src[t] + q0);
#pragma GCC unroll 16
        for (int kk = 0; kk < KB; ++kk) acc[kk][t] = simd::vfma(gv[kk], xv, acc[kk][t]);
      }
    }
  }
  // Constant trip counts with the bounds inside: a loop that may stop early would index acc
  // at run time and keep it in memory.
#pragma GCC unroll 4
  for (int kk = 0; kk < KB; ++kk)
#pragma GCC unroll 9
    for (int t = 0; t < TB; ++t) {
      const float sum = simd::vsum(acc[kk][t]);
      if (k0 + kk < pb.K && t0 + t < CRS) part[(k0 + kk) * CRS + t0 + t] += sum;
    }
}

template <int KB, int TB>
void backward_weight(const SmallCProblem& pb, float* dw, const float* dy, const float* x) {
  const int64_t CRS = pb.C * pb.R * pb.S;
  const int64_t rows = pb.N * pb.P;
  const InputPlane ip(pb.H, pb.W, pb.P, pb.Q, pb.R, pb.S, pb.p, kMaxPass);
  // Rows per chunk: about 256 vectors of dy per channel, so that summing the lanes costs
  // little, and a chunk's dy (KB channels) stays in L1/L2.
  const int64_t chunk = std::max<int64_t>(1, 256 / ceil_div(pb.Q, kLanes));
  const int64_t slots = ceil_div(chunk, pb.P) + 1;
  std::vector<float> zeros(ceil_div(pb.Q, kLanes) * kLanes + kMaxPass, 0.0f);
  const std::vector<int64_t> off = tap_offsets(pb, ip);
  const int nt = worth_parallel(pb.N * pb.K * pb.P * pb.Q * CRS) ? num_threads() : 1;
  std::vector<float> parts(static_cast<size_t>(nt) * pb.K * CRS, 0.0f);
#pragma omp parallel num_threads(nt)
  {
#if defined(_OPENMP)
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int tid = 0, team = 1;
#endif
    // Each thread sums one contiguous range of rows (fixed by the thread count).
    const int64_t r0 = rows * tid / team, r1 = rows * (tid + 1) / team;
    float* part = parts.data() + static_cast<size_t>(tid) * pb.K * CRS;
    PlaneCache cache(ip, pb.C, slots);
    std::vector<const float*> planes_of(slots);
    for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
      const int64_t c1 = std::min(r1, c0 + chunk);
      const int64_t n0 = c0 / pb.P, n1 = (c1 - 1) / pb.P;
      for (int64_t n = n0; n <= n1; ++n) planes_of[n - n0] = cache.get(x, n);
      for (int64_t k0 = 0; k0 < pb.K; k0 += KB)
        for (int64_t t0 = 0; t0 < CRS; t0 += TB)
          weight_block<KB, TB>(pb, ip, planes_of.data(), n0, off.data(), dy, zeros.data(), c0,
                               c1, k0, t0, part);
    }
  }
  for (int64_t i = 0; i < pb.K * CRS; ++i) {
    float s = 0.0f;
    for (int t = 0; t < nt; ++t) s += parts[static_cast<size_t>(t) * pb.K * CRS + i];
    dw[i] = s;
  }
}

}  // namespace

void small_c_forward_impl(const SmallCProblem& pb, float* y, const float* x, const float* w,
                          const float* b) {
  // (KB output channels, NV vectors) blocks with about the same register use; take the one
  // that computes the fewest padded outputs (channels past K, lanes past Q), the widest on a
  // tie (fewer broadcasts per FMA).
#if defined(__AVX512F__)
  constexpr int kb[3] = {16, 12, 8};
#else
  constexpr int kb[3] = {12, 6, 4};
#endif
  int best = 0;
  int64_t best_cost = -1;
  for (int i = 0; i < 3; ++i) {
    const int64_t nv = i + 1;
    const int64_t cost = ceil_div(pb.K, kb[i]) * kb[i] * ceil_div(pb.Q, nv * kLanes) * nv;
    if (best_cost < 0 || cost <= best_cost) best = i, best_cost = cost;
  }
  switch (best) {
    case 0: return forward<kb[0], 1>(pb, y, x, w, b);
    case 1: return forward<kb[1], 2>(pb, y, x, w, b);
    default: return forward<kb[2], 3>(pb, y, x, w, b);
  }
}

void small_c_backward_weight_impl(const SmallCProblem& pb, float* dw, const float* dy,
                                  const float* x) {
  // (KB channels, TB taps) blocks of partial sums; take the one with the fewest padded
  // (channel, tap) pairs, the one with the most FMAs per load on a tie.
#if defined(__AVX512F__)
  constexpr int kb[3] = {4, 2, 3}, tb[3] = {6, 9, 8};  // 24, 18, 24 partial sums of 32 registers
#else
  constexpr int kb[3] = {3, 2, 1}, tb[3] = {4, 5, 9};  // 12, 10, 9 of 16
#endif
  const int64_t CRS = pb.C * pb.R * pb.S;
  int best = 0;
  int64_t best_cost = -1;
  for (int i = 0; i < 3; ++i) {
    const int64_t cost = ceil_div(pb.K, kb[i]) * kb[i] * ceil_div(CRS, tb[i]) * tb[i];
    if (best_cost < 0 || cost < best_cost) best = i, best_cost = cost;
  }
  switch (best) {
    case 0: return backward_weight<kb[0], tb[0]>(pb, dw, dy, x);
    case 1: return backward_weight<kb[1], tb[1]>(pb, dw, dy, x);
    default: return backward_weight<kb[2], tb[2]>(pb, dw, dy, x);
  }
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
