// pyengine._cpu bindings of the pointwise activation kernels (csrc/cpu/activation*.cpp): relu, leaky_relu, sigmoid, tanh and their backwards.
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_activation(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
