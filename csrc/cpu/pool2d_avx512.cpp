// 2-d pooling on the CPU, float32: the avx512 build of the kernels in pool2d_impl.h (the same
// loops, vectorised by the compiler at this path's width), chosen at run time by pool2d.cpp.
//
// Shape letters as in pool2d.h: NC planes, H W input plane, P Q output plane.
#include "cpu/pool2d_impl.h"
