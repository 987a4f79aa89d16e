// pyengine._cpu bindings of the loss kernels (csrc/cpu/loss*.cpp): the fused cross-entropy (forward and backward in one pass over the logits).
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_loss(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
