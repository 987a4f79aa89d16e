// pyengine._cpu bindings of the pointwise activation kernels (csrc/cpu/activation*.cpp): relu,
// leaky_relu, sigmoid, tanh, forward and backward.
//
// Every array is checked before the GIL is released: float32, C-contiguous, one shape, writeable
// outputs that overlap no input. A bad argument raises TypeError or ValueError. n: elements.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "cpu/activation.h"

namespace pyengine::bindings {
namespace {

using pyengine::cpu::Activation;

Activation parse_kind(const std::string& kind, const char* fn) {
  if (kind == "relu") return Activation::relu;
  if (kind == "leaky_relu") return Activation::leaky_relu;
  if (kind == "sigmoid") return Activation::sigmoid;
  if (kind == "tanh") return Activation::tanh;
  throw py::value_error(std::string(fn) + ": unknown activation kind '" + kind +
                        "' (relu, leaky_relu, sigmoid, tanh)");
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def("activation_forward", [](const py::array& x_in, const py::array& y_in,
                                 const std::string& kind, float negative_slope) {
    const char* fn = "activation_forward";
    const Activation k = parse_kind(kind, fn);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray y = float32_array(y_in, fn, "y", true);
    check_same_shape(y, x, fn, "y", "x");
    check_no_overlap(y, x, fn, "y", "x");
    const int64_t n = x.size();
    float* yp = y.mutable_data();
    const float* xp = x.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::activation_forward(yp, xp, n, k, negative_slope);
  }, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("kind"),
  py::arg("negative_slope") = 0.01f, "Fills y = act(x) for kind relu, leaky_relu, sigmoid, tanh.");

  m.def("activation_backward", [](const py::array& dy_in, const py::array& x_in,
                                  const py::array& y_in, const py::array& dx_in,
                                  const std::string& kind, float negative_slope) {
    const char* fn = "activation_backward";
    const Activation k = parse_kind(kind, fn);
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray y = float32_array(y_in, fn, "y", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_same_shape(x, dy, fn, "x", "dy");
    check_same_shape(y, dy, fn, "y", "dy");
    check_same_shape(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, x, fn, "dx", "x");
    check_no_overlap(dx, y, fn, "dx", "y");
    const int64_t n = dy.size();
    float* dxp = dx.mutable_data();
    const float* dyp = dy.data();
    const float* xp = x.data();
    const float* yp = y.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::activation_backward(dxp, dyp, xp, yp, n, k, negative_slope);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("y").noconvert(),
  py::arg("dx").noconvert(), py::arg("kind"), py::arg("negative_slope") = 0.01f,
  "Fills dx of activation_forward from dy and the forward's x and y.");
}

}  // namespace pyengine::bindings
