// Bindings of the softmax / log_softmax kernels (csrc/cuda/softmax.cu) for both CUDA modules.
//
// Shape letters: B D I, the (before, softmax dim, after) view of an array around `dim`.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/softmax.h"

namespace pyengine::bindings {

namespace {

struct View {
  int64_t B = 1, D = 1, I = 1;
};

View view(const Arg& a, int64_t dim, const char* fn) {
  const int64_t nd = a.ndim();
  if (nd < 1) throw py::value_error(std::string(fn) + ": needs at least 1 dimension");
  if (dim < -nd || dim >= nd)
    throw py::value_error(std::string(fn) + ": dim=" + std::to_string(dim) +
                          " out of range for " + std::to_string(nd) + " dimensions");
  if (dim < 0) dim += nd;
  View v;
  for (int64_t k = 0; k < nd; ++k) (k < dim ? v.B : k == dim ? v.D : v.I) *= a.shape[k];
  return v;
}

gpu::SoftmaxAlgo softmax_algo(const std::string& name, const char* fn) {
  return static_cast<gpu::SoftmaxAlgo>(
      choice(name, {"auto", "warp_per_row", "block_per_row"}, fn, "algorithm"));
}

void forward(const char* fn, bool log, const py::object& xo, const py::object& yo, int64_t dim,
             const std::string& algo, uintptr_t stream) {
  const Arg x = array_arg(xo, DType::float32, fn, "x", false);
  const Arg y = array_arg(yo, DType::float32, fn, "y", true);
  check_shape(y, x.shape, fn, "y");
  check_no_overlap(y, x, fn, "y", "x");
  const View v = view(x, dim, fn);
  const gpu::SoftmaxAlgo a = softmax_algo(algo, fn);
  py::gil_scoped_release nogil;
  gpu::softmax_forward(y.f32(), x.f32(), v.B, v.D, v.I, log, a, stream_arg(stream));
}

void backward(const char* fn, bool log, const py::object& yo, const py::object& dyo,
              const py::object& dxo, int64_t dim, const std::string& algo, uintptr_t stream) {
  const Arg y = array_arg(yo, DType::float32, fn, "y", false);
  const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
  const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
  check_shape(dy, y.shape, fn, "dy");
  check_shape(dx, y.shape, fn, "dx");
  check_no_overlap(dx, y, fn, "dx", "y");
  check_no_overlap(dx, dy, fn, "dx", "dy");
  const View v = view(y, dim, fn);
  const gpu::SoftmaxAlgo a = softmax_algo(algo, fn);
  py::gil_scoped_release nogil;
  gpu::softmax_backward(dx.f32(), y.f32(), dy.f32(), v.B, v.D, v.I, log, a, stream_arg(stream));
}

}  // namespace

void bind_cuda_softmax(py::module_& m) {
  m.attr("SOFTMAX_ALGORITHMS") = py::make_tuple("warp_per_row", "block_per_row");
  for (const bool log : {false, true}) {
    const char* fwd = log ? "log_softmax_forward" : "softmax_forward";
    const char* bwd = log ? "log_softmax_backward" : "softmax_backward";
    m.def(fwd, [fwd, log](const py::object& x, const py::object& y, int64_t dim,
                          const std::string& algo, uintptr_t stream) {
      forward(fwd, log, x, y, dim, algo, stream);
    }, py::arg("x"), py::arg("y"), py::arg("dim"), py::arg("algo") = "auto",
    py::arg("stream") = 0,
    log ? "y = log_softmax(x) along dim." : "y = softmax(x) along dim.");
    m.def(bwd, [bwd, log](const py::object& y, const py::object& dy, const py::object& dx,
                          int64_t dim, const std::string& algo, uintptr_t stream) {
      backward(bwd, log, y, dy, dx, dim, algo, stream);
    }, py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("dim"), py::arg("algo") = "auto",
    py::arg("stream") = 0,
    log ? "dx = dy - exp(y) * sum(dy, dim); y is the forward's output."
        : "dx = y * (dy - sum(dy * y, dim)); y is the forward's output.");
  }
}

}  // namespace pyengine::bindings
