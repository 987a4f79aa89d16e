// sgemm, AVX-512 path (x86-64-v4): the code is gemm_impl.inc, compiled here with this path's
// flags in namespace pyengine::cpu::avx512 (CMake sets PYENGINE_ISA_NS from the suffix).
#include "cpu/gemm_impl.inc"
