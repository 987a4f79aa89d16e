// The GEMM's building blocks for one ISA path: a thin vector type, the register-blocked
// micro-kernels, packing of A and B into micro-panels, and the cache-blocked driver loop that
// sgemm and the implicit-GEMM convolutions (conv2d_impl.h) share.
//
// Include only from a per-ISA translation unit (gemm.cpp / gemm_avx2.cpp / gemm_avx512.cpp and
// the conv2d ones): everything here is compiled for that unit's ISA and lives in namespace
// pyengine::cpu::PYENGINE_ISA_NS, so no inline or template copy of one ISA can be linked into
// another's code.
//
// Shape letters: C (M x N) += A (M x K) * B (K x N); MR x NR the register tile; KC, NC the cache
// blocks. Packed A: for each K block, row panels of MR rows stored k-major (kc x MR, the MR
// values of one k adjacent), rows past M zero. Packed B: column panels of NR columns stored
// k-major (kc x NR), columns past N zero. The micro-kernel broadcasts one A value and multiplies
// it by NR/W vectors of B, so C is produced in rows of NR contiguous floats.
//
// Kernels:
//   ukernel    C tile (MR x NR) from packed panels: the broadcast ("outer product") kernel of
//              sgemm and of every GEMM of the convolutions.
//   ukernel_direct_accumulate  the same with B read in place from offset rows of a source
//              buffer (conv on zero-padded planes: no B packing at all).
//   transpose_block  a square block in registers (16x16 / 8x8), for packing transposed panels
//              (cpu/transpose_simd.h).
//   dot_tile   out (DMR x DNR) = A rows . B rows, both contiguous along the reduction: conv
//              backward-weight with few output channels, whose reduction runs along the pixels,
//              the contiguous dimension of both dy and x (no transposition needed).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef PYENGINE_ISA_NS
#error "PYENGINE_ISA_NS is undefined: build csrc/cpu through CMakeLists.txt, which sets it per ISA"
#endif

#include "cpu/transpose_simd.h"

namespace pyengine::cpu::PYENGINE_ISA_NS {

// ---- the vector type of this ISA ------------------------------------------------------------
// relu uses max(0, v): x86 max returns its second operand when either is NaN, so NaN passes
// through as in PyTorch's relu.
#if defined(__AVX512F__)
struct V {
  using T = __m512;
  static constexpr int W = 16;
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T zero() { return _mm512_setzero_ps(); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  // The masked forms with an explicit source: GCC 12 warns (falsely) about the undefined
  // source register inside the unmasked _mm512_max_ps / _mm512_extractf64x4_pd (which
  // _mm512_castps512_ps256 also uses).
  static T relu(T a) {
    const T z = _mm512_setzero_ps();
    return _mm512_mask_max_ps(z, 0xFFFF, z, a);
  }
  // The first n < W lanes (the others read as zero / left alone); masked lanes never fault.
  static T load_n(const float* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static void store_n(float* p, T v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
  static float hsum(T a) {
    const __m512d ad = _mm512_castps_pd(a);
    const __m256d lo = _mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xF, ad, 0);
    const __m256d hi = _mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xF, ad, 1);
    const __m256 h = _mm256_add_ps(_mm256_castpd_ps(lo), _mm256_castpd_ps(hi));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};
// 8 x 48: 24 zmm accumulators + 3 B vectors + 1 broadcast of the 32 registers; M = 8 divides
// the channel counts of CNNs. A panel (8 x KC) stays in L1, B panels stream from L2.
constexpr int kMR = 8;
constexpr int kNR = 48;
constexpr int64_t kKC = 384;
constexpr int64_t kNC = 480;
// dot_tile: 4 x 4 accumulators, reduced together by reduce16 (one lane per sum).
constexpr int kDMR = 4;
constexpr int kDNR = 4;
#elif defined(__AVX2__) && defined(__FMA__)
struct V {
  using T = __m256;
  static constexpr int W = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T zero() { return _mm256_setzero_ps(); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T relu(T a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }
  // The first n < W lanes (the others read as zero / left alone); masked lanes never fault.
  static __m256i mask_n(int n) {
    alignas(32) static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                  0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
  }
  static T load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask_n(n)); }
  static void store_n(float* p, T v, int n) { _mm256_maskstore_ps(p, mask_n(n), v); }
  static float hsum(T a) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};
// 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast of the 16 registers.
constexpr int kMR = 6;
constexpr int kNR = 16;
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 512;
constexpr int kDMR = 3;
constexpr int kDNR = 4;
#elif defined(__SSE2__)
struct V {
  using T = __m128;
  static constexpr int W = 4;
  static T load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, T v) { _mm_storeu_ps(p, v); }
  static T set1(float x) { return _mm_set1_ps(x); }
  static T zero() { return _mm_setzero_ps(); }
  // No FMA before AVX2: a multiply then an add (one more rounding than the other paths).
  static T fma(T a, T b, T c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static T add(T a, T b) { return _mm_add_ps(a, b); }
  static T mul(T a, T b) { return _mm_mul_ps(a, b); }
  static T relu(T a) { return _mm_max_ps(_mm_setzero_ps(), a); }
  // The first n < W lanes (the others read as zero / left alone).
  static T load_n(const float* p, int n) {
    alignas(16) float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; ++i) t[i] = p[i];
    return _mm_load_ps(t);
  }
  static void store_n(float* p, T v, int n) {
    alignas(16) float t[4];
    _mm_store_ps(t, v);
    for (int i = 0; i < n; ++i) p[i] = t[i];
  }
  static float hsum(T a) {
    __m128 q = _mm_add_ps(a, _mm_movehl_ps(a, a));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
  }
};
// 4 x 8: 8 xmm accumulators + 2 B + 1 broadcast + 1 product temporary.
constexpr int kMR = 4;
constexpr int kNR = 8;
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 512;
constexpr int kDMR = 2;
constexpr int kDNR = 4;
#else  // not x86: plain floats; the compiler may still vectorise the loops.
struct V {
  using T = float;
  static constexpr int W = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T set1(float x) { return x; }
  static T zero() { return 0.0f; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
  static T relu(T a) { return a < 0.0f ? 0.0f : a; }
  static T load_n(const float*, int) { return 0.0f; }  // n < W = 1: nothing to load
  static void store_n(float*, T, int) {}
  static float hsum(T a) { return a; }
};
constexpr int kMR = 4;
constexpr int kNR = 4;
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 256;
constexpr int kDMR = 2;
constexpr int kDNR = 2;
#endif

constexpr int kNV = kNR / V::W;  // B vectors per k in the micro-kernel
static_assert(kNR % V::W == 0, "NR must be a whole number of vectors");

// Scalar relu with the same NaN rule as V::relu.
inline float relu_scalar(float v) { return v < 0.0f ? 0.0f : v; }

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- buffers -------------------------------------------------------------------------------
// A 64-byte aligned scratch array (packed panels are read with whole-vector loads). Our own
// rather than std::vector: a standard-library template instantiated in several ISA units would
// be one weak symbol, and the linker could hand one ISA's copy to another's callers.
template <class T>
class BufferOf {
 public:
  BufferOf() = default;
  explicit BufferOf(int64_t n) { reset(n); }
  ~BufferOf() { std::free(p_); }
  BufferOf(const BufferOf&) = delete;
  BufferOf& operator=(const BufferOf&) = delete;
  void reset(int64_t n) {
    std::free(p_);
    p_ = nullptr;
    if (n <= 0) return;
    const size_t bytes = static_cast<size_t>(round_up(n * static_cast<int64_t>(sizeof(T)), 64));
    p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p_) throw std::bad_alloc();
  }
  T* get() const { return p_; }
  T& operator[](int64_t i) const { return p_[i]; }

 private:
  T* p_ = nullptr;
};
using Buffer = BufferOf<float>;

// ---- threads ---------------------------------------------------------------------------------
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}
inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// [begin, end) of part t of `units` split into `parts` near-equal contiguous ranges.
inline void split_range(int64_t units, int parts, int t, int64_t& begin, int64_t& end) {
  begin = units * t / parts;
  end = units * (t + 1) / parts;
}

// ---- K blocking ------------------------------------------------------------------------------
// K cut into `count` blocks of `kc` (the last one shorter). Equal blocks rather than KC, KC,
// remainder: a short last block would cost a full pass over C for little work.
struct KBlocks {
  int64_t count = 1;
  int64_t kc = 0;
  KBlocks() = default;
  KBlocks(int64_t K, int64_t max_kc) {
    count = K > 0 ? ceil_div(K, max_kc) : 1;
    kc = K > 0 ? ceil_div(K, count) : 0;
  }
  int64_t begin(int64_t b) const { return b * kc; }
  int64_t size(int64_t b, int64_t K) const {
    const int64_t rest = K - b * kc;
    return rest < kc ? rest : kc;
  }
};

// ---- the broadcast micro-kernel -------------------------------------------------------------
// What happens to a C tile after the product: c = alpha * ab + beta * c_old (+ row_bias[i])
// (+ col_bias[j]), then relu. beta == 0: c_old is never read. The pointers are already offset
// to the tile's first row / column.
struct TileEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* row_bias = nullptr;
  const float* col_bias = nullptr;
  bool relu = false;
};

// acc = sum over k < kc of a[k*MR + i] * b[k*NR + j], in k order (fixed rounding).
inline void ukernel_accumulate(int64_t kc, const float* __restrict a, const float* __restrict b,
                               typename V::T (&acc)[kMR][kNV]) {
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    typename V::T bv[kNV];
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const typename V::T av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) acc[i][v] = V::fma(av, bv[v], acc[i][v]);
    }
    a += kMR;
    b += kNR;
  }
}

// c[i*ldc + t] = epilogue(tile[i*ldt + t]) for i < mr, t < cols: the store of a computed tile
// (tile: the raw product, before alpha). Whole vectors, then one masked vector for the tail.
inline void store_tile_rows(const float* __restrict tile, int64_t ldt, int mr, int64_t cols,
                            float* __restrict c, int64_t ldc, const TileEpilogue& e) {
  const typename V::T alpha = V::set1(e.alpha);
  const typename V::T beta = V::set1(e.beta);
  for (int i = 0; i < mr; ++i) {
    const float* tr = tile + i * ldt;
    float* cr = c + i * ldc;
    const typename V::T rb = V::set1(e.row_bias ? e.row_bias[i] : 0.0f);
    auto finish = [&](typename V::T r, int64_t t, int n) {  // n == W: a whole vector
      r = V::mul(r, alpha);
      if (e.beta != 0.0f) r = V::fma(beta, n == V::W ? V::load(cr + t) : V::load_n(cr + t, n), r);
      if (e.row_bias) r = V::add(r, rb);
      if (e.col_bias)
        r = V::add(r, n == V::W ? V::load(e.col_bias + t) : V::load_n(e.col_bias + t, n));
      if (e.relu) r = V::relu(r);
      return r;
    };
    int64_t t = 0;
    for (; t + V::W <= cols; t += V::W) V::store(cr + t, finish(V::load(tr + t), t, V::W));
    if (t < cols) {
      const int n = static_cast<int>(cols - t);
      V::store_n(cr + t, finish(V::load_n(tr + t, n), t, n), n);
    }
  }
}

// C tile (rows c + i*ldc, i < mr, columns j < nr) from one packed A panel and one packed B
// panel. The packed panels are zero past mr / nr, so the kernel always computes a full tile
// and stores only its mr x nr part.
inline void ukernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                    float* __restrict c, int64_t ldc, int mr, int nr, const TileEpilogue& e) {
  typename V::T acc[kMR][kNV];
  ukernel_accumulate(kc, a, b, acc);
  if (mr == kMR && nr == kNR) {
    const typename V::T alpha = V::set1(e.alpha);
    const typename V::T beta = V::set1(e.beta);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) {
        float* cp = c + i * ldc + v * V::W;
        typename V::T r = V::mul(acc[i][v], alpha);
        if (e.beta != 0.0f) r = V::fma(beta, V::load(cp), r);
        if (e.row_bias) r = V::add(r, V::set1(e.row_bias[i]));
        if (e.col_bias) r = V::add(r, V::load(e.col_bias + v * V::W));
        if (e.relu) r = V::relu(r);
        V::store(cp, r);
      }
    return;
  }
  alignas(64) float tile[kMR * kNR];
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNV; ++v) V::store(tile + i * kNR + v * V::W, acc[i][v]);
  store_tile_rows(tile, kNR, mr, nr, c, ldc, e);
}

// The raw product of a full tile (no epilogue) into tile[kMR * kNR], row stride kNR: for sinks
// that put the result somewhere other than a row-major C (scatter across images, col2im).
inline void ukernel_to_tile(int64_t kc, const float* __restrict a, const float* __restrict b,
                            float* __restrict tile) {
  typename V::T acc[kMR][kNV];
  ukernel_accumulate(kc, a, b, acc);
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) V::store(tile + i * kNR + v * V::W, acc[i][v]);
}

// ---- packing of plain matrices --------------------------------------------------------------
// op(A) (rows x K, row-major, or its transpose when trans) rows [i0, i0 + rows), k in
// [k0, k0 + kc) into ceil(rows / MR) panels of kc x MR at dst.
inline void pack_a_panel(const float* __restrict a, int64_t lda, bool trans, int64_t i0,
                         int64_t rows, int64_t k0, int64_t kc, float* __restrict dst) {
  if (trans) {  // A(i, k) = a[k*lda + i]: the MR values of one k are contiguous
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = a + (k0 + k) * lda + i0;
      float* d = dst + k * kMR;
      int64_t i = 0;
      for (; i < rows; ++i) d[i] = src[i];
      for (; i < kMR; ++i) d[i] = 0.0f;
    }
    return;
  }
  // A(i, k) = a[i*lda + k]: read each row once, write with stride MR.
  for (int64_t i = 0; i < kMR; ++i) {
    float* d = dst + i;
    if (i < rows) {
      const float* src = a + (i0 + i) * lda + k0;
      for (int64_t k = 0; k < kc; ++k) d[k * kMR] = src[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) d[k * kMR] = 0.0f;
    }
  }
}

// op(B) (K x cols; b holds it row-major, or its transpose when trans) k in [k0, k0 + kc),
// columns [j0, j0 + cols) with cols <= NR into one kc x NR panel at dst.
inline void pack_b_panel(const float* __restrict b, int64_t ldb, bool trans, int64_t k0,
                         int64_t kc, int64_t j0, int64_t cols, float* __restrict dst) {
  if (!trans) {  // B(k, j) = b[k*ldb + j]: rows of NR contiguous floats
    if (cols == kNR) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b + (k0 + k) * ldb + j0;
        float* d = dst + k * kNR;
        for (int v = 0; v < kNV; ++v) V::store(d + v * V::W, V::load(src + v * V::W));
      }
      return;
    }
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = b + (k0 + k) * ldb + j0;
      float* d = dst + k * kNR;
      int64_t j = 0;
      for (; j < cols; ++j) d[j] = src[j];
      for (; j < kNR; ++j) d[j] = 0.0f;
    }
    return;
  }
  // B(k, j) = b[j*ldb + k]: each source row j is contiguous along k; transpose in blocks of
  // 8 k so that both the reads (8 consecutive floats of each row) and the writes (8 rows of
  // the panel) stay within a few cache lines.
  constexpr int64_t kBlk = 8;
  int64_t kb = 0;
  for (; kb + kBlk <= kc; kb += kBlk) {
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = b + (j0 + j) * ldb + k0 + kb;
      float* d = dst + kb * kNR + j;
#pragma GCC unroll 8
      for (int64_t t = 0; t < kBlk; ++t) d[t * kNR] = src[t];
    }
    for (int64_t j = cols; j < kNR; ++j)
      for (int64_t t = 0; t < kBlk; ++t) dst[(kb + t) * kNR + j] = 0.0f;
  }
  for (; kb < kc; ++kb) {
    float* d = dst + kb * kNR;
    int64_t j = 0;
    for (; j < cols; ++j) d[j] = b[(j0 + j) * ldb + k0 + kb];
    for (; j < kNR; ++j) d[j] = 0.0f;
  }
}

// The ceil(nc / NR) panels of op(B) rows [k0, k0 + kc), columns [jc, jc + nc) at dst. Without
// transposition each source row is read once along the whole block (one sequential stream per
// row, which the hardware prefetcher follows) and dealt out to the panels; panel by panel
// would touch kc rows for only NR floats each.
inline void pack_b_block(const float* __restrict b, int64_t ldb, bool trans, int64_t k0,
                         int64_t kc, int64_t jc, int64_t nc, float* __restrict dst) {
  if (trans) {
    for (int64_t jr = 0; jr < nc; jr += kNR)
      pack_b_panel(b, ldb, true, k0, kc, jc + jr, (nc - jr) < kNR ? (nc - jr) : kNR,
                   dst + jr * kc);
    return;
  }
  const int64_t full = nc / kNR;
  const int64_t rest = nc - full * kNR;
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = b + (k0 + k) * ldb + jc;
    for (int64_t p = 0; p < full; ++p) {
      float* d = dst + p * kNR * kc + k * kNR;
      const float* s = src + p * kNR;
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) V::store(d + v * V::W, V::load(s + v * V::W));
    }
    if (rest) {
      float* d = dst + full * kNR * kc + k * kNR;
      const float* s = src + full * kNR;
      int64_t j = 0;
      for (; j < rest; ++j) d[j] = s[j];
      for (; j < kNR; ++j) d[j] = 0.0f;
    }
  }
}

// ---- the blocked driver ----------------------------------------------------------------------
// Sweeps columns [j_begin, j_end) and rows [i_begin, i_end) of C:
//   for each NC block of columns, for each K block: pack B (pack_b), then for each MR row panel
//   (its packed A stays in L1) and each NR column panel (streamed from L2): sink(...).
// Ap: the packed A of rows [a_row0, ...) for every K block: the block starting at k0 begins at
// Ap + k0 * a_rows_padded, its panels kc x MR each; i_begin - a_row0 must be a multiple of MR.
// pack_b(k0, kc, j0, nc, dst): fill ceil(nc / NR) panels of kc x NR (zero past nc).
// sink(i, j, mr, nr, kc, a_panel, b_panel, first_k_block, last_k_block): compute and store.
// bbuf holds KC * NC floats. The order of the K blocks is fixed, so every C element is summed
// in the same order whatever the split of rows and columns between threads.
template <class PackB, class Sink>
void blocked_gemm(int64_t K, const KBlocks& kb, int64_t i_begin, int64_t i_end,
                  int64_t j_begin, int64_t j_end, const float* Ap, int64_t a_row0,
                  int64_t a_rows_padded, int64_t nc_max, float* bbuf, PackB&& pack_b,
                  Sink&& sink) {
  for (int64_t jc = j_begin; jc < j_end; jc += nc_max) {
    const int64_t nc = (j_end - jc) < nc_max ? (j_end - jc) : nc_max;
    for (int64_t b = 0; b < kb.count; ++b) {
      const int64_t k0 = kb.begin(b);
      const int64_t kc = kb.size(b, K);
      pack_b(k0, kc, jc, nc, bbuf);
      const float* a_block = Ap + k0 * a_rows_padded;
      for (int64_t ic = i_begin; ic < i_end; ic += kMR) {
        const int mr = static_cast<int>((i_end - ic) < kMR ? (i_end - ic) : kMR);
        const float* ap = a_block + (ic - a_row0) * kc;
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int nr = static_cast<int>((nc - jr) < kNR ? (nc - jr) : kNR);
          sink(ic, jc + jr, mr, nr, kc, ap, bbuf + jr * kc, b == 0, b == kb.count - 1);
        }
      }
    }
  }
}

// Packs every K block of op(A) rows [0, rows) into dst (rows_padded * K floats, the layout
// blocked_gemm reads). pack_a_all spreads the panels over the threads of the enclosing parallel
// region (`omp for`, ending with a barrier): call it from every thread of a team that the caller
// opened itself, never from code that may run inside someone else's region (the orphaned
// `omp for` would bind to that team); pack_a_all_serial packs them all on the calling thread.
inline void pack_a_one(const float* a, int64_t lda, bool trans, int64_t rows, int64_t K,
                       const KBlocks& kb, float* dst, int64_t t) {
  const int64_t panels = ceil_div(rows, kMR);
  const int64_t b = t / panels;
  const int64_t p = t % panels;
  const int64_t k0 = kb.begin(b);
  const int64_t kc = kb.size(b, K);
  const int64_t i0 = p * kMR;
  pack_a_panel(a, lda, trans, i0, (rows - i0) < kMR ? (rows - i0) : kMR, k0, kc,
               dst + k0 * panels * kMR + i0 * kc);
}

inline void pack_a_all(const float* a, int64_t lda, bool trans, int64_t rows, int64_t K,
                       const KBlocks& kb, float* dst) {
  const int64_t tasks = kb.count * ceil_div(rows, kMR);
#pragma omp for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) pack_a_one(a, lda, trans, rows, K, kb, dst, t);
}

inline void pack_a_all_serial(const float* a, int64_t lda, bool trans, int64_t rows, int64_t K,
                              const KBlocks& kb, float* dst) {
  const int64_t tasks = kb.count * ceil_div(rows, kMR);
  for (int64_t t = 0; t < tasks; ++t) pack_a_one(a, lda, trans, rows, K, kb, dst, t);
}

// ---- transposes: transpose_block and kTB (cpu/transpose_simd.h) ---------------------------
static_assert(kNR % kTB == 0, "NR must be a whole number of transpose blocks");

// ---- the direct micro-kernel -----------------------------------------------------------------
// acc = sum over k < kc of a[k*MR + i] * src[off[k] + j]: like ukernel_accumulate, but B is
// read in place: row k of B is the contiguous stretch of a source buffer at offset off[k] (a
// zero-padded input plane, shifted by the tap), so no B panel is packed.
inline void ukernel_direct_accumulate(int64_t kc, const float* __restrict a,
                                      const float* __restrict src, const int64_t* __restrict off,
                                      typename V::T (&acc)[kMR][kNV]) {
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = src + off[k];
    typename V::T bv[kNV];
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const typename V::T av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) acc[i][v] = V::fma(av, bv[v], acc[i][v]);
    }
    a += kMR;
  }
}

// ---- the dot kernel --------------------------------------------------------------------------
// out[i*ldo + j] (= or +=) sum over t < len of a[i][t] * b[j][t] for i < mr, j < nr: rows given
// by pointers (kDMR and kDNR of them; callers repeat the last valid row past mr / nr, computed
// and never stored), len a multiple of V::W (callers pad with zeros). Each sum keeps one partial
// per vector lane, then adds the lanes in a fixed order.
#if defined(__AVX512F__)
// The 16 sums of acc[i][j] (16 lanes each) as one vector, lane 4i + j: pairs of vectors are
// interleaved and added within 128-bit lanes (8, then 4 vectors), then the four 128-bit lanes
// are added across: 45 operations instead of 16 separate horizontal sums.
inline __m512 reduce16(const __m512 (&acc)[4][4]) {
  // The masked forms (all lanes) with a zero source: see V::relu for GCC 12's false warning.
  const __m512 z = _mm512_setzero_ps();
  constexpr __mmask16 all = 0xFFFF;
  __m512 t[8];
  for (int u = 0; u < 8; ++u) {
    const __m512 x = acc[(2 * u) / 4][(2 * u) % 4];
    const __m512 y = acc[(2 * u + 1) / 4][(2 * u + 1) % 4];
    t[u] = _mm512_add_ps(_mm512_mask_unpacklo_ps(z, all, x, y),
                         _mm512_mask_unpackhi_ps(z, all, x, y));
  }
  __m512 w[4];
  for (int m = 0; m < 4; ++m)
    w[m] = _mm512_add_ps(
        _mm512_mask_shuffle_ps(z, all, t[2 * m], t[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
        _mm512_mask_shuffle_ps(z, all, t[2 * m], t[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // w[m], 128-bit lane L: the lane-L partial sums of acc[m][0..3].
  const __m512 y01 = _mm512_add_ps(_mm512_mask_shuffle_f32x4(z, all, w[0], w[1], 0x44),
                                   _mm512_mask_shuffle_f32x4(z, all, w[0], w[1], 0xEE));
  const __m512 y23 = _mm512_add_ps(_mm512_mask_shuffle_f32x4(z, all, w[2], w[3], 0x44),
                                   _mm512_mask_shuffle_f32x4(z, all, w[2], w[3], 0xEE));
  return _mm512_add_ps(_mm512_mask_shuffle_f32x4(z, all, y01, y23, 0x88),
                       _mm512_mask_shuffle_f32x4(z, all, y01, y23, 0xDD));
}
#endif

inline void dot_tile(int64_t len, const float* const* a, const float* const* b, float* out,
                     int64_t ldo, int mr, int nr, bool accumulate) {
  typename V::T acc[kDMR][kDNR];
#pragma GCC unroll 8
  for (int i = 0; i < kDMR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kDNR; ++j) acc[i][j] = V::zero();
  const float* ap[kDMR];
  const float* bp[kDNR];
  for (int i = 0; i < kDMR; ++i) ap[i] = a[i];
  for (int j = 0; j < kDNR; ++j) bp[j] = b[j];
  for (int64_t t = 0; t < len; t += V::W) {
    typename V::T av[kDMR];
#pragma GCC unroll 8
    for (int i = 0; i < kDMR; ++i) av[i] = V::load(ap[i] + t);
#pragma GCC unroll 8
    for (int j = 0; j < kDNR; ++j) {
      const typename V::T bv = V::load(bp[j] + t);
#pragma GCC unroll 8
      for (int i = 0; i < kDMR; ++i) acc[i][j] = V::fma(av[i], bv, acc[i][j]);
    }
  }
#if defined(__AVX512F__)
  alignas(64) float sums[16];
  _mm512_store_ps(sums, reduce16(acc));
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float* o = out + i * ldo + j;
      *o = accumulate ? *o + sums[4 * i + j] : sums[4 * i + j];
    }
#else
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      const float s = V::hsum(acc[i][j]);
      float* o = out + i * ldo + j;
      *o = accumulate ? *o + s : s;
    }
#endif
}

}  // namespace pyengine::cpu::PYENGINE_ISA_NS
