// Losses on the CPU, float32: the avx2 build of the kernels in loss_impl.h (the same loops,
// exp included, vectorised by the compiler at this path's width), chosen at run time by
// loss.cpp.
//
// Shape letters as in loss.h: M rows, C classes, n elements of an element-wise loss.
#include "cpu/loss_impl.h"
