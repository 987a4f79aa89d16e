// Bindings of the convolution kernels (csrc/cuda/conv2d.cu) for both CUDA modules.
//
// Shape letters: N C H W input, K Cg R S weight (Cg = C/groups), P Q output plane.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/conv2d.h"

namespace pyengine::bindings {

namespace {

gpu::ConvAlgo conv_algo(const std::string& name, const char* fn) {
  return static_cast<gpu::ConvAlgo>(
      choice(name, {"auto", "implicit_gemm_tiled", "direct_depthwise", "implicit_gemm_tf32"}, fn,
             "algorithm"));
}

// Checks x and w against each other and the params; returns the shape with P, Q filled in.
gpu::ConvShape conv_shape(const std::vector<int64_t>& xs, const Arg& w, const Conv2dParams& p,
                          const char* fn) {
  if (xs.size() != 4) throw py::value_error(std::string(fn) + ": x must be 4-d (N, C, H, W)");
  check_ndim(w, 4, fn, "w");
  gpu::ConvShape s{xs[0], xs[1], xs[2], xs[3], w.dim(0), w.dim(2), w.dim(3), 0, 0};
  if (s.C % p.groups != 0 || s.K % p.groups != 0 || w.dim(1) * p.groups != s.C)
    throw py::value_error(std::string(fn) + ": x " + shape_str(xs) + " and w " +
                          shape_str(w.shape) + " do not fit groups=" +
                          std::to_string(p.groups));
  s.P = p.output_h(s.H, s.R);
  s.Q = p.output_w(s.W, s.S);
  if (s.P < 1 || s.Q < 1)
    throw py::value_error(std::string(fn) + ": the output would be empty");
  return s;
}

}  // namespace

void bind_cuda_conv2d(py::module_& m) {
  m.attr("CONV2D_ALGORITHMS") =
      py::make_tuple("implicit_gemm_tiled", "direct_depthwise", "implicit_gemm_tf32");

  m.def("conv2d_forward", [](const py::object& xo, const py::object& wo, const py::object& bo,
                             const py::object& yo, const py::object& po,
                             const std::string& algo, uintptr_t stream) {
    const char* fn = "conv2d_forward";
    const Conv2dParams p = conv_params(po);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg w = array_arg(wo, DType::float32, fn, "w", false);
    const Arg b = optional_array_arg(bo, DType::float32, fn, "b", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    const gpu::ConvShape s = conv_shape(x.shape, w, p, fn);
    if (b.data != nullptr) check_shape(b, {s.K}, fn, "b");
    check_shape(y, {s.N, s.K, s.P, s.Q}, fn, "y");
    check_no_overlap(y, x, fn, "y", "x");
    check_no_overlap(y, w, fn, "y", "w");
    check_no_overlap(y, b, fn, "y", "b");
    const gpu::ConvAlgo a = conv_algo(algo, fn);
    py::gil_scoped_release nogil;
    gpu::conv2d_forward(y.f32(), x.f32(), w.f32(), b.f32(), s, p, a, stream_arg(stream));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("p"),
  py::arg("algo") = "auto", py::arg("stream") = 0,
  "y (N,K,P,Q) = conv2d(x (N,C,H,W), w (K,C/G,R,S)) + b (K or None).");

  m.def("conv2d_backward_data", [](const py::object& dyo, const py::object& wo,
                                   const py::object& dxo, const py::object& po,
                                   const std::string& algo, uintptr_t stream) {
    const char* fn = "conv2d_backward_data";
    const Conv2dParams p = conv_params(po);
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg w = array_arg(wo, DType::float32, fn, "w", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    const gpu::ConvShape s = conv_shape(dx.shape, w, p, fn);
    check_shape(dy, {s.N, s.K, s.P, s.Q}, fn, "dy");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, w, fn, "dx", "w");
    const gpu::ConvAlgo a = conv_algo(algo, fn);
    py::gil_scoped_release nogil;
    gpu::conv2d_backward_data(dx.f32(), dy.f32(), w.f32(), s, p, a, stream_arg(stream));
  }, py::arg("dy"), py::arg("w"), py::arg("dx"), py::arg("p"), py::arg("algo") = "auto",
  py::arg("stream") = 0, "dx (N,C,H,W) of conv2d_forward from dy (N,K,P,Q) and w.");

  m.def("conv2d_backward_weight", [](const py::object& dyo, const py::object& xo,
                                     const py::object& dwo, const py::object& po,
                                     const std::string& algo, uintptr_t stream) {
    const char* fn = "conv2d_backward_weight";
    const Conv2dParams p = conv_params(po);
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg dw = array_arg(dwo, DType::float32, fn, "dw", true);
    const gpu::ConvShape s = conv_shape(x.shape, dw, p, fn);
    check_shape(dy, {s.N, s.K, s.P, s.Q}, fn, "dy");
    check_no_overlap(dw, dy, fn, "dw", "dy");
    check_no_overlap(dw, x, fn, "dw", "x");
    const gpu::ConvAlgo a = conv_algo(algo, fn);
    py::gil_scoped_release nogil;
    gpu::conv2d_backward_weight(dw.f32(), dy.f32(), x.f32(), s, p, a, stream_arg(stream));
  }, py::arg("dy"), py::arg("x"), py::arg("dw"), py::arg("p"), py::arg("algo") = "auto",
  py::arg("stream") = 0, "dw (K,C/G,R,S) of conv2d_forward from dy (N,K,P,Q) and x.");

  m.def("conv2d_backward_bias", [](const py::object& dyo, const py::object& dbo,
                                   uintptr_t stream) {
    const char* fn = "conv2d_backward_bias";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg db = array_arg(dbo, DType::float32, fn, "db", true);
    check_ndim(dy, 4, fn, "dy");
    check_shape(db, {dy.dim(1)}, fn, "db");
    check_no_overlap(db, dy, fn, "db", "dy");
    py::gil_scoped_release nogil;
    gpu::conv2d_backward_bias(db.f32(), dy.f32(), dy.dim(0), dy.dim(1), dy.dim(2) * dy.dim(3),
                              stream_arg(stream));
  }, py::arg("dy"), py::arg("db"), py::arg("stream") = 0,
  "db (K) = dy (N,K,P,Q) summed over N, P and Q.");
}

}  // namespace pyengine::bindings
