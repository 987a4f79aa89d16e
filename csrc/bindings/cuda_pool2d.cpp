// Bindings of the pooling kernels (csrc/cuda/pool2d.cu) for both CUDA modules.
//
// Shape letters: N C H W input, P Q output plane.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/pool2d.h"

namespace pyengine::bindings {

namespace {

// (N, C, H, W, P, Q) of a window pool of x_shape with params p.
gpu::PoolShape window_shape(const std::vector<int64_t>& xs, const Pool2dParams& p,
                            const char* fn) {
  if (xs.size() != 4) throw py::value_error(std::string(fn) + ": x must be 4-d (N, C, H, W)");
  const gpu::PoolShape s{xs[0], xs[1], xs[2], xs[3], p.output_h(xs[2]), p.output_w(xs[3])};
  if (s.P < 1 || s.Q < 1) throw py::value_error(std::string(fn) + ": the output would be empty");
  return s;
}

}  // namespace

void bind_cuda_pool2d(py::module_& m) {
  m.def("max_pool2d_forward", [](const py::object& xo, const py::object& yo,
                                 const py::object& io, const py::object& po, uintptr_t stream) {
    const char* fn = "max_pool2d_forward";
    const Pool2dParams p = pool_params(po);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    const Arg idx = array_arg(io, DType::int64, fn, "indices", true);
    const gpu::PoolShape s = window_shape(x.shape, p, fn);
    check_shape(y, {s.N, s.C, s.P, s.Q}, fn, "y");
    check_shape(idx, {s.N, s.C, s.P, s.Q}, fn, "indices");
    check_no_overlap(y, x, fn, "y", "x");
    check_no_overlap(idx, x, fn, "indices", "x");
    check_no_overlap(idx, y, fn, "indices", "y");
    py::gil_scoped_release nogil;
    gpu::max_pool2d_forward(y.f32(), idx.i64(), x.f32(), s, p, stream_arg(stream));
  }, py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("p"), py::arg("stream") = 0,
  "y and int64 indices (flat h*W + w) of max pooling x (N,C,H,W).");

  m.def("max_pool2d_backward", [](const py::object& dyo, const py::object& io,
                                  const py::object& dxo, const py::object& po, uintptr_t stream) {
    const char* fn = "max_pool2d_backward";
    const Pool2dParams p = pool_params(po);
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg idx = array_arg(io, DType::int64, fn, "indices", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    const gpu::PoolShape s = window_shape(dx.shape, p, fn);
    check_shape(dy, {s.N, s.C, s.P, s.Q}, fn, "dy");
    check_shape(idx, {s.N, s.C, s.P, s.Q}, fn, "indices");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, idx, fn, "dx", "indices");
    py::gil_scoped_release nogil;
    gpu::max_pool2d_backward(dx.f32(), dy.f32(), idx.i64(), s, p, stream_arg(stream));
  }, py::arg("dy"), py::arg("indices"), py::arg("dx"), py::arg("p"), py::arg("stream") = 0,
  "dx (N,C,H,W): each element gathers dy of the windows whose index points at it.");

  m.def("avg_pool2d_forward", [](const py::object& xo, const py::object& yo,
                                 const py::object& po, uintptr_t stream) {
    const char* fn = "avg_pool2d_forward";
    const Pool2dParams p = pool_params(po);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    const gpu::PoolShape s = window_shape(x.shape, p, fn);
    check_shape(y, {s.N, s.C, s.P, s.Q}, fn, "y");
    check_no_overlap(y, x, fn, "y", "x");
    py::gil_scoped_release nogil;
    gpu::avg_pool2d_forward(y.f32(), x.f32(), s, p, stream_arg(stream));
  }, py::arg("x"), py::arg("y"), py::arg("p"), py::arg("stream") = 0,
  "y = average pooling of x (N,C,H,W).");

  m.def("avg_pool2d_backward", [](const py::object& dyo, const py::object& dxo,
                                  const py::object& po, uintptr_t stream) {
    const char* fn = "avg_pool2d_backward";
    const Pool2dParams p = pool_params(po);
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    const gpu::PoolShape s = window_shape(dx.shape, p, fn);
    check_shape(dy, {s.N, s.C, s.P, s.Q}, fn, "dy");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    py::gil_scoped_release nogil;
    gpu::avg_pool2d_backward(dx.f32(), dy.f32(), s, p, stream_arg(stream));
  }, py::arg("dy"), py::arg("dx"), py::arg("p"), py::arg("stream") = 0,
  "dx (N,C,H,W) of avg_pool2d_forward.");

  m.def("max_unpool2d_forward", [](const py::object& xo, const py::object& io,
                                   const py::object& yo, uintptr_t stream) {
    const char* fn = "max_unpool2d_forward";
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg idx = array_arg(io, DType::int64, fn, "indices", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_ndim(x, 4, fn, "x");
    check_shape(idx, x.shape, fn, "indices");
    check_ndim(y, 4, fn, "y");
    if (y.dim(0) != x.dim(0) || y.dim(1) != x.dim(1))
      throw py::value_error(std::string(fn) + ": y " + shape_str(y.shape) + " and x " +
                            shape_str(x.shape) + " differ in N or C");
    check_no_overlap(y, x, fn, "y", "x");
    check_no_overlap(y, idx, fn, "y", "indices");
    // Indices are validated by pyengine.functional (each in [0, H*W)).
    const gpu::PoolShape s{x.dim(0), x.dim(1), y.dim(2), y.dim(3), x.dim(2), x.dim(3)};
    py::gil_scoped_release nogil;
    gpu::max_unpool2d_forward(y.f32(), x.f32(), idx.i64(), s, stream_arg(stream));
  }, py::arg("x"), py::arg("indices"), py::arg("y"), py::arg("stream") = 0,
  "y (N,C,H,W) zero except y.plane[indices] = x (N,C,P,Q); the last repeated index wins.");

  m.def("max_unpool2d_backward", [](const py::object& dyo, const py::object& io,
                                    const py::object& dxo, uintptr_t stream) {
    const char* fn = "max_unpool2d_backward";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg idx = array_arg(io, DType::int64, fn, "indices", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    check_ndim(dy, 4, fn, "dy");
    check_ndim(idx, 4, fn, "indices");
    check_shape(dx, idx.shape, fn, "dx");
    if (dy.dim(0) != idx.dim(0) || dy.dim(1) != idx.dim(1))
      throw py::value_error(std::string(fn) + ": dy and indices differ in N or C");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, idx, fn, "dx", "indices");
    const gpu::PoolShape s{dy.dim(0), dy.dim(1), dy.dim(2), dy.dim(3), idx.dim(2), idx.dim(3)};
    py::gil_scoped_release nogil;
    gpu::max_unpool2d_backward(dx.f32(), dy.f32(), idx.i64(), s, stream_arg(stream));
  }, py::arg("dy"), py::arg("indices"), py::arg("dx"), py::arg("stream") = 0,
  "dx (indices' shape) = dy gathered at indices, plane by plane.");

  m.def("adaptive_avg_pool2d_forward", [](const py::object& xo, const py::object& yo,
                                          uintptr_t stream) {
    const char* fn = "adaptive_avg_pool2d_forward";
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_ndim(x, 4, fn, "x");
    check_ndim(y, 4, fn, "y");
    if (y.dim(0) != x.dim(0) || y.dim(1) != x.dim(1) || y.dim(2) < 1 || y.dim(3) < 1 ||
        x.dim(2) < 1 || x.dim(3) < 1)
      throw py::value_error(std::string(fn) + ": y " + shape_str(y.shape) + " does not fit x " +
                            shape_str(x.shape));
    check_no_overlap(y, x, fn, "y", "x");
    const gpu::PoolShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), y.dim(2), y.dim(3)};
    py::gil_scoped_release nogil;
    gpu::adaptive_avg_pool2d_forward(y.f32(), x.f32(), s, stream_arg(stream));
  }, py::arg("x"), py::arg("y"), py::arg("stream") = 0,
  "y (N,C,P,Q) = adaptive average pooling of x (N,C,H,W) to y's plane.");

  m.def("adaptive_avg_pool2d_backward", [](const py::object& dyo, const py::object& dxo,
                                           uintptr_t stream) {
    const char* fn = "adaptive_avg_pool2d_backward";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    check_ndim(dy, 4, fn, "dy");
    check_ndim(dx, 4, fn, "dx");
    if (dy.dim(0) != dx.dim(0) || dy.dim(1) != dx.dim(1) || dy.dim(2) < 1 || dy.dim(3) < 1 ||
        dx.dim(2) < 1 || dx.dim(3) < 1)
      throw py::value_error(std::string(fn) + ": dy " + shape_str(dy.shape) +
                            " does not fit dx " + shape_str(dx.shape));
    check_no_overlap(dx, dy, fn, "dx", "dy");
    const gpu::PoolShape s{dx.dim(0), dx.dim(1), dx.dim(2), dx.dim(3), dy.dim(2), dy.dim(3)};
    py::gil_scoped_release nogil;
    gpu::adaptive_avg_pool2d_backward(dx.f32(), dy.f32(), s, stream_arg(stream));
  }, py::arg("dy"), py::arg("dx"), py::arg("stream") = 0,
  "dx (N,C,H,W) of adaptive_avg_pool2d_forward.");
}

}  // namespace pyengine::bindings
