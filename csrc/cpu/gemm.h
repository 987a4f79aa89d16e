// pyengine's SGEMM: packed, cache-blocked, register-blocked micro-kernels per ISA (no BLAS).
// Everything that multiplies matrices on the CPU goes through here: linear, im2col/implicit-GEMM
// convolution, the 1x1 path, Winograd's batched products.
//
// Implementation: gemm.cpp (public entry points, ISA dispatch), gemm_impl.inc (the blocked
// algorithm, compiled once per ISA path), gemm_simd.h (vector type, micro-kernels, packing).
// Numerics: float32 products accumulated in float32 along K in a fixed order (FMA on the AVX2
// and AVX-512 paths), so results are bitwise reproducible for a given ISA path.
//
// Shape letters: C (M x N) = op(A) (M x K) * op(B) (K x N), row-major, leading dimensions in
// elements. op(X) is X or its transpose (trans_* = true: the array holds the K x M / N x K
// matrix with that leading dimension).
#pragma once

#include <cstdint>

namespace pyengine::cpu {

// What happens to each element of C after the product, fused into the store:
//   c = alpha * (A B) + beta * c_old  [+ bias[m] or bias[n]]  [then max(c, 0) if relu]
struct GemmEpilogue {
  const float* row_bias = nullptr;  // length M: added to every element of row m
  const float* col_bias = nullptr;  // length N: added to every element of column n
  bool relu = false;
};

// C = alpha * op(A) op(B) + beta * C, with the epilogue. Splits the work over the OpenMP
// threads when called outside a parallel region; inside one, runs on the calling thread.
// beta == 0 never reads C (it may hold NaN poison). Deterministic for a fixed thread count.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const GemmEpilogue& epilogue = GemmEpilogue());

// The same on the calling thread only, for callers that parallelise over independent products.
void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, const GemmEpilogue& epilogue = GemmEpilogue());

// out[j] = sum over i < m of a[i*n + j] (a row-major m x n; m may be 0): the bias gradient
// of linear. Rows are added in order, so the result does not depend on the thread count.
void sum_rows(float* out, const float* a, int64_t m, int64_t n);

// The register tile (MR rows x NR columns of C) of the active ISA path.
void gemm_register_tile(int* mr, int* nr);

}  // namespace pyengine::cpu
