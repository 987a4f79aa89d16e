// Pointwise activations on the CPU, float32: the avx512 build of the kernels in activation_impl.h
// (the same loops, exp included, vectorised by the compiler at this path's width), chosen at run
// time by activation.cpp. n: elements.
#include "cpu/activation_impl.h"
