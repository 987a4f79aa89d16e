// The few-input-channel direct kernels (conv_small_c_kernels.h) compiled for the avx512 path.
#include "cpu/conv_small_c_kernels.h"
