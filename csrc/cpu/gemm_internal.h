// The per-ISA entry points behind sgemm (gemm.h): declared here for every ISA path, defined by
// gemm_impl.inc in gemm.cpp (baseline), gemm_avx2.cpp and gemm_avx512.cpp, chosen by gemm.cpp
// through isa.h's dispatch. ISA-neutral: no intrinsics, safe to include anywhere.
//
// Shape letters: C (M x N) = op(A) (M x K) op(B) (K x N), as in gemm.h.
#pragma once

#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/isa.h"

namespace pyengine::cpu {

// parallel: split over the OpenMP threads when not already inside a parallel region.
PYENGINE_ISA_DECLARE(void sgemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                     float alpha, const float* a, int64_t lda, const float* b,
                                     int64_t ldb, float beta, float* c, int64_t ldc,
                                     const GemmEpilogue& epilogue, bool parallel))

// The register tile (MR x NR) of each path, for tests and tuning reports.
PYENGINE_ISA_DECLARE(void gemm_tile(int* mr, int* nr))

}  // namespace pyengine::cpu
