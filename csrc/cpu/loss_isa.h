// The table of loss kernels that each ISA path exports (loss_impl.h defines it once per path),
// so that loss.cpp can choose a path at run time.
//
// Shape letters as in loss.h: M rows, C classes, n elements of an element-wise loss.
#pragma once

#include <cstdint>

#include "cpu/isa.h"
#include "cpu/loss.h"

namespace pyengine::cpu {

struct LossKernels {
  void (*ce_forward_index)(float*, double*, const float*, const int64_t*, const float*, int64_t,
                           int64_t, const LossOptions&);
  void (*ce_forward_prob)(float*, double*, const float*, const float*, const float*, int64_t,
                          int64_t, const LossOptions&);
  void (*ce_backward_index)(float*, const float*, const float*, const int64_t*, const float*,
                            const double*, int64_t, int64_t, const LossOptions&);
  void (*ce_backward_prob)(float*, const float*, const float*, const float*, const float*,
                           const double*, int64_t, int64_t, const LossOptions&);
  void (*nll_forward)(float*, const float*, const int64_t*, const float*, int64_t, int64_t,
                      const LossOptions&);
  void (*nll_backward)(float*, const float*, const int64_t*, const float*, int64_t, int64_t,
                       const LossOptions&);
  void (*mse_forward)(float*, const float*, const float*, int64_t, Reduction);
  void (*mse_backward)(float*, const float*, const float*, const float*, int64_t, Reduction);
  void (*smooth_l1_forward)(float*, const float*, const float*, int64_t, Reduction, double);
  void (*smooth_l1_backward)(float*, const float*, const float*, const float*, int64_t,
                             Reduction, double);
};

PYENGINE_ISA_DECLARE(extern const LossKernels kLossKernels)

}  // namespace pyengine::cpu
