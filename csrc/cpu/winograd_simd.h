// A thin float32 SIMD vector for the specialised convolution kernels (winograd_kernels.h,
// depthwise_kernels.h, conv_small_c_kernels.h): one type, Vec, whose width is that of the
// translation unit's ISA path, so one kernel source compiles into each path. Also the scratch
// buffer those kernels give each thread.
//
//   avx512: __m512, 16 lanes, masked loads/stores for the partial vector at a row's end
//   avx2:   __m256, 8 lanes, FMA, masked loads/stores through vmaskmov
//   baseline (x86-64-v2): __m128, 4 lanes, multiply then add (no FMA on SSE4.2), partial
//           vectors through a small stack copy
//
// Everything lives in namespace pyengine::cpu::PYENGINE_ISA_NS: the same inline function
// compiled with AVX2 and with baseline flags must never become one symbol (see vec_math.h).
// The partial loads never touch memory past the n valid floats, so a row's last vector may end
// exactly at the end of an array.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS::simd {

#if defined(__AVX512F__)

struct Vec {
  __m512 v;
};
constexpr int kLanes = 16;
inline Vec vzero() { return {_mm512_setzero_ps()}; }
inline Vec vset1(float a) { return {_mm512_set1_ps(a)}; }
inline Vec vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void vstore(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
inline __mmask16 lane_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
// The first n lanes (0 <= n <= kLanes) from p, the others 0.
inline Vec vload_part(const float* p, int n) { return {_mm512_maskz_loadu_ps(lane_mask(n), p)}; }
inline void vstore_part(float* p, Vec a, int n) { _mm512_mask_storeu_ps(p, lane_mask(n), a.v); }
inline Vec vadd(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vec vsub(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vec vmul(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
// a * b + c
inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// Written out with zero-masked extracts: GCC 12's _mm512_reduce_add_ps, casts and unmasked
// extracts start from _mm256_undefined_ps, which trips -Wuninitialized inside its headers.
inline float vsum(Vec a) {
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, a.v, 0),
                                 _mm512_maskz_extractf32x8_ps(0xFF, a.v, 1));
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

#elif defined(__AVX2__)

struct Vec {
  __m256 v;
};
constexpr int kLanes = 8;
inline Vec vzero() { return {_mm256_setzero_ps()}; }
inline Vec vset1(float a) { return {_mm256_set1_ps(a)}; }
inline Vec vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline void vstore(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
inline __m256i lane_mask(int n) {
  // Lane i is on when i < n: compare the lane indices with n.
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}
inline Vec vload_part(const float* p, int n) { return {_mm256_maskload_ps(p, lane_mask(n))}; }
inline void vstore_part(float* p, Vec a, int n) { _mm256_maskstore_ps(p, lane_mask(n), a.v); }
inline Vec vadd(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vec vsub(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vec vmul(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline float vsum(Vec a) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

#else  // baseline: SSE4.2

struct Vec {
  __m128 v;
};
constexpr int kLanes = 4;
inline Vec vzero() { return {_mm_setzero_ps()}; }
inline Vec vset1(float a) { return {_mm_set1_ps(a)}; }
inline Vec vload(const float* p) { return {_mm_loadu_ps(p)}; }
inline void vstore(float* p, Vec a) { _mm_storeu_ps(p, a.v); }
inline Vec vload_part(const float* p, int n) {
  alignas(16) float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return {_mm_load_ps(t)};
}
inline void vstore_part(float* p, Vec a, int n) {
  alignas(16) float t[4];
  _mm_store_ps(t, a.v);
  for (int i = 0; i < n; ++i) p[i] = t[i];
}
inline Vec vadd(Vec a, Vec b) { return {_mm_add_ps(a.v, b.v)}; }
inline Vec vsub(Vec a, Vec b) { return {_mm_sub_ps(a.v, b.v)}; }
inline Vec vmul(Vec a, Vec b) { return {_mm_mul_ps(a.v, b.v)}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
inline float vsum(Vec a) {
  const __m128 t = _mm_add_ps(a.v, _mm_movehl_ps(a.v, a.v));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

#endif

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A 64-byte aligned float buffer of one thread, grown on demand; contents undefined until
// written.
class Buffer {
 public:
  float* get(int64_t n) {
    if (n > size_) {
      const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
      ptr_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!ptr_) throw std::bad_alloc();
      size_ = n;
    }
    return ptr_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> ptr_;
  int64_t size_ = 0;
};

}  // namespace pyengine::cpu::PYENGINE_ISA_NS::simd
