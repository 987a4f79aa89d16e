// The depthwise kernels (depthwise_kernels.h) compiled for the avx512 path (x86-64-v4).
#include "cpu/depthwise_kernels.h"
