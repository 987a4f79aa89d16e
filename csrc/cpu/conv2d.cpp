// conv2d on the CPU (conv2d.h): the baseline (x86-64-v2) copy of the im2col_gemm and
// implicit_gemm kernels (conv2d_impl.h, conv2d_planes.h), and the public entry points:
// algorithm names, the `auto` choice, the dispatch by algorithm (a switch per direction) and by
// ISA path, the direct_1x1 algorithm (plain GEMMs through sgemm, which dispatches by ISA
// itself) and the bias gradient.
//
// Shape letters as in conv2d.h: N C H W input, K R S weight, P Q output, G groups.
#include "cpu/conv2d.h"

#include <cstring>
#include <stdexcept>

#include "cpu/conv2d_impl.h"
#include "cpu/conv2d_planes.h"
#include "cpu/conv2d_kernels.h"
#include "cpu/conv_small_c.h"
#include "cpu/depthwise.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
#include "cpu/winograd.h"

namespace pyengine::cpu {

namespace {

ConvGeom geometry(const Conv2dShape& s, const Conv2dParams& p) {
  return ConvGeom{s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.P, s.Q, p.groups,
                  p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h, p.dilation_w};
}

// ---- im2col_gemm: the active ISA path's copy ----------------------------------------------
void forward_im2col(float* y, const float* x, const float* w, const float* b, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_forward_im2col(y, x, w, b, g));
}

void backward_data_im2col(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_backward_data_im2col(dx, dy, w, g));
}

void backward_weight_im2col(float* dw, const float* dy, const float* x, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_backward_weight_im2col(dw, dy, x, g));
}

// ---- implicit_gemm: the active ISA path's copy ----------------------------------------------
void forward_planes(float* y, const float* x, const float* w, const float* b, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_forward_planes(y, x, w, b, g));
}

void backward_data_planes(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_backward_data_planes(dx, dy, w, g));
}

void backward_weight_planes(float* dw, const float* dy, const float* x, const ConvGeom& g) {
  PYENGINE_ISA_DISPATCH(conv2d_backward_weight_planes(dw, dy, x, g));
}

// The phase tables of the planes' backward-data hold at most 64 taps per axis.
bool planes_backward_data_fits(const Conv2dShape& s) { return s.R <= 64 && s.S <= 64; }

// The share of the planes' column grid (Hs x Ws per image) that are real outputs (P x Q).
double planes_efficiency(const Conv2dShape& s, const Conv2dParams& p) {
  const int64_t hs = s.P + (s.R - 1) * p.dilation_h / p.stride_h;
  const int64_t ws = s.Q + (s.S - 1) * p.dilation_w / p.stride_w;
  return static_cast<double>(s.P * s.Q) / static_cast<double>(hs * ws);
}

// ---- direct_1x1 ------------------------------------------------------------------------------
// A 1x1 kernel with stride 1 and no padding reads pixel (p, q) of the input at (p, q): the
// convolution of image n and group g is the GEMM W_g (Kg x Cg) * x[n, g] (Cg x HW), on the NCHW
// planes as they are. Other shapes go to im2col_gemm (documented in conv2d.h).
bool is_direct_1x1(const Conv2dShape& s, const Conv2dParams& p) {
  return s.R == 1 && s.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 &&
         p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}

// One GEMM per (n, g): each spread over the threads when the plane is wide enough, else the
// (n, g) products are shared out whole, each on one thread.
template <class Gemm>
void for_each_image_group(const Conv2dShape& s, const Conv2dParams& p, Gemm&& gemm) {
  const int64_t HW = s.H * s.W;
  const int64_t tasks = s.N * p.groups;
  const int nt = num_threads();
  if (HW >= 256 * nt || tasks < nt) {
    for (int64_t t = 0; t < tasks; ++t) gemm(t / p.groups, t % p.groups, /*parallel=*/true);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t t = 0; t < tasks; ++t) gemm(t / p.groups, t % p.groups, /*parallel=*/false);
}

void forward_1x1(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                 const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = s.C / G, Kg = s.K / G, HW = s.H * s.W;
  for_each_image_group(s, p, [&](int64_t n, int64_t g, bool parallel) {
    GemmEpilogue ep;
    ep.row_bias = b ? b + g * Kg : nullptr;
    const float* xa = x + (n * s.C + g * Cg) * HW;
    float* ya = y + (n * s.K + g * Kg) * HW;
    if (parallel)
      sgemm(false, false, Kg, HW, Cg, 1.0f, w + g * Kg * Cg, Cg, xa, HW, 0.0f, ya, HW, ep);
    else
      sgemm_serial(false, false, Kg, HW, Cg, 1.0f, w + g * Kg * Cg, Cg, xa, HW, 0.0f, ya, HW, ep);
  });
}

void backward_data_1x1(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                       const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = s.C / G, Kg = s.K / G, HW = s.H * s.W;
  for_each_image_group(s, p, [&](int64_t n, int64_t g, bool parallel) {
    // dx[n, g] (Cg x HW) = W_g^T (Cg x Kg) * dy[n, g] (Kg x HW).
    const float* dya = dy + (n * s.K + g * Kg) * HW;
    float* dxa = dx + (n * s.C + g * Cg) * HW;
    if (parallel)
      sgemm(true, false, Cg, HW, Kg, 1.0f, w + g * Kg * Cg, Cg, dya, HW, 0.0f, dxa, HW);
    else
      sgemm_serial(true, false, Cg, HW, Kg, 1.0f, w + g * Kg * Cg, Cg, dya, HW, 0.0f, dxa, HW);
  });
}

}  // namespace

// ---- names -------------------------------------------------------------------------------------
Conv2dAlgo conv2d_algo_from_name(const std::string& name) {
  for (int a = 0; a < static_cast<int>(Conv2dAlgo::kCount); ++a)
    if (name == kConv2dAlgoNames[a]) return static_cast<Conv2dAlgo>(a);
  std::string valid;
  for (int a = 0; a < static_cast<int>(Conv2dAlgo::kCount); ++a)
    valid += std::string(a ? ", " : "") + "'" + kConv2dAlgoNames[a] + "'";
  throw std::invalid_argument("unknown conv2d algorithm '" + name + "'; valid: " + valid);
}

std::vector<std::string> conv2d_algorithm_names() {
  std::vector<std::string> names;
  for (int a = 1; a < static_cast<int>(Conv2dAlgo::kCount); ++a)
    names.push_back(kConv2dAlgoNames[a]);
  return names;
}

// ---- the auto choice ---------------------------------------------------------------------------
// Rules from timings on the benchmark shapes (pyengine/bench/shapes.py; AVX-512, one and two
// threads): Winograd F(4x4,3x3) runs 3x3 stride-1 convolutions in about half the time of any
// GEMM path (the GEMM paths are near the FMA ceiling, Winograd does 4x fewer multiplies), and
// F(2x2,3x3) where there are few tiles per channel pair (many_f4_tiles below); the
// direct depthwise and few-channel kernels beat a GEMM whose K (or M) is 1 to 9; implicit_gemm
// beats im2col_gemm where packing im2col panels is a large share of the work (few channels to
// reuse each panel) and the planes waste little (large planes, mostly real outputs); otherwise
// im2col_gemm.
namespace {

// groups == C > 1 (with C = groups = 1 the depthwise kernel is slower than a GEMM).
bool depthwise_worth_it(const Conv2dShape& s, const Conv2dParams& p) {
  return p.groups > 1 && depthwise_applies(s.C, s.K, p);
}

bool winograd_worth_it(const Conv2dShape& s, const Conv2dParams& p) {
  return winograd_applies(s.R, s.S, p) && s.C / p.groups >= 8 && s.K / p.groups >= 8;
}

// At least a quarter as many 4x4 output tiles as there are input and output channels (per
// group). F(4x4) multiplies 2.25 times per output against F(2x2)'s 4, but its GEMMs read 36
// transformed weight points per channel pair against 16: with few tiles per pair reading the
// weights dominates. A 7x7 plane (res_c5: 32 tiles for 512 x 512 channels; two threads, ms,
// F(2x2) / F(4x4): forward 6.1 / 6.7, backward-data 6.0 / 7.0) goes to F(2x2); res_c4 (128
// tiles for 256 channels: 4.2 / 4.4, even) and mnist_c2, res_c2 (F(4x4) ahead by 15-35%) stay.
bool many_f4_tiles(const Conv2dShape& s, const Conv2dParams& p) {
  const int64_t tiles = s.N * ((s.P + 3) / 4) * ((s.Q + 3) / 4);
  return 4 * tiles >= s.C / p.groups && 4 * tiles >= s.K / p.groups;
}

Conv2dAlgo winograd_variant(const Conv2dShape& s, const Conv2dParams& p) {
  return many_f4_tiles(s, p) ? Conv2dAlgo::winograd_4x4_3x3 : Conv2dAlgo::winograd_2x2_3x3;
}

// The few-channel forward pays off at stride 1 (mnist_c1, 64x1x28x28 -> 32, 3x3, two threads:
// 0.31 ms vs im2col_gemm 0.38); at stride 2 the GEMM's vectorised stride-2 im2col is faster
// (the 7x7 stem, 8x3x224x224 -> 64: 6.4 vs 5.5 ms; one thread 12.9 vs 10.9).
bool small_c_worth_it(const Conv2dShape& s, const Conv2dParams& p) {
  return small_c_applies(s.C, p) && p.stride_h == 1 && p.stride_w == 1;
}

}  // namespace

Conv2dAlgo conv2d_choose_forward(const Conv2dShape& s, const Conv2dParams& p) {
  if (depthwise_worth_it(s, p)) return Conv2dAlgo::direct_depthwise;
  if (winograd_worth_it(s, p)) return winograd_variant(s, p);
  if (is_direct_1x1(s, p)) return Conv2dAlgo::direct_1x1;
  if (small_c_worth_it(s, p)) return Conv2dAlgo::direct_small_c;
  // 5x5, 8x32x56x56 -> 32, two threads: 7.1 ms vs 7.9; with 64 output channels im2col wins.
  if (s.C / p.groups >= 16 && s.K / p.groups <= 32 && planes_efficiency(s, p) >= 0.85)
    return Conv2dAlgo::implicit_gemm;
  return Conv2dAlgo::im2col_gemm;
}

Conv2dAlgo conv2d_choose_backward_data(const Conv2dShape& s, const Conv2dParams& p) {
  if (depthwise_worth_it(s, p)) return Conv2dAlgo::direct_depthwise;
  if (winograd_worth_it(s, p)) return winograd_variant(s, p);
  if (is_direct_1x1(s, p)) return Conv2dAlgo::direct_1x1;
  // 5x5 / 7x7 at stride 1, two threads: 32 channels 7.2 ms vs 9.9, 64 channels 8.2 vs 8.4 and
  // 29.5 vs 30.3; with 128 im2col wins (28.5 vs 32.8).
  if (p.stride_h == 1 && p.stride_w == 1 && s.C / p.groups >= 16 && s.C / p.groups <= 64 &&
      planes_backward_data_fits(s) && planes_efficiency(s, p) >= 0.75)
    return Conv2dAlgo::implicit_gemm;
  return Conv2dAlgo::im2col_gemm;
}

// Winograd's weight gradient reduces over the tiles: F(4x4) wherever there are many tiles for
// the C x K products (many_f4_tiles; its dU, 36 x C x K, is 4x the size of dw and dominates
// with few tiles: res_c5, 32 tiles for 512 x 512 channels, F(4x4) 14.7 ms, F(2x2) 6.8,
// im2col_gemm 5.8) and at least 16 channels each way (its vectors run along the channels: 8
// channels, padded to 16, lose to im2col_gemm, 16x8x56x56 -> 8: 0.84 vs 0.46 ms). Two threads,
// ms, F(4x4) / im2col_gemm: vgg 10.8 / 27, res_c2 2.8 / 7.2, res_c4 3.7 / 6.2, mnist_c2 1.07 /
// 1.9, dilated 3.4 / 7.1, 64x16x28x28 -> 16 0.90 / 2.3.
bool winograd_weight_worth_it(const Conv2dShape& s, const Conv2dParams& p) {
  return winograd_applies(s.R, s.S, p) && s.C / p.groups >= 16 && s.K / p.groups >= 16 &&
         many_f4_tiles(s, p);
}

Conv2dAlgo conv2d_choose_backward_weight(const Conv2dShape& s, const Conv2dParams& p) {
  if (depthwise_worth_it(s, p)) return Conv2dAlgo::direct_depthwise;
  if (winograd_weight_worth_it(s, p)) return Conv2dAlgo::winograd_4x4_3x3;
  // Not direct_small_c: im2col_gemm's backward-weight is as fast or faster on the few-channel
  // shapes since its stride-2 im2col is vectorised (stem, one thread: 23.7 vs 25.2 ms).
  return Conv2dAlgo::im2col_gemm;
}

// ---- dispatch by algorithm ---------------------------------------------------------------------
void conv2d_forward(Conv2dAlgo algo, float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, const Conv2dParams& p) {
  if (s.N == 0) return;  // nothing to write
  if (algo == Conv2dAlgo::auto_select) algo = conv2d_choose_forward(s, p);
  switch (algo) {
    case Conv2dAlgo::implicit_gemm:
      return forward_planes(y, x, w, b, geometry(s, p));
    case Conv2dAlgo::direct_1x1:
      if (is_direct_1x1(s, p)) return forward_1x1(y, x, w, b, s, p);
      break;  // any other shape: im2col_gemm
    case Conv2dAlgo::winograd_2x2_3x3:
    case Conv2dAlgo::winograd_4x4_3x3:
      if (winograd_applies(s.R, s.S, p))
        return winograd_conv2d_forward(algo == Conv2dAlgo::winograd_2x2_3x3 ? 2 : 4, y, x, w, b,
                                       s.N, s.C, s.H, s.W, s.K, p);
      break;
    case Conv2dAlgo::direct_depthwise:
      if (depthwise_applies(s.C, s.K, p))
        return depthwise_conv2d_forward(y, x, w, b, s.N, s.C, s.H, s.W, s.K, s.R, s.S, p);
      break;
    case Conv2dAlgo::direct_small_c:
      if (small_c_applies(s.C, p))
        return small_c_conv2d_forward(y, x, w, b, s.N, s.C, s.H, s.W, s.K, s.R, s.S, p);
      break;
    default:
      break;
  }
  forward_im2col(y, x, w, b, geometry(s, p));
}

void conv2d_backward_data(Conv2dAlgo algo, float* dx, const float* dy, const float* w,
                          const Conv2dShape& s, const Conv2dParams& p) {
  if (s.N == 0) return;
  if (algo == Conv2dAlgo::auto_select) algo = conv2d_choose_backward_data(s, p);
  switch (algo) {
    case Conv2dAlgo::implicit_gemm:
      if (planes_backward_data_fits(s)) return backward_data_planes(dx, dy, w, geometry(s, p));
      break;
    case Conv2dAlgo::direct_1x1:
      if (is_direct_1x1(s, p)) return backward_data_1x1(dx, dy, w, s, p);
      break;
    case Conv2dAlgo::winograd_2x2_3x3:
    case Conv2dAlgo::winograd_4x4_3x3:
      if (winograd_applies(s.R, s.S, p))
        return winograd_conv2d_backward_data(algo == Conv2dAlgo::winograd_2x2_3x3 ? 2 : 4, dx,
                                             dy, w, s.N, s.C, s.H, s.W, s.K, p);
      break;
    case Conv2dAlgo::direct_depthwise:
      if (depthwise_applies(s.C, s.K, p))
        return depthwise_conv2d_backward_data(dx, dy, w, s.N, s.C, s.H, s.W, s.K, s.R, s.S, p);
      break;
    case Conv2dAlgo::direct_small_c:
      // A first layer's data gradient is rarely asked for: the general algorithm that auto
      // picks for this shape.
      return conv2d_backward_data(conv2d_choose_backward_data(s, p), dx, dy, w, s, p);
    default:
      break;
  }
  backward_data_im2col(dx, dy, w, geometry(s, p));
}

void conv2d_backward_weight(Conv2dAlgo algo, float* dw, const float* dy, const float* x,
                            const Conv2dShape& s, const Conv2dParams& p) {
  if (s.N == 0) {  // an empty sum
    std::memset(dw, 0, sizeof(float) * s.K * (s.C / p.groups) * s.R * s.S);
    return;
  }
  if (algo == Conv2dAlgo::auto_select) algo = conv2d_choose_backward_weight(s, p);
  switch (algo) {
    case Conv2dAlgo::implicit_gemm:
      return backward_weight_planes(dw, dy, x, geometry(s, p));
    // direct_1x1: its im2col is a plain copy of x's rows, so the dot-kernel reduction of
    // im2col_gemm is already the direct computation.
    case Conv2dAlgo::direct_depthwise:
      if (depthwise_applies(s.C, s.K, p))
        return depthwise_conv2d_backward_weight(dw, dy, x, s.N, s.C, s.H, s.W, s.K, s.R, s.S, p);
      break;
    case Conv2dAlgo::direct_small_c:
      if (small_c_applies(s.C, p))
        return small_c_conv2d_backward_weight(dw, dy, x, s.N, s.C, s.H, s.W, s.K, s.R, s.S, p);
      break;
    case Conv2dAlgo::winograd_2x2_3x3:
    case Conv2dAlgo::winograd_4x4_3x3:
      if (winograd_applies(s.R, s.S, p))
        return winograd_conv2d_backward_weight(algo == Conv2dAlgo::winograd_2x2_3x3 ? 2 : 4, dw,
                                               dy, x, s.N, s.C, s.H, s.W, s.K, p);
      break;
    default:
      break;
  }
  backward_weight_im2col(dw, dy, x, geometry(s, p));
}

void conv2d_backward_bias(float* db, const float* dy, int64_t N, int64_t K, int64_t PQ) {
  [[maybe_unused]] const int nt = num_threads();
  // One k per iteration, images in order, lanes in a fixed order: the same sum for any thread
  // count.
#pragma omp parallel for num_threads(nt) schedule(static) if (worth_parallel(N * K * PQ))
  for (int64_t k = 0; k < K; ++k) {
    float total = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float* row = dy + (n * K + k) * PQ;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < PQ; ++i) s += row[i];
      total += s;
    }
    db[k] = total;
  }
}

}  // namespace pyengine::cpu
