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

// k ? a : b through bit masks, never a branch: for selects on data (which tap of a window won),
// where a branch mispredicts about every other time in the scalar tails of vector loops; in
// vector code it is the same blend a ternary gives.
inline float pick(bool k, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(k);
  return bits_float((float_bits(a) & m) | (float_bits(b) & ~m));
}

inline int32_t pick(bool k, int32_t a, int32_t b) {
  const uint32_t m = 0u - static_cast<uint32_t>(k);
  return static_cast<int32_t>((static_cast<uint32_t>(a) & m) | (static_cast<uint32_t>(b) & ~m));
}

// exp(x) = 2^n exp(r) in float32, the two parts shared by exp_approx and exp_nonpositive.
//
// x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2. Rounding uses the 1.5 * 2^23 trick:
// adding it leaves round(x / ln2) in the low mantissa bits, so n is exact as a float and
// readable as an integer without a float-to-int conversion (which would be undefined for NaN).
// ln2 is split in two (Cody and Waite) so that n * ln2_hi is exact and r keeps its low bits.
//
// exp(r) is 1 + r (1 + r q(r)) by Horner's rule, q of degree 4 fitted for the least maximum
// relative error on [-ln2/2, ln2/2] (3.8e-9 with these float coefficients, well below float32's
// rounding): six multiply-adds, where the Taylor series needs a term more for the same error.
struct ExpSplit {
  float t;  // x / ln2 + 1.5 * 2^23: n in its low mantissa bits
  float p;  // exp(r), in [0.7, 1.42]
};

inline ExpSplit exp_split(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;            // 355/512: 9 significant bits
  constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln2 - kLn2Hi
  constexpr float kRound = 12582912.0f;             // 1.5 * 2^23
  const float t = x * kLog2e + kRound;
  const float n = t - kRound;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float q = 1.3814566e-3f;
  q = 8.368708e-3f + r * q;
  q = 4.1668388e-2f + r * q;
  q = 1.6666521e-1f + r * q;
  q = 4.9999994e-1f + r * q;
  q = 1.0f + r * q;
  return {t, 1.0f + r * q};
}

// n, read from the bits of exp_split's t, as a two's-complement integer. Unsigned arithmetic,
// so that the garbage bits of a NaN t are harmless (p is NaN then).
inline uint32_t exp_split_n(float t) {
  constexpr uint32_t kRoundBits = 0x4B400000u;  // float_bits(1.5 * 2^23)
  return float_bits(t) - kRoundBits;
}

// Below this, exp's result (under 2^-125) is flushed to 0 rather than computed as a subnormal:
// subnormals are slow on x86 and never matter next to the 1 that a softmax row always holds.
constexpr float kExpFlush = -86.9f;

// exp(x) in float32, written so that a loop over it vectorises. Measured over every float in
// [-86.9, 88.7] against double exp, where that is a normal float: within 0.91 ulp on the AVX2
// and AVX-512 paths, 1.18 ulp on the baseline path (no fused multiply-add).
// x < -86.9 gives 0 (kExpFlush); x > ln(FLT_MAX) gives +inf; -inf gives 0; NaN gives NaN.
inline float exp_approx(float x) {
  constexpr float kMax = 88.7228394f;
  // Comparisons are false for NaN, so NaN passes both clamps and poisons p.
  float xc = x < kExpFlush ? kExpFlush : x;
  xc = xc > kMax ? kMax : xc;
  const ExpSplit s = exp_split(xc);
  // 2^(n-1) then * 2: n reaches 128 at kMax, whose 2^n has no float exponent; n - 1 does.
  const float scale = bits_float((exp_split_n(s.t) + 126u) << 23);
  float e = s.p * scale * 2.0f;
  e = x < kExpFlush ? 0.0f : e;
  e = x > kMax ? std::numeric_limits<float>::infinity() : e;
  return e;
}

// Up to here (n <= 127), exp_nonpositive gives exp_approx's results.
constexpr float kExpNonpositiveMax = 88.0f;

// exp_approx for arguments up to kExpNonpositiveMax, as in a softmax, whose x - max(x) is <= 0:
// the same results at about half the instructions, with no upper clamp, no overflow select and
// 2^n built directly. The AVX-512 path folds the flush into masked operations. Above 88.3 the
// result is garbage: callers that cannot rule such arguments out check for them.
inline float exp_nonpositive(float x) {
  // The clamp keeps the discarded lanes' arithmetic finite and normal (no slow subnormal
  // products, no inf - inf for x = -inf) on paths that compute them and then select.
  const ExpSplit s = exp_split(x < kExpFlush ? kExpFlush : x);
  const float e = s.p * bits_float((exp_split_n(s.t) + 127u) << 23);
  return x < kExpFlush ? 0.0f : e;
}

// log(x) in float32, within 1 ulp of log (checked against double log over every positive
// float), written so that a loop over it vectorises: libm's logf is a call per element, which
// costs more than the rest of a log_softmax over a short dimension.
//
// x = 2^k * (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), read from the bits (subnormals are
// first scaled by 2^23); log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), with
// R the minimax polynomial of FreeBSD's logf (error below 2^-34 on this interval); k ln2 added
// in two parts (Cody and Waite) so that k * ln2_hi is exact. log(+inf) = +inf, log(0) = -inf,
// log of a negative number or NaN is NaN.
inline float log_approx(float x) {
  constexpr float kMinNormal = 1.17549435e-38f;  // 2^-126
  constexpr uint32_t kSqrtHalfBits = 0x3f3504f3u;  // float_bits(sqrt(1/2))
  constexpr float kLn2Hi = 6.9313812256e-01f;      // ln2 to 16 significant bits
  constexpr float kLn2Lo = 9.0580006145e-06f;      // ln2 - kLn2Hi
  constexpr float kLg1 = 0.66666662693f, kLg2 = 0.40000972152f;
  constexpr float kLg3 = 0.28498786688f, kLg4 = 0.24279078841f;

  const bool sub = x < kMinNormal;
  const float xs = sub ? x * 8388608.0f : x;  // 2^23
  // Shift the bits so that the exponent field of xs * sqrt(2) is k's and the mantissa, moved
  // back by sqrt(1/2), is 1 + f in [sqrt(1/2), sqrt(2)). Unsigned, so any input is harmless.
  const uint32_t ix = float_bits(xs) + (0x3f800000u - kSqrtHalfBits);
  const int32_t k = static_cast<int32_t>(ix >> 23) - 127 - (sub ? 23 : 0);
  const float f = bits_float((ix & 0x007fffffu) + kSqrtHalfBits) - 1.0f;

  const float s = f / (2.0f + f);
  const float z = s * s;
  const float w = z * z;
  const float r = z * (kLg1 + w * kLg3) + w * (kLg2 + w * kLg4);
  const float hfsq = 0.5f * f * f;
  const float dk = static_cast<float>(k);
  float y = s * (hfsq + r) + dk * kLn2Lo - hfsq + f + dk * kLn2Hi;
  y = x == std::numeric_limits<float>::infinity() ? x : y;
  y = x == 0.0f ? -std::numeric_limits<float>::infinity() : y;
  y = x >= 0.0f ? y : std::numeric_limits<float>::quiet_NaN();  // negative or NaN
  return y;
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
