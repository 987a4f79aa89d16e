// Bindings of the pointwise activation kernels (csrc/cuda/activation.cu) for both CUDA modules.
//
// Shape letters: n elements; N C L of the bias-fused form.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/activation.h"

namespace pyengine::bindings {

namespace {

gpu::Activation activation_kind(const std::string& kind, const char* fn) {
  return static_cast<gpu::Activation>(
      choice(kind, {"none", "relu", "leaky_relu", "sigmoid", "tanh"}, fn, "activation"));
}

}  // namespace

void bind_cuda_activation(py::module_& m) {
  m.def("activation_forward", [](const py::object& xo, const py::object& yo,
                                 const std::string& kind, float slope, uintptr_t stream) {
    const char* fn = "activation_forward";
    const gpu::Activation k = activation_kind(kind, fn);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_shape(y, x.shape, fn, "y");
    check_no_overlap(y, x, fn, "y", "x");
    py::gil_scoped_release nogil;
    gpu::activation_forward(y.f32(), x.f32(), x.size, k, slope, stream_arg(stream));
  }, py::arg("x"), py::arg("y"), py::arg("kind"), py::arg("negative_slope") = 0.01f,
  py::arg("stream") = 0, "y = act(x), kind in relu, leaky_relu, sigmoid, tanh.");

  m.def("activation_backward", [](const py::object& dyo, const py::object& xo,
                                  const py::object& yo, const py::object& dxo,
                                  const std::string& kind, float slope, uintptr_t stream) {
    const char* fn = "activation_backward";
    const gpu::Activation k = activation_kind(kind, fn);
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg x = optional_array_arg(xo, DType::float32, fn, "x", false);
    const Arg y = optional_array_arg(yo, DType::float32, fn, "y", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    const bool needs_x = k == gpu::Activation::relu || k == gpu::Activation::leaky_relu;
    const bool needs_y = k == gpu::Activation::sigmoid || k == gpu::Activation::tanh;
    if (needs_x && x.data == nullptr) throw py::value_error(std::string(fn) + ": needs x");
    if (needs_y && y.data == nullptr) throw py::value_error(std::string(fn) + ": needs y");
    check_shape(dx, dy.shape, fn, "dx");
    if (x.data != nullptr) check_shape(x, dy.shape, fn, "x");
    if (y.data != nullptr) check_shape(y, dy.shape, fn, "y");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, x, fn, "dx", "x");
    check_no_overlap(dx, y, fn, "dx", "y");
    py::gil_scoped_release nogil;
    gpu::activation_backward(dx.f32(), dy.f32(), x.f32(), y.f32(), dy.size, k, slope,
                             stream_arg(stream));
  }, py::arg("dy"), py::arg("x"), py::arg("y"), py::arg("dx"), py::arg("kind"),
  py::arg("negative_slope") = 0.01f, py::arg("stream") = 0,
  "dx of activation_forward from dy and the forward's x (relu, leaky_relu) or y (others).");

  m.def("bias_activation_forward", [](const py::object& xo, const py::object& bo,
                                      const py::object& yo, const std::string& kind,
                                      float slope, uintptr_t stream) {
    const char* fn = "bias_activation_forward";
    const gpu::Activation k = activation_kind(kind, fn);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    if (x.ndim() < 2) throw py::value_error(std::string(fn) + ": x must be (N, C, ...)");
    const Arg b = array_arg(bo, DType::float32, fn, "bias", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_shape(b, {x.dim(1)}, fn, "bias");
    check_shape(y, x.shape, fn, "y");
    check_no_overlap(y, x, fn, "y", "x");
    check_no_overlap(y, b, fn, "y", "bias");
    const int64_t N = x.dim(0), C = x.dim(1);
    const int64_t L = N * C > 0 ? x.size / (N * C) : 0;
    py::gil_scoped_release nogil;
    gpu::bias_activation_forward(y.f32(), x.f32(), b.f32(), N, C, L, k, slope,
                                 stream_arg(stream));
  }, py::arg("x"), py::arg("bias"), py::arg("y"), py::arg("kind"),
  py::arg("negative_slope") = 0.01f, py::arg("stream") = 0,
  "y = act(x + bias[c]) for x (N, C, ...): bias and activation in one pass.");
}

}  // namespace pyengine::bindings
