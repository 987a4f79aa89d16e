// Runtime choice of the ISA path of the CPU kernels: baseline (x86-64-v2: SSE4.2), avx2
// (x86-64-v3: AVX2 + FMA + F16C + BMI1/2 + LZCNT), avx512 (x86-64-v4: AVX-512 F/BW/CD/DQ/VL).
//
// A path runs only when the build compiled it (CMake defines PYENGINE_HAVE_AVX2 /
// PYENGINE_HAVE_AVX512 for the kernels library when csrc/cpu holds *_avx2.cpp / *_avx512.cpp
// files) and this CPU (and its OS, which must save the wider registers) supports it. The module
// chooses once, at import (select_isa_from_env): the best path available, or the one that
// PYENGINE_ISA=baseline|avx2|avx512 names; a name that is unknown, not compiled or not supported
// by this CPU is an error, never a silent fallback (a test that forces a path must run that path).
//
// How a kernel uses it. Each ISA translation unit defines its entry points in namespace
// pyengine::cpu::PYENGINE_ISA_NS (baseline, avx2 or avx512); one ISA-neutral header declares them
// for every path with PYENGINE_ISA_DECLARE, and the public function (in a baseline file) calls
// the active path's copy with PYENGINE_ISA_DISPATCH:
//
//     // op_impl.h (no intrinsics, included anywhere)
//     namespace pyengine::cpu { PYENGINE_ISA_DECLARE(void op_impl(float* y, const float* x)) }
//     // op.cpp, op_avx2.cpp, op_avx512.cpp: each `#include "cpu/op_kernels.inc"`, which defines
//     //   namespace pyengine::cpu::PYENGINE_ISA_NS { void op_impl(float* y, const float* x) {..} }
//     // op.cpp, once, outside the ISA namespace:
//     void op(float* y, const float* x) { PYENGINE_ISA_DISPATCH(op_impl(y, x)); }
//
// PYENGINE_ISA_DISPATCH expands to `switch (active_isa()) { case ...: return <isa>::call; }`,
// so it must be the body's last statement, and the function must exist in every compiled path
// (an op that has only some ISA files cannot use it).
#pragma once

#include <string>
#include <vector>

namespace pyengine::cpu {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

// "baseline", "avx2", "avx512".
const char* isa_name(Isa isa);

// Every path by increasing width.
inline constexpr Isa kAllIsas[] = {Isa::baseline, Isa::avx2, Isa::avx512};

// True when this build compiled the path (baseline always).
bool isa_compiled(Isa isa);

// True when this CPU and OS can run the path's instructions (baseline: SSE4.2 and POPCNT).
bool isa_supported(Isa isa);

// The CPU features a path needs that this CPU lacks (empty when it runs here).
std::vector<std::string> isa_missing_features(Isa isa);

// The widest path that is both compiled and supported.
Isa best_isa();

// Chooses the active path from PYENGINE_ISA (unset, empty or "auto": best_isa()). Throws
// std::runtime_error naming the problem for an unknown value or a path that the build or this
// CPU lacks. The module calls it once at import.
Isa select_isa_from_env();

// The path the kernels run (best_isa() until select_isa_from_env has chosen).
Isa active_isa();

}  // namespace pyengine::cpu

// Declares `decl` in each ISA namespace; use inside namespace pyengine::cpu.
#define PYENGINE_ISA_DECLARE(...)  \
  namespace baseline {             \
  __VA_ARGS__;                     \
  }                                \
  namespace avx2 {                 \
  __VA_ARGS__;                     \
  }                                \
  namespace avx512 {               \
  __VA_ARGS__;                     \
  }

#if defined(PYENGINE_HAVE_AVX512)
#define PYENGINE_ISA_CASE_AVX512_(...) \
  case ::pyengine::cpu::Isa::avx512:   \
    return ::pyengine::cpu::avx512::__VA_ARGS__;
#else
#define PYENGINE_ISA_CASE_AVX512_(...)
#endif
#if defined(PYENGINE_HAVE_AVX2)
#define PYENGINE_ISA_CASE_AVX2_(...) \
  case ::pyengine::cpu::Isa::avx2:   \
    return ::pyengine::cpu::avx2::__VA_ARGS__;
#else
#define PYENGINE_ISA_CASE_AVX2_(...)
#endif

// `return <active isa namespace>::call;` -- see the header comment.
#define PYENGINE_ISA_DISPATCH(...)                          \
  switch (::pyengine::cpu::active_isa()) {                  \
    PYENGINE_ISA_CASE_AVX512_(__VA_ARGS__)                  \
    PYENGINE_ISA_CASE_AVX2_(__VA_ARGS__)                    \
    default:                                                \
      return ::pyengine::cpu::baseline::__VA_ARGS__;        \
  }
