// Elementwise float32 math that the compiler vectorises: no libm calls, no branches, only
// arithmetic, selects and bit casts, so a loop over these functions becomes SIMD code at the
// ISA of the translation unit that includes this header.
//
// Everything here lives in namespace pyengine::cpu::PYENGINE_ISA_NS (CMake defines the macro per
// ISA path: baseline, avx2, avx512). An inline function compiled once with AVX2 flags and once
// with baseline flags would otherwise be one symbol, and the linker may keep the AVX2 copy for
// baseline callers too.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// exp(x) in float32, within 1.5 ulp of exp where that is a normal float (measured over every
// float in [-86.8, 88.7]), written so that a loop over it vectorises.
//
// x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2; exp(r) by its Taylor polynomial to
// r^7 (truncation below 1e-8 relative, under float32's rounding); 2^n put into the exponent
// bits. Rounding uses the 1.5 * 2^23 trick: adding it leaves round(x / ln2) in the low mantissa
// bits, so n is exact as a float and readable as an integer without a float-to-int conversion
// (which would be undefined for NaN). ln2 is split in two (Cody and Waite) so that n * ln2_hi is
// exact and r keeps its low bits.
//
// Range: results below 2^-125 (x < -86.9) are flushed to 0 rather than computed as subnormals,
// which are slow on x86 and never matter next to the 1 that a softmax row always holds;
// x > ln(FLT_MAX) gives +inf; -inf gives 0; NaN gives NaN.
inline float exp_approx(float x) {
  constexpr float kMin = -86.9f;
  constexpr float kMax = 88.7228394f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;            // 355/512: 9 significant bits
  constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln2 - kLn2Hi
  constexpr float kRound = 12582912.0f;             // 1.5 * 2^23
  constexpr uint32_t kRoundBits = 0x4B400000u;      // float_bits(kRound)

  // Comparisons are false for NaN, so NaN passes both clamps and poisons r below.
  float xc = x < kMin ? kMin : x;
  xc = xc > kMax ? kMax : xc;
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;

  // Estrin-like: the pairs are independent, so the chain of dependent operations is about half
  // as long as Horner's and the CPU overlaps more of them; the 1 + (r + ...) at the end keeps
  // Horner's accuracy (1.5 ulp at most, checked against double exp over every float in range).
  const float r2 = r * r;
  const float r4 = r2 * r2;
  const float p23 = 0.5f + r * (1.0f / 6.0f);
  const float p45 = 1.0f / 24.0f + r * (1.0f / 120.0f);
  const float p67 = 1.0f / 720.0f + r * (1.0f / 5040.0f);
  const float p = 1.0f + (r + (r2 * p23 + r4 * (p45 + r2 * p67)));

  // 2^(n-1) then * 2: n reaches 128 at kMax, whose 2^n has no float exponent; n - 1 does.
  // Unsigned arithmetic so that the garbage bits of a NaN t are harmless (p is NaN then).
  const uint32_t n_bits = float_bits(t) - kRoundBits;  // n as a two's-complement integer
  const float scale = bits_float((n_bits + 126u) << 23);
  float e = p * scale * 2.0f;
  e = x < kMin ? 0.0f : e;
  e = x > kMax ? std::numeric_limits<float>::infinity() : e;
  return e;
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
