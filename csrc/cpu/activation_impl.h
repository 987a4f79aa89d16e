// The activation kernels of activation.h, written once and compiled once per ISA path:
// activation.cpp (baseline), activation_avx2.cpp and activation_avx512.cpp include this file,
// each inside its own namespace pyengine::cpu::PYENGINE_ISA_NS, and export their entry points as
// an ActivationKernels table that activation.cpp picks from at run time. sigmoid and tanh are
// exp-heavy, so the wider paths pay; relu and leaky_relu are pure bandwidth.
//
// Shape letters: n elements (any tensor, flattened).
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/activation_isa.h"
#include "cpu/parallel.h"
#include "cpu/vec_math.h"

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {
namespace {

// The reference's form: e = exp(-|x|) never overflows; 1 / (1 + e) for x >= 0, e / (1 + e)
// otherwise.
inline float sigmoid(float x) {
  const float e = exp_nonpositive(-std::fabs(x));
  const float pos = 1.0f / (1.0f + e);
  return x >= 0.0f ? pos : e * pos;
}

// tanh within a few ulp: (1 - e) / (1 + e) with e = exp(-2|x|), except below |x| = 0.3, where
// 1 - e would cancel and the Taylor series to x^11 is exact to float precision (the next term
// is below 1e-9 relative there). NaN stays NaN (it takes the exp branch); +-inf gives +-1.
inline float tanh_approx(float x) {
  const float ax = std::fabs(x);
  const float e = exp_nonpositive(-2.0f * ax);
  const float big = (1.0f - e) / (1.0f + e);
  const float x2 = ax * ax;
  const float poly =
      -1.0f / 3.0f +
      x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f + x2 * (62.0f / 2835.0f + x2 * (-1382.0f / 155925.0f))));
  const float small = ax + ax * x2 * poly;
  return std::copysign(ax < 0.3f ? small : big, x);
}

// Elements per parallel task, handed out dynamically: a preempted thread holds up one chunk.
constexpr int64_t kChunk = 16384;

template <class Fn>
void for_each_chunk(int64_t n, Fn fn) {
  [[maybe_unused]] const int nt = num_threads();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (worth_parallel(n))
  for (int64_t k = 0; k < chunks; ++k) fn(k * kChunk, (k + 1) * kChunk < n ? (k + 1) * kChunk : n);
}

void activation_forward(float* y, const float* x, int64_t n, Activation kind, float slope) {
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    float* __restrict yo = y;
    const float* __restrict xi = x;
    switch (kind) {
      case Activation::relu:
        // NaN in, NaN out, as torch.relu: the comparison is false for NaN.
        for (int64_t i = b; i < e; ++i) {
          const float v = xi[i];
          yo[i] = v < 0.0f ? 0.0f : v;
        }
        break;
      case Activation::leaky_relu:
        for (int64_t i = b; i < e; ++i) {
          const float v = xi[i];
          yo[i] = v * (v > 0.0f ? 1.0f : slope);  // a select of factors vectorises
        }
        break;
      case Activation::sigmoid:
        for (int64_t i = b; i < e; ++i) yo[i] = sigmoid(xi[i]);
        break;
      case Activation::tanh:
        for (int64_t i = b; i < e; ++i) yo[i] = tanh_approx(xi[i]);
        break;
    }
  });
}

void activation_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                         Activation kind, float slope) {
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    float* __restrict d = dx;
    const float* __restrict g = dy;
    const float* __restrict xi = x;
    const float* __restrict yi = y;
    switch (kind) {
      case Activation::relu:
        // Zero where x <= 0 (relu'(0) = 0); a NaN input lets dy through, as PyTorch.
        // Both loads unconditional, so the select vectorises.
        for (int64_t i = b; i < e; ++i) {
          const float v = xi[i], gi = g[i];
          d[i] = v <= 0.0f ? 0.0f : gi;
        }
        break;
      case Activation::leaky_relu:
        for (int64_t i = b; i < e; ++i) {
          const float v = xi[i], gi = g[i];
          d[i] = gi * (v > 0.0f ? 1.0f : slope);
        }
        break;
      case Activation::sigmoid:
        for (int64_t i = b; i < e; ++i) d[i] = g[i] * (1.0f - yi[i]) * yi[i];
        break;
      case Activation::tanh:
        for (int64_t i = b; i < e; ++i) d[i] = g[i] * (1.0f - yi[i] * yi[i]);
        break;
    }
  });
}

}  // namespace

// The entry points of this ISA path (declared in activation_isa.h).
const ActivationKernels kActivationKernels = {activation_forward, activation_backward};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
