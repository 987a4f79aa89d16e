// pyengine._cpu bindings of the batch normalisation kernels (csrc/cpu/batch_norm*.cpp): training
// and eval forward, backward.
//
// Every array is checked before the GIL is released: float32, C-contiguous, x (N, C, L) and the
// per-channel vectors (C,), writeable outputs that overlap no input. A bad argument raises
// TypeError or ValueError.
//
// Shape letters: N batch, C channels, L positions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "cpu/batch_norm.h"

namespace pyengine::bindings {
namespace {

struct NCL {
  int64_t n, c, l;
};

NCL ncl_of(const py::array& x, const char* fn, const char* name) {
  if (x.ndim() != 3)
    throw py::value_error(std::string(fn) + ": " + name + " must be 3-d (N, C, L), got a " +
                          describe(x));
  return {x.shape(0), x.shape(1), x.shape(2)};
}

FloatArray channel_vector(const py::array& a, int64_t C, const char* fn, const char* name,
                          bool output) {
  FloatArray v = float32_array(a, fn, name, output);
  if (v.ndim() != 1 || v.shape(0) != C)
    throw py::value_error(std::string(fn) + ": " + name + " must have shape (" +
                          std::to_string(C) + ",), got a " + describe(v));
  return v;
}

// A (C,) vector or null for None.
const float* optional_channel_vector(const py::object& a, int64_t C, const char* fn,
                                     const char* name, FloatArray* holder) {
  if (a.is_none()) return nullptr;
  *holder = channel_vector(a.cast<py::array>(), C, fn, name, false);
  return holder->data();
}

void check_outputs_disjoint(std::initializer_list<const py::array*> outputs,
                            std::initializer_list<const py::array*> inputs, const char* fn) {
  for (const py::array* o : outputs) {
    for (const py::array* i : inputs)
      if (i != nullptr) check_disjoint(*o, *i, fn, "an output", "an input");
    for (const py::array* o2 : outputs)
      if (o2 != o) check_disjoint(*o, *o2, fn, "an output", "another output");
  }
}

}  // namespace

void bind_batch_norm(py::module_& m) {
  m.def("batch_norm_forward_train", [](const py::array& x_in, const py::object& w_in,
                                       const py::object& b_in, double eps,
                                       const py::array& y_in, const py::array& mean_in,
                                       const py::array& invstd_in) {
    const char* fn = "batch_norm_forward_train";
    FloatArray x = float32_array(x_in, fn, "x", false);
    const NCL d = ncl_of(x, fn, "x");
    FloatArray wh, bh;
    const float* w = optional_channel_vector(w_in, d.c, fn, "weight", &wh);
    const float* b = optional_channel_vector(b_in, d.c, fn, "bias", &bh);
    FloatArray y = float32_array(y_in, fn, "y", true);
    check_same_shape(y, x, fn, "y", "x");
    FloatArray mean = channel_vector(mean_in, d.c, fn, "mean", true);
    FloatArray invstd = channel_vector(invstd_in, d.c, fn, "invstd", true);
    check_outputs_disjoint({&y, &mean, &invstd}, {&x, w ? &wh : nullptr, b ? &bh : nullptr}, fn);
    if (!(eps >= 0.0)) throw py::value_error(std::string(fn) + ": eps must be >= 0");
    if (x.size() == 0)
      throw py::value_error(std::string(fn) + ": needs at least one value per channel, got a " +
                            describe(x));
    float* yp = y.mutable_data();
    float* mp = mean.mutable_data();
    float* ip = invstd.mutable_data();
    const float* xp = x.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::batch_norm_forward_train(yp, mp, ip, xp, w, b, d.n, d.c, d.l, eps);
  }, py::arg("x").noconvert(), py::arg("weight").none(true), py::arg("bias").none(true),
  py::arg("eps"), py::arg("y").noconvert(), py::arg("mean").noconvert(),
  py::arg("invstd").noconvert(),
  "Fills y (N,C,L), mean and invstd (C,) with the batch statistics of x (N,C,L).");

  m.def("batch_norm_forward_eval", [](const py::array& x_in, const py::array& rm_in,
                                      const py::array& rv_in, const py::object& w_in,
                                      const py::object& b_in, double eps,
                                      const py::array& y_in) {
    const char* fn = "batch_norm_forward_eval";
    FloatArray x = float32_array(x_in, fn, "x", false);
    const NCL d = ncl_of(x, fn, "x");
    FloatArray rm = channel_vector(rm_in, d.c, fn, "running_mean", false);
    FloatArray rv = channel_vector(rv_in, d.c, fn, "running_var", false);
    FloatArray wh, bh;
    const float* w = optional_channel_vector(w_in, d.c, fn, "weight", &wh);
    const float* b = optional_channel_vector(b_in, d.c, fn, "bias", &bh);
    FloatArray y = float32_array(y_in, fn, "y", true);
    check_same_shape(y, x, fn, "y", "x");
    check_outputs_disjoint({&y}, {&x, &rm, &rv, w ? &wh : nullptr, b ? &bh : nullptr}, fn);
    if (x.size() == 0) return;
    float* yp = y.mutable_data();
    const float* xp = x.data();
    const float* mp = rm.data();
    const float* vp = rv.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::batch_norm_forward_eval(yp, xp, mp, vp, w, b, d.n, d.c, d.l, eps);
  }, py::arg("x").noconvert(), py::arg("running_mean").noconvert(),
  py::arg("running_var").noconvert(), py::arg("weight").none(true), py::arg("bias").none(true),
  py::arg("eps"), py::arg("y").noconvert(),
  "Fills y (N,C,L) with x normalised by the running statistics.");

  m.def("batch_norm_backward", [](const py::array& dy_in, const py::array& x_in,
                                  const py::object& w_in, const py::array& mean_in,
                                  const py::array& invstd_in, bool training,
                                  const py::array& dx_in, const py::array& dw_in,
                                  const py::array& db_in) {
    const char* fn = "batch_norm_backward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    const NCL d = ncl_of(x, fn, "x");
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    check_same_shape(dy, x, fn, "dy", "x");
    FloatArray wh;
    const float* w = optional_channel_vector(w_in, d.c, fn, "weight", &wh);
    FloatArray mean = channel_vector(mean_in, d.c, fn, "mean", false);
    FloatArray invstd = channel_vector(invstd_in, d.c, fn, "invstd", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_same_shape(dx, x, fn, "dx", "x");
    FloatArray dw = channel_vector(dw_in, d.c, fn, "dweight", true);
    FloatArray db = channel_vector(db_in, d.c, fn, "dbias", true);
    check_outputs_disjoint({&dx, &dw, &db}, {&x, &dy, &mean, &invstd, w ? &wh : nullptr}, fn);
    float* dxp = dx.mutable_data();
    float* dwp = dw.mutable_data();
    float* dbp = db.mutable_data();
    const float* dyp = dy.data();
    const float* xp = x.data();
    const float* mp = mean.data();
    const float* ip = invstd.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::batch_norm_backward(dxp, dwp, dbp, dyp, xp, w, mp, ip, d.n, d.c, d.l,
                                       training);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("weight").none(true),
  py::arg("mean").noconvert(), py::arg("invstd").noconvert(), py::arg("training"),
  py::arg("dx").noconvert(), py::arg("dweight").noconvert(), py::arg("dbias").noconvert(),
  "Fills dx (N,C,L), dweight and dbias (C,).");
}

}  // namespace pyengine::bindings
