// transpose_block: one square float32 block transposed in registers where the ISA has the
// shuffles (16 x 16 with AVX-512, 8 x 8 with AVX2), else a plain 4 x 4 loop. Shared by the GEMM
// packing (gemm_simd.h) and the channels-last copies of the Winograd weight gradient
// (winograd_kernels.h). Like every ISA header it lives in pyengine::cpu::PYENGINE_ISA_NS.
#pragma once

#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

namespace pyengine::cpu::PYENGINE_ISA_NS {

// dst[j*ldd + i] = src[i*lds + j] for i, j < kTB: one square block, in registers where the ISA
// has the shuffles (16 x 16 with AVX-512, 8 x 8 with AVX2), else a plain loop.
#if defined(__AVX512F__)
constexpr int kTB = 16;
inline void transpose_block(const float* __restrict src, int64_t lds, float* __restrict dst,
                            int64_t ldd) {
  // Masked forms with a zero source: GCC 12 warns (falsely) about the undefined source
  // register inside the unmasked shuffles.
  const __m512 z = _mm512_setzero_ps();
  const __m512d zd = _mm512_setzero_pd();
  constexpr __mmask16 all = 0xFFFF;
  constexpr __mmask8 all8 = 0xFF;
  __m512 a[16], c[16];
  for (int i = 0; i < 16; i += 2) {  // a: pairs of rows interleaved within 128-bit lanes
    const __m512 r0 = _mm512_loadu_ps(src + i * lds), r1 = _mm512_loadu_ps(src + (i + 1) * lds);
    a[i] = _mm512_mask_unpacklo_ps(z, all, r0, r1);
    a[i + 1] = _mm512_mask_unpackhi_ps(z, all, r0, r1);
  }
  for (int g = 0; g < 16; g += 4) {  // c[g + m], lane block B: rows g..g+3 of column 4B + m
    for (int h = 0; h < 2; ++h) {
      const __m512d x = _mm512_castps_pd(a[g + h]), y = _mm512_castps_pd(a[g + 2 + h]);
      c[g + 2 * h] = _mm512_castpd_ps(_mm512_mask_unpacklo_pd(zd, all8, x, y));
      c[g + 2 * h + 1] = _mm512_castpd_ps(_mm512_mask_unpackhi_pd(zd, all8, x, y));
    }
  }
  for (int m = 0; m < 4; ++m) {  // gather lane block B of the four row groups: column 4B + m
    const __m512 e0 = _mm512_mask_shuffle_f32x4(z, all, c[m], c[4 + m], 0x44);
    const __m512 e1 = _mm512_mask_shuffle_f32x4(z, all, c[m], c[4 + m], 0xEE);
    const __m512 e2 = _mm512_mask_shuffle_f32x4(z, all, c[8 + m], c[12 + m], 0x44);
    const __m512 e3 = _mm512_mask_shuffle_f32x4(z, all, c[8 + m], c[12 + m], 0xEE);
    _mm512_storeu_ps(dst + m * ldd, _mm512_mask_shuffle_f32x4(z, all, e0, e2, 0x88));
    _mm512_storeu_ps(dst + (4 + m) * ldd, _mm512_mask_shuffle_f32x4(z, all, e0, e2, 0xDD));
    _mm512_storeu_ps(dst + (8 + m) * ldd, _mm512_mask_shuffle_f32x4(z, all, e1, e3, 0x88));
    _mm512_storeu_ps(dst + (12 + m) * ldd, _mm512_mask_shuffle_f32x4(z, all, e1, e3, 0xDD));
  }
}
#elif defined(__AVX2__)
constexpr int kTB = 8;
inline void transpose_block(const float* __restrict src, int64_t lds, float* __restrict dst,
                            int64_t ldd) {
  __m256 a[8], c[8];
  for (int i = 0; i < 8; i += 2) {
    const __m256 r0 = _mm256_loadu_ps(src + i * lds), r1 = _mm256_loadu_ps(src + (i + 1) * lds);
    a[i] = _mm256_unpacklo_ps(r0, r1);
    a[i + 1] = _mm256_unpackhi_ps(r0, r1);
  }
  for (int g = 0; g < 8; g += 4)  // c[g + m], lane block B: rows g..g+3 of column 4B + m
    for (int h = 0; h < 2; ++h) {
      c[g + 2 * h] = _mm256_shuffle_ps(a[g + h], a[g + 2 + h], _MM_SHUFFLE(1, 0, 1, 0));
      c[g + 2 * h + 1] = _mm256_shuffle_ps(a[g + h], a[g + 2 + h], _MM_SHUFFLE(3, 2, 3, 2));
    }
  for (int m = 0; m < 4; ++m) {
    _mm256_storeu_ps(dst + m * ldd, _mm256_permute2f128_ps(c[m], c[4 + m], 0x20));
    _mm256_storeu_ps(dst + (4 + m) * ldd, _mm256_permute2f128_ps(c[m], c[4 + m], 0x31));
  }
}
#else
constexpr int kTB = 4;
inline void transpose_block(const float* __restrict src, int64_t lds, float* __restrict dst,
                            int64_t ldd) {
  for (int i = 0; i < kTB; ++i)
    for (int j = 0; j < kTB; ++j) dst[j * ldd + i] = src[i * lds + j];
}
#endif

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
