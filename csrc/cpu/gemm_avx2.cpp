// sgemm, AVX2 + FMA path (x86-64-v3): the code is gemm_impl.inc, compiled here with this
// path's flags in namespace pyengine::cpu::avx2 (CMake sets PYENGINE_ISA_NS from the suffix).
#include "cpu/gemm_impl.inc"
