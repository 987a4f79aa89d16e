// Threads of the CPU kernels: how many, and when a loop is worth splitting between them.
//
// Kernels write `#pragma omp parallel for num_threads(num_threads()) if (worth_parallel(n))`.
// The count is our own setting rather than OpenMP's per-thread ICV, so a kernel called from any
// Python thread uses the count that set_num_threads chose. Without OpenMP the pragmas are
// ignored and everything runs on the calling thread.
#pragma once

#include <cstdint>

namespace pyengine::cpu {

// Threads a parallel kernel uses (OpenMP's default at first, usually the core count; 1 without
// OpenMP).
int num_threads();

// n >= 1 (the binding checks). Without OpenMP the call is accepted and changes nothing.
void set_num_threads(int n);

// True when the module was compiled with OpenMP.
bool have_openmp();

// Below this many elements of work a parallel region costs more than it saves (waking the
// team takes microseconds; a float op takes a fraction of a nanosecond).
constexpr int64_t kParallelGrain = 32768;

inline bool worth_parallel(int64_t work) { return work >= kParallelGrain; }

}  // namespace pyengine::cpu
