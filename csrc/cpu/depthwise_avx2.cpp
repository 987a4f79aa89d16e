// The depthwise kernels (depthwise_kernels.h) compiled for the avx2 path (x86-64-v3).
#include "cpu/depthwise_kernels.h"
