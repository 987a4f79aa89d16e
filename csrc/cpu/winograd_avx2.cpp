// The Winograd kernels (winograd_kernels.h) compiled for the avx2 path (x86-64-v3).
#include "cpu/winograd_kernels.h"
