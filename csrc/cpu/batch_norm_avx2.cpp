// Batch normalisation on the CPU, float32: the avx2 build of the kernels in batch_norm_impl.h
// (the same loops, vectorised by the compiler at this path's width), chosen at run time by
// batch_norm.cpp.
//
// Shape letters as in batch_norm.h: N batch, C channels, L positions.
#include "cpu/batch_norm_impl.h"
