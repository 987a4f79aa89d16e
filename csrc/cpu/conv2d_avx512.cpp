// conv2d kernels, AVX-512 path (x86-64-v4): conv2d_impl.h (im2col_gemm) and
// conv2d_planes.h (implicit_gemm) compiled with this path's flags in namespace
// pyengine::cpu::avx512 (CMake sets PYENGINE_ISA_NS from the file name). Shape letters: conv2d.h.
#include "cpu/conv2d_impl.h"
#include "cpu/conv2d_planes.h"
