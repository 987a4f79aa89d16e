// Thread-count setting shared by every CPU kernel (see parallel.h).
#include "cpu/parallel.h"

#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {

namespace {
// 0 until set: then num_threads() reads OpenMP's default, which honours OMP_NUM_THREADS.
std::atomic<int> g_num_threads{0};
}  // namespace

int num_threads() {
#ifdef _OPENMP
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
#ifdef _OPENMP
  g_num_threads.store(n, std::memory_order_relaxed);
#else
  (void)n;
#endif
}

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace pyengine::cpu
