// The Winograd kernels (winograd_kernels.h) compiled for the avx512 path (x86-64-v4).
#include "cpu/winograd_kernels.h"
