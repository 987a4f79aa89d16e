// Bindings of the batch normalisation kernels (csrc/cuda/batch_norm.cu) for both CUDA modules.
//
// Shape letters: N batch, C channels, L spatial positions; x (N,C,L).
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/batch_norm.h"

namespace pyengine::bindings {

namespace {

Arg channel_arg(const py::object& o, int64_t C, bool optional, bool output, const char* fn,
                const char* name) {
  const Arg a = optional ? optional_array_arg(o, DType::float32, fn, name, output)
                         : array_arg(o, DType::float32, fn, name, output);
  if (a.data != nullptr) check_shape(a, {C}, fn, name);
  return a;
}

}  // namespace

void bind_cuda_batch_norm(py::module_& m) {
  m.def("batch_norm_forward_train", [](const py::object& xo, const py::object& wo,
                                       const py::object& bo, const py::object& yo,
                                       const py::object& mo, const py::object& io, double eps,
                                       uintptr_t stream) {
    const char* fn = "batch_norm_forward_train";
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    check_ndim(x, 3, fn, "x");
    const int64_t N = x.dim(0), C = x.dim(1), L = x.dim(2);
    if (N * L < 1) throw py::value_error(std::string(fn) + ": a channel has no values");
    const Arg w = channel_arg(wo, C, true, false, fn, "weight");
    const Arg b = channel_arg(bo, C, true, false, fn, "bias");
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    const Arg mean = channel_arg(mo, C, false, true, fn, "mean");
    const Arg invstd = channel_arg(io, C, false, true, fn, "invstd");
    check_shape(y, x.shape, fn, "y");
    for (const Arg* out : {&y, &mean, &invstd})
      for (const Arg* in : {&x, &w, &b}) check_no_overlap(*out, *in, fn, "an output", "an input");
    check_no_overlap(mean, invstd, fn, "mean", "invstd");
    py::gil_scoped_release nogil;
    gpu::batch_norm_forward_train(y.f32(), mean.f32(), invstd.f32(), x.f32(), w.f32(), b.f32(),
                                  N, C, L, eps, stream_arg(stream));
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("mean"),
  py::arg("invstd"), py::arg("eps"), py::arg("stream") = 0,
  "y, mean, invstd of x (N,C,L) normalised with its batch statistics.");

  m.def("batch_norm_forward_eval", [](const py::object& xo, const py::object& rmo,
                                      const py::object& rvo, const py::object& wo,
                                      const py::object& bo, const py::object& yo, double eps,
                                      uintptr_t stream) {
    const char* fn = "batch_norm_forward_eval";
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    check_ndim(x, 3, fn, "x");
    const int64_t N = x.dim(0), C = x.dim(1), L = x.dim(2);
    const Arg rm = channel_arg(rmo, C, false, false, fn, "running_mean");
    const Arg rv = channel_arg(rvo, C, false, false, fn, "running_var");
    const Arg w = channel_arg(wo, C, true, false, fn, "weight");
    const Arg b = channel_arg(bo, C, true, false, fn, "bias");
    const Arg y = array_arg(yo, DType::float32, fn, "y", true);
    check_shape(y, x.shape, fn, "y");
    for (const Arg* in : {&x, &rm, &rv, &w, &b}) check_no_overlap(y, *in, fn, "y", "an input");
    py::gil_scoped_release nogil;
    gpu::batch_norm_forward_eval(y.f32(), x.f32(), rm.f32(), rv.f32(), w.f32(), b.f32(), N, C, L,
                                 eps, stream_arg(stream));
  }, py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"),
  py::arg("bias"), py::arg("y"), py::arg("eps"), py::arg("stream") = 0,
  "y of x (N,C,L) normalised with the running statistics.");

  m.def("batch_norm_backward", [](const py::object& dyo, const py::object& xo,
                                  const py::object& wo, const py::object& mo,
                                  const py::object& io, const py::object& dxo,
                                  const py::object& dwo, const py::object& dbo, bool training,
                                  uintptr_t stream) {
    const char* fn = "batch_norm_backward";
    const Arg dy = array_arg(dyo, DType::float32, fn, "dy", false);
    const Arg x = array_arg(xo, DType::float32, fn, "x", false);
    check_ndim(x, 3, fn, "x");
    check_shape(dy, x.shape, fn, "dy");
    const int64_t N = x.dim(0), C = x.dim(1), L = x.dim(2);
    const Arg w = channel_arg(wo, C, true, false, fn, "weight");
    const Arg mean = channel_arg(mo, C, false, false, fn, "mean");
    const Arg invstd = channel_arg(io, C, false, false, fn, "invstd");
    const Arg dx = array_arg(dxo, DType::float32, fn, "dx", true);
    const Arg dw = channel_arg(dwo, C, false, true, fn, "dweight");
    const Arg db = channel_arg(dbo, C, false, true, fn, "dbias");
    check_shape(dx, x.shape, fn, "dx");
    for (const Arg* out : {&dx, &dw, &db})
      for (const Arg* in : {&dy, &x, &w, &mean, &invstd})
        check_no_overlap(*out, *in, fn, "an output", "an input");
    check_no_overlap(dw, db, fn, "dweight", "dbias");
    check_no_overlap(dx, dw, fn, "dx", "dweight");
    check_no_overlap(dx, db, fn, "dx", "dbias");
    py::gil_scoped_release nogil;
    gpu::batch_norm_backward(dx.f32(), dw.f32(), db.f32(), dy.f32(), x.f32(), w.f32(),
                             mean.f32(), invstd.f32(), N, C, L, training, stream_arg(stream));
  }, py::arg("dy"), py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("invstd"),
  py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("training"),
  py::arg("stream") = 0, "dx, dweight, dbias of batch norm (see numpy_ref/batch_norm.py).");
}

}  // namespace pyengine::bindings
