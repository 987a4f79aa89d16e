// pyengine._cpu bindings of the the GEMM (csrc/cpu/gemm*.cpp) and the linear kernels built on it.
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_linear(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
