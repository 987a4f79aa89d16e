// pyengine._cpu bindings of the batch normalisation kernels (csrc/cpu/batch_norm*.cpp): training and eval forward, backward.
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_batch_norm(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
