// The depthwise kernels of one ISA path: included once by depthwise.cpp (baseline),
// depthwise_avx2.cpp and depthwise_avx512.cpp, each compiling it into its own
// pyengine::cpu::PYENGINE_ISA_NS. See depthwise.h for the problem.
//
// Shape letters: N C H W input, K = C * mult output channels, R S kernel, P Q output, sh sw
// stride, dh dw dilation, pt pl padding (top, left). Lanes run along an output row (q), kQB
// outputs (kNV vectors) at a time, so that every tap is one broadcast weight times contiguous
// vectors:
//   forward / backward-weight  the input plane of (n, c) is copied once into a zero-padded
//       buffer, each padded row split into sw phases (column phi + sw*i at phase phi, index i):
//       output q at tap s reads padded column q*sw + s*dw = phase (s*dw) % sw, index
//       q + (s*dw) / sw -- contiguous in q for any stride. Padding is zeros in the buffer, so
//       the inner loops have no bounds checks.
//   backward-data  gathers (no scatter, no atomics): dx[h][w] sums dy[p][q] w[r][s] over the
//       taps with h + pt = p*sh + r*dh and w + pl = q*sw + s*dw. Taking the columns w of one
//       phase phi = w % sw, w = phi + sw*i, the valid s are fixed and q = i + (phi + pl -
//       s*dw)/sw, again contiguous in i; dy rows sit in a buffer with zero margins, so q
//       outside [0, Q) reads 0.
// Each output element is computed by one thread in a fixed order (backward-weight: one
// thread per output channel, partial sums per lane, summed at the end): results do not depend
// on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/depthwise.h"
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

constexpr int kNV = 4;                // vectors per pass along a row
constexpr int64_t kQB = kNV * kLanes;  // outputs per pass

// y[q0 .. q0+n) (n <= kQB) = acc.
inline void store_pass(float* y, const Vec* acc, int64_t n) {
#pragma GCC unroll 16
  for (int v = 0; v < kNV; ++v) {
    const int64_t rem = n - v * kLanes;
    if (rem >= kLanes) simd::vstore(y + v * kLanes, acc[v]);
    else if (rem > 0) simd::vstore_part(y + v * kLanes, acc[v], static_cast<int>(rem));
  }
}

// Partial sums of dw[k] for the NT taps t0 .. t0+NT-1 (tap t = r*S + s) over all images, one
// per lane, in registers (a compile-time count keeps them out of memory).
template <int NT>
void weight_taps(const DepthwiseProblem& pb, const InputPlane& ip, float* buf, int64_t k,
                 int64_t t0, float* dwk, const float* dy, const float* x) {
  const Conv2dParams& p = pb.p;
  const int64_t c = k / (pb.K / pb.C);
  int64_t off[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t)
    off[t] = ip.tap_offset((t0 + t) / pb.S * p.dilation_h, (t0 + t) % pb.S * p.dilation_w);
  Vec acc[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) acc[t] = simd::vzero();
  for (int64_t n = 0; n < pb.N; ++n) {
    ip.fill(buf, x + (n * pb.C + c) * pb.H * pb.W);
    const float* dyk = dy + (n * pb.K + k) * pb.P * pb.Q;
    for (int64_t py = 0; py < pb.P; ++py) {
      const float* dyr = dyk + py * pb.Q;
      const float* src[NT];
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) src[t] = buf + ip.row_offset(py * p.stride_h) + off[t];
      // Whole vectors, then the row's last partial one apart: a select between the two loads
      // inside the loop would make the compiler keep acc in memory.
      int64_t q0 = 0;
      for (; q0 + kLanes <= pb.Q; q0 += kLanes) {
        const Vec g = simd::vload(dyr + q0);
#pragma GCC unroll 9
        for (int t = 0; t < NT; ++t) acc[t] = simd::vfma(g, simd::vload(src[t] + q0), acc[t]);
      }
      if (q0 < pb.Q) {
        // Lanes past Q are 0 in dy, so the padded input they meet adds nothing.
        const Vec g = simd::vload_part(dyr + q0, static_cast<int>(pb.Q - q0));
#pragma GCC unroll 9
        for (int t = 0; t < NT; ++t) acc[t] = simd::vfma(g, simd::vload(src[t] + q0), acc[t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) dwk[t0 + t] = simd::vsum(acc[t]);
}

}  // namespace

void depthwise_forward_impl(const DepthwiseProblem& pb, float* y, const float* x,
                            const float* w, const float* b) {
  const int64_t mult = pb.K / pb.C;
  const int64_t RS = pb.R * pb.S;
  const InputPlane ip(pb.H, pb.W, pb.P, pb.Q, pb.R, pb.S, pb.p, kQB);
  const Conv2dParams& p = pb.p;
  std::vector<int64_t> off(RS);  // tap t = r*S + s reads off[t] past its output row's start
  for (int64_t t = 0; t < RS; ++t)
    off[t] = ip.tap_offset(t / pb.S * p.dilation_h, t % pb.S * p.dilation_w);
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel num_threads(nt) if (worth_parallel(pb.N * pb.K * pb.P * pb.Q * RS))
  {
    Buffer buf_;
    float* buf = buf_.get(ip.size());
    std::memset(buf, 0, sizeof(float) * ip.size());
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < pb.N * pb.C; ++nc) {
      const int64_t n = nc / pb.C, c = nc % pb.C;
      ip.fill(buf, x + (n * pb.C + c) * pb.H * pb.W);
      for (int64_t j = 0; j < mult; ++j) {
        const int64_t k = c * mult + j;
        const float* wk = w + k * RS;
        const float bias = b ? b[k] : 0.0f;
        float* yk = y + (n * pb.K + k) * pb.P * pb.Q;
        for (int64_t py = 0; py < pb.P; ++py) {
          for (int64_t q0 = 0; q0 < pb.Q; q0 += kQB) {
            Vec acc[kNV];
#pragma GCC unroll 16
            for (int v = 0; v < kNV; ++v) acc[v] = simd::vset1(bias);
            const float* row = buf + ip.row_offset(py * p.stride_h) + q0;
            for (int64_t t = 0; t < RS; ++t) {
              const float* src = row + off[t];
              const Vec wv = simd::vset1(wk[t]);
#pragma GCC unroll 4
              for (int v = 0; v < kNV; ++v)
                acc[v] = simd::vfma(wv, simd::vload(src + v * kLanes), acc[v]);
            }
            store_pass(yk + py * pb.Q + q0, acc, std::min(kQB, pb.Q - q0));
          }
        }
      }
    }
  }
}

// Taps per pass: up to 9 partial sums stay in registers next to the dy vector and a load (a
// 3x3 kernel in one pass; larger kernels take several, each re-reading dy and x).
constexpr int64_t kTapsPerPass = 9;

void depthwise_backward_weight_impl(const DepthwiseProblem& pb, float* dw, const float* dy,
                                    const float* x) {
  const int64_t RS = pb.R * pb.S;
  const InputPlane ip(pb.H, pb.W, pb.P, pb.Q, pb.R, pb.S, pb.p, kQB);
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel num_threads(nt) if (worth_parallel(pb.N * pb.K * pb.P * pb.Q * RS))
  {
    Buffer buf_;
    float* buf = buf_.get(ip.size());
    std::memset(buf, 0, sizeof(float) * ip.size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < pb.K; ++k) {
      for (int64_t t0 = 0; t0 < RS; t0 += kTapsPerPass) {
        float* dwk = dw + k * RS;
        switch (std::min(kTapsPerPass, RS - t0)) {
          case 1: weight_taps<1>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 2: weight_taps<2>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 3: weight_taps<3>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 4: weight_taps<4>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 5: weight_taps<5>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 6: weight_taps<6>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 7: weight_taps<7>(pb, ip, buf, k, t0, dwk, dy, x); break;
          case 8: weight_taps<8>(pb, ip, buf, k, t0, dwk, dy, x); break;
          default: weight_taps<9>(pb, ip, buf, k, t0, dwk, dy, x); break;
        }
      }
    }
  }
}

void depthwise_backward_data_impl(const DepthwiseProblem& pb, float* dx, const float* dy,
                                  const float* w) {
  const int64_t mult = pb.K / pb.C;
  const int64_t RS = pb.R * pb.S;
  const Conv2dParams& p = pb.p;
  const int64_t sh = p.stride_h, sw = p.stride_w;
  // Per column phase phi: the taps s that reach it and their dy offsets (phi + pl - s*dw)/sw.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> taps(sw);
  int64_t off_min = 0, off_max = 0;
  for (int64_t phi = 0; phi < sw; ++phi)
    for (int64_t s = 0; s < pb.S; ++s) {
      const int64_t num = phi + p.pad_left - s * p.dilation_w;
      if (((num % sw) + sw) % sw != 0) continue;
      taps[phi].push_back({s, num / sw});
      off_min = std::min(off_min, num / sw);
      off_max = std::max(off_max, num / sw);
    }
  const int64_t cnt_max = ceil_div(pb.W, sw);  // columns of phase 0, the longest
  const int64_t margin = -off_min;
  const int64_t pitch = margin + std::max(pb.Q, ceil_div(cnt_max, kQB) * kQB + off_max) + 1;
  const int64_t plane = pb.P * pitch;
  [[maybe_unused]] const int nt = num_threads();
#pragma omp parallel num_threads(nt) if (worth_parallel(pb.N * pb.K * pb.P * pb.Q * RS))
  {
    Buffer buf_, row_;
    float* buf = buf_.get(mult * plane);
    std::memset(buf, 0, sizeof(float) * mult * plane);
    float* row = row_.get(kQB);
    std::vector<std::pair<int64_t, int64_t>> rows;  // (r, p) of the taps that reach row h
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < pb.N * pb.C; ++nc) {
      const int64_t n = nc / pb.C, c = nc % pb.C;
      for (int64_t j = 0; j < mult; ++j)
        for (int64_t py = 0; py < pb.P; ++py)
          std::memcpy(buf + j * plane + py * pitch + margin,
                      dy + ((n * pb.K + c * mult + j) * pb.P + py) * pb.Q, sizeof(float) * pb.Q);
      float* dxc = dx + (n * pb.C + c) * pb.H * pb.W;
      for (int64_t h = 0; h < pb.H; ++h) {
        rows.clear();
        for (int64_t r = 0; r < pb.R; ++r) {
          const int64_t num = h + p.pad_top - r * p.dilation_h;
          if (num >= 0 && num % sh == 0 && num / sh < pb.P) rows.push_back({r, num / sh});
        }
        for (int64_t phi = 0; phi < sw && phi < pb.W; ++phi) {
          const int64_t cnt = ceil_div(pb.W - phi, sw);
          for (int64_t i0 = 0; i0 < cnt; i0 += kQB) {
            Vec acc[kNV];
#pragma GCC unroll 16
            for (int v = 0; v < kNV; ++v) acc[v] = simd::vzero();
            for (int64_t j = 0; j < mult; ++j) {
              const float* wk = w + (c * mult + j) * RS;
              for (const auto& rp : rows) {
                const float* dyr = buf + j * plane + rp.second * pitch + margin + i0;
                for (const auto& so : taps[phi]) {
                  const Vec wv = simd::vset1(wk[rp.first * pb.S + so.first]);
                  const float* src = dyr + so.second;
#pragma GCC unroll 4
                  for (int v = 0; v < kNV; ++v)
                    acc[v] = simd::vfma(wv, simd::vload(src + v * kLanes), acc[v]);
                }
              }
            }
            const int64_t n_out = std::min(kQB, cnt - i0);
            float* dxr = dxc + h * pb.W;
            if (sw == 1) {
              store_pass(dxr + i0, acc, n_out);
            } else {
#pragma GCC unroll 16
              for (int v = 0; v < kNV; ++v) simd::vstore(row + v * kLanes, acc[v]);
              for (int64_t l = 0; l < n_out; ++l) dxr[phi + sw * (i0 + l)] = row[l];
            }
          }
        }
      }
    }
  }
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
