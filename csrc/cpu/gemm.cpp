// sgemm (gemm.h): the baseline (x86-64-v2) copy of gemm_impl.inc, and the public entry points,
// which run the active ISA path's copy (isa.h).
#include "cpu/gemm.h"

#include "cpu/gemm_impl.inc"
#include "cpu/gemm_internal.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace pyengine::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const GemmEpilogue& epilogue) {
  PYENGINE_ISA_DISPATCH(sgemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                   ldc, epilogue, /*parallel=*/true));
}

void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, const GemmEpilogue& epilogue) {
  PYENGINE_ISA_DISPATCH(sgemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                   ldc, epilogue, /*parallel=*/false));
}

void sum_rows(float* out, const float* a, int64_t m, int64_t n) {
  [[maybe_unused]] const int nt = num_threads();
  // Column blocks in parallel; inside a block the rows are added in order (memory-bound, so
  // the compiler's vectorisation of the inner loop at the baseline width is enough).
  constexpr int64_t kBlock = 1024;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(nt) schedule(static) if (worth_parallel(m * n) && blocks > 1)
  for (int64_t bl = 0; bl < blocks; ++bl) {
    const int64_t j0 = bl * kBlock;
    const int64_t j1 = j0 + kBlock < n ? j0 + kBlock : n;
    for (int64_t j = j0; j < j1; ++j) out[j] = 0.0f;
    for (int64_t i = 0; i < m; ++i) {
      const float* row = a + i * n;
      for (int64_t j = j0; j < j1; ++j) out[j] += row[j];
    }
  }
}

void gemm_register_tile(int* mr, int* nr) { PYENGINE_ISA_DISPATCH(gemm_tile(mr, nr)); }

}  // namespace pyengine::cpu
