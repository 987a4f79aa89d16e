// softmax and log_softmax on the CPU, float32: the avx2 build of the kernels in softmax_impl.h
// (the same loops, exp included, vectorised by the compiler at this path's width), chosen at
// run time by softmax.cpp.
//
// Shape letters (as in softmax.h): the tensor is (B, D, I) around the softmax dimension.
#include "cpu/softmax_impl.h"
