// pyengine._cpu bindings of the convolution kernels (csrc/cpu/conv2d*.cpp, winograd*.cpp, depthwise*.cpp): forward, backward-data, backward-weight, bias gradient.
// Arrays are checked with bindings/checks.h before the GIL is released.
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace pyengine::bindings {

void bind_conv2d(pybind11::module_& m) {
  (void)m;  // this family's kernels are bound here as they land
}

}  // namespace pyengine::bindings
