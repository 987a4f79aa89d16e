// pyengine._cpu bindings of the pooling kernels (csrc/cpu/pool2d*.cpp): max with indices, average, max_unpool2d, adaptive average, and their backwards.
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_pool2d(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
