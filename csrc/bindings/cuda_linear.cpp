// Bindings of the linear layer's GEMMs (csrc/cuda/linear.cu) for both CUDA modules.
//
// Shape letters: M rows, K input features, N output features.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/linear.h"

namespace pyengine::bindings {

void bind_cuda_linear(py::module_& m) {
  m.def("linear_forward", [](const py::object& xo, const py::object& wo, const py::object& bo,
                             const py::object& yo, uintptr_t stream) {
    const char* fn = "linear_forward";
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg w = array_arg(wo, DType::float32, fn, "w", false);
    const Arg b = optional_array_arg(bo, DType::float32, fn, "b", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_ndim(x, 2, fn, "x");
    check_ndim(w, 2, fn, "w");
    const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
    check_shape(w, {N, K}, fn, "w");
    if (b.data != nullptr) check_shape(b, {N}, fn, "b");
    check_shape(y, {M, N}, fn, "y");
    for (const Arg* in : {&x, &w, &b}) check_no_overlap(y, *in, fn, "y", "an input");
    py::gil_scoped_release nogil;
    gpu::linear_forward(y.f32(), x.f32(), w.f32(), b.f32(), M, K, N, stream_arg(stream));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("stream") = 0,
  "y (M,N) = x (M,K) @ w (N,K)^T + b (N or None).");

  m.def("linear_backward_data", [](const py::object& dyo, const py::object& wo,
                                   const py::object& dxo, uintptr_t stream) {
    const char* fn = "linear_backward_data";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg w = array_arg(wo, DType::float32, fn, "w", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    check_ndim(dy, 2, fn, "dy");
    check_ndim(w, 2, fn, "w");
    const int64_t M = dy.dim(0), N = dy.dim(1), K = w.dim(1);
    check_shape(w, {N, K}, fn, "w");
    check_shape(dx, {M, K}, fn, "dx");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, w, fn, "dx", "w");
    py::gil_scoped_release nogil;
    gpu::linear_backward_data(dx.f32(), dy.f32(), w.f32(), M, K, N, stream_arg(stream));
  }, py::arg("dy"), py::arg("w"), py::arg("dx"), py::arg("stream") = 0,
  "dx (M,K) = dy (M,N) @ w (N,K).");

  m.def("linear_backward_weight", [](const py::object& dyo, const py::object& xo,
                                     const py::object& dwo, uintptr_t stream) {
    const char* fn = "linear_backward_weight";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg dw = array_arg(dwo, DType::float32, fn, "dw", true);
    check_ndim(dy, 2, fn, "dy");
    check_ndim(x, 2, fn, "x");
    const int64_t M = dy.dim(0), N = dy.dim(1), K = x.dim(1);
    check_shape(x, {M, K}, fn, "x");
    check_shape(dw, {N, K}, fn, "dw");
    check_no_overlap(dw, dy, fn, "dw", "dy");
    check_no_overlap(dw, x, fn, "dw", "x");
    py::gil_scoped_release nogil;
    gpu::linear_backward_weight(dw.f32(), dy.f32(), x.f32(), M, K, N, stream_arg(stream));
  }, py::arg("dy"), py::arg("x"), py::arg("dw"), py::arg("stream") = 0,
  "dw (N,K) = dy (M,N)^T @ x (M,K); zeros when M = 0.");

  m.def("linear_backward_bias", [](const py::object& dyo, const py::object& dbo,
                                   uintptr_t stream) {
    const char* fn = "linear_backward_bias";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg db = array_arg(dbo, DType::float32, fn, "db", true);
    check_ndim(dy, 2, fn, "dy");
    check_shape(db, {dy.dim(1)}, fn, "db");
    check_no_overlap(db, dy, fn, "db", "dy");
    py::gil_scoped_release nogil;
    gpu::linear_backward_bias(db.f32(), dy.f32(), dy.dim(0), dy.dim(1), stream_arg(stream));
  }, py::arg("dy"), py::arg("db"), py::arg("stream") = 0, "db (N) = dy (M,N) summed over rows.");
}

}  // namespace pyengine::bindings
