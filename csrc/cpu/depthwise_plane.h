// The zero-padded, stride-phase-split copy of an input plane that the direct convolution
// kernels (depthwise_kernels.h, conv_small_c_kernels.h) read, so that their inner loops load
// contiguous vectors with no bounds checks for any stride, padding and dilation.
//
// Shape letters: H W input plane, P Q output plane, R S kernel, sh sw stride, dh dw dilation,
// pt pl padding (top, left). Padded row rho is input row rho - pt; padded column kappa is input
// column kappa - pl and sits in phase kappa % sw at index kappa / sw. Output column q at tap
// column s reads padded column q*sw + s*dw = phase (s*dw) % sw, index q + (s*dw)/sw:
// contiguous in q.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/params.h"

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

// A sub-namespace: the GEMM-based kernels define their own plane types in the ISA namespace.
namespace pyengine::cpu::PYENGINE_ISA_NS::direct_conv {

struct InputPlane {
  int64_t H = 0, W = 0;
  int64_t pt = 0, pl = 0;
  int64_t rows = 0;   // padded rows that some output reads
  int64_t sw = 1;
  int64_t pitch = 0;  // floats per phase row, with room for a pass of up to `pass` outputs
                      // that starts before Q

  InputPlane(int64_t H_, int64_t W_, int64_t P, int64_t Q, int64_t R, int64_t S,
             const Conv2dParams& p, int64_t pass)
      : H(H_), W(W_), pt(p.pad_top), pl(p.pad_left), sw(p.stride_w) {
    rows = (P - 1) * p.stride_h + (R - 1) * p.dilation_h + 1;
    const int64_t cols = (Q - 1) * p.stride_w + (S - 1) * p.dilation_w + 1;
    const int64_t off_max = (S - 1) * p.dilation_w / sw;
    pitch = std::max((cols + sw - 1) / sw, off_max + Q + pass) + 1;
  }

  // Floats of one plane.
  int64_t size() const { return rows * sw * pitch; }

  // Copies plane xc (H x W) into buf; the padding of buf must already be zero (no input
  // value ever lands there, so it stays zero from plane to plane).
  void fill(float* buf, const float* xc) const {
    // Input columns kept: those whose padded column has a place in a phase row.
    const int64_t w_hi = std::clamp<int64_t>(sw * (pitch - 1) - pl, 0, W);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t rho = h + pt;
      if (rho >= rows) break;
      const float* xr = xc + h * W;
      float* br = buf + rho * sw * pitch;
      if (sw == 1) {
        std::memcpy(br + pl, xr, sizeof(float) * w_hi);
      } else {
        for (int64_t w = 0; w < w_hi; ++w) {
          const int64_t kappa = w + pl;
          br[(kappa % sw) * pitch + kappa / sw] = xr[w];
        }
      }
    }
  }

  // Where output column 0 of padded row rho reads at tap column offset col (= s * dw).
  const float* at(const float* buf, int64_t rho, int64_t col) const {
    return buf + tap_offset(rho, col);
  }
  // The same as an offset, split so that kernels can hoist the division out of their loops:
  // output row p reads tap (r, s) at row_offset(p * sh) + tap_offset(r * dh, s * dw).
  int64_t tap_offset(int64_t rho, int64_t col) const {
    return (rho * sw + col % sw) * pitch + col / sw;
  }
  int64_t row_offset(int64_t rho) const { return rho * sw * pitch; }
};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS::direct_conv
