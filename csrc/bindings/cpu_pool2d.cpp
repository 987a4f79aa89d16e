// pyengine._cpu bindings of the pooling kernels (csrc/cpu/pool2d*.cpp): max with indices,
// average, max_unpool2d, adaptive average, and their backwards.
//
// Every array is checked before the GIL is released: float32 (indices int64), C-contiguous,
// 4-d (N, C, H, W) with the shapes the params imply, writeable outputs that overlap no input,
// and unpool indices inside the output plane (the kernels would otherwise write or read past
// it). A bad argument raises TypeError or ValueError.
//
// Shape letters: N C H W input, P Q pooled plane (Ho Wo for the unpooled plane of unpool).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "common/params.h"
#include "cpu/pool2d.h"

namespace pyengine::bindings {
namespace {

using pyengine::Pool2dParams;

std::string where(const char* fn) { return std::string(fn) + ": "; }

struct Dims {
  int64_t n, c, h, w;
};

Dims dims4(const py::array& a, const char* fn, const char* name) {
  if (a.ndim() != 4)
    throw py::value_error(where(fn) + name + " must be 4-d (N, C, H, W), got a " + describe(a));
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

void check_dims(const py::array& a, const Dims& d, const char* fn, const char* name) {
  const Dims got = dims4(a, fn, name);
  if (got.n != d.n || got.c != d.c || got.h != d.h || got.w != d.w)
    throw py::value_error(where(fn) + name + " must have shape (" + std::to_string(d.n) + ", " +
                          std::to_string(d.c) + ", " + std::to_string(d.h) + ", " +
                          std::to_string(d.w) + "), got a " + describe(a));
}

// The kernels' index math assumes sane geometry; functional guarantees it, this re-checks the
// parts whose violation could make a kernel read or write outside its arrays.
void check_params(const Pool2dParams& p, const char* fn, bool average) {
  constexpr int64_t kBig = int64_t{1} << 30;
  auto in = [](int64_t v, int64_t lo) { return v >= lo && v < kBig; };
  if (!in(p.kernel_h, 1) || !in(p.kernel_w, 1) || !in(p.stride_h, 1) || !in(p.stride_w, 1) ||
      !in(p.pad_h, 0) || !in(p.pad_w, 0) || !in(p.dilation_h, 1) || !in(p.dilation_w, 1))
    throw py::value_error(where(fn) + "invalid pooling params (kernel, stride and dilation must "
                          "be >= 1, padding >= 0, all below 2^30)");
  if (average && (p.dilation_h != 1 || p.dilation_w != 1))
    throw py::value_error(where(fn) + "average pooling has no dilation; got dilation (" +
                          std::to_string(p.dilation_h) + ", " + std::to_string(p.dilation_w) +
                          ")");
}

Dims pooled(const Dims& x, const Pool2dParams& p, const char* fn) {
  const Dims y{x.n, x.c, p.output_h(x.h), p.output_w(x.w)};
  if (y.h < 1 || y.w < 1)
    throw py::value_error(where(fn) + "the output plane would be " + std::to_string(y.h) + "x" +
                          std::to_string(y.w) + " for an input plane of " +
                          std::to_string(x.h) + "x" + std::to_string(x.w));
  return y;
}

void check_indices_in_plane(const Int64Array& idx, int64_t limit, const char* fn) {
  const int64_t bad = pyengine::cpu::first_index_out_of_range(idx.data(), idx.size(), limit);
  if (bad >= 0)
    throw py::value_error(where(fn) + "indices holds " + std::to_string(idx.data()[bad]) +
                          " at flat position " + std::to_string(bad) +
                          ", outside the unpooled plane [0, " + std::to_string(limit) + ")");
}

}  // namespace

void bind_pool2d(py::module_& m) {
  m.def("max_pool2d_forward", [](const py::array& x_in, const py::array& y_in,
                                 const py::array& idx_in, const Pool2dParams& p) {
    const char* fn = "max_pool2d_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray y = float32_array(y_in, fn, "y", true);
    Int64Array idx = int64_array(idx_in, fn, "indices", true);
    check_params(p, fn, false);
    const Dims xd = dims4(x, fn, "x");
    const Dims yd = pooled(xd, p, fn);
    check_dims(y, yd, fn, "y");
    check_dims(idx, yd, fn, "indices");
    check_disjoint(y, x, fn, "y", "x");
    check_disjoint(idx, x, fn, "indices", "x");
    check_disjoint(idx, y, fn, "indices", "y");
    if (x.size() == 0) return;
    const float* xp = x.data();
    float* yp = y.mutable_data();
    int64_t* ip = idx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::max_pool2d_forward(yp, ip, xp, xd.n * xd.c, xd.h, xd.w, p);
  }, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("indices").noconvert(),
  py::arg("params"), "Fills y and indices (N,C,P,Q) with the window maxima of x (N,C,H,W).");

  m.def("max_pool2d_backward", [](const py::array& dy_in, const py::array& idx_in,
                                  const py::array& dx_in, const Pool2dParams& p) {
    const char* fn = "max_pool2d_backward";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    Int64Array idx = int64_array(idx_in, fn, "indices", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_params(p, fn, false);
    const Dims xd = dims4(dx, fn, "dx");
    const Dims yd = pooled(xd, p, fn);
    check_dims(dy, yd, fn, "dy");
    check_dims(idx, yd, fn, "indices");
    check_disjoint(dx, dy, fn, "dx", "dy");
    check_disjoint(dx, idx, fn, "dx", "indices");
    if (dx.size() == 0) return;
    const float* dyp = dy.data();
    const int64_t* ip = idx.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    // A gather: an index pointing anywhere only decides whether its dy is added, never where
    // a write goes, so no index needs a range check.
    pyengine::cpu::max_pool2d_backward(dxp, dyp, ip, xd.n * xd.c, xd.h, xd.w, p);
  }, py::arg("dy").noconvert(), py::arg("indices").noconvert(), py::arg("dx").noconvert(),
  py::arg("params"), "Fills dx (N,C,H,W) from dy and the forward's indices (N,C,P,Q).");

  m.def("avg_pool2d_forward", [](const py::array& x_in, const py::array& y_in,
                                 const Pool2dParams& p) {
    const char* fn = "avg_pool2d_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray y = float32_array(y_in, fn, "y", true);
    check_params(p, fn, true);
    const Dims xd = dims4(x, fn, "x");
    check_dims(y, pooled(xd, p, fn), fn, "y");
    check_no_overlap(y, x, fn, "y", "x");
    if (x.size() == 0) return;
    const float* xp = x.data();
    float* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::avg_pool2d_forward(yp, xp, xd.n * xd.c, xd.h, xd.w, p);
  }, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("params"),
  "Fills y (N,C,P,Q) with the window averages of x (N,C,H,W).");

  m.def("avg_pool2d_backward", [](const py::array& dy_in, const py::array& dx_in,
                                  const Pool2dParams& p) {
    const char* fn = "avg_pool2d_backward";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_params(p, fn, true);
    const Dims xd = dims4(dx, fn, "dx");
    check_dims(dy, pooled(xd, p, fn), fn, "dy");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    if (dx.size() == 0) return;
    const float* dyp = dy.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::avg_pool2d_backward(dxp, dyp, xd.n * xd.c, xd.h, xd.w, p);
  }, py::arg("dy").noconvert(), py::arg("dx").noconvert(), py::arg("params"),
  "Fills dx (N,C,H,W) from dy (N,C,P,Q).");

  m.def("max_unpool2d_forward", [](const py::array& x_in, const py::array& idx_in,
                                   const py::array& y_in) {
    const char* fn = "max_unpool2d_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    Int64Array idx = int64_array(idx_in, fn, "indices", false);
    FloatArray y = float32_array(y_in, fn, "y", true);
    const Dims xd = dims4(x, fn, "x");
    check_dims(idx, xd, fn, "indices");
    const Dims yd = dims4(y, fn, "y");
    if (yd.n != xd.n || yd.c != xd.c)
      throw py::value_error(where(fn) + "y must have the N and C of x " + describe(x) +
                            ", got a " + describe(y));
    check_no_overlap(y, x, fn, "y", "x");
    check_disjoint(y, idx, fn, "y", "indices");
    if (y.size() == 0) return;
    const int64_t lout = yd.h * yd.w;
    check_indices_in_plane(idx, lout, fn);
    const float* xp = x.data();
    const int64_t* ip = idx.data();
    float* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::max_unpool2d_forward(yp, xp, ip, xd.n * xd.c, xd.h * xd.w, lout);
  }, py::arg("x").noconvert(), py::arg("indices").noconvert(), py::arg("y").noconvert(),
  "Fills y (N,C,Ho,Wo) with zeros and x (N,C,H,W) at its indices (each in [0, Ho*Wo)).");

  m.def("max_unpool2d_backward", [](const py::array& dy_in, const py::array& idx_in,
                                    const py::array& dx_in) {
    const char* fn = "max_unpool2d_backward";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    Int64Array idx = int64_array(idx_in, fn, "indices", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    const Dims xd = dims4(dx, fn, "dx");
    check_dims(idx, xd, fn, "indices");
    const Dims yd = dims4(dy, fn, "dy");
    if (yd.n != xd.n || yd.c != xd.c)
      throw py::value_error(where(fn) + "dy must have the N and C of dx " + describe(dx) +
                            ", got a " + describe(dy));
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_disjoint(dx, idx, fn, "dx", "indices");
    if (dx.size() == 0) return;
    const int64_t lout = yd.h * yd.w;
    check_indices_in_plane(idx, lout, fn);
    const float* dyp = dy.data();
    const int64_t* ip = idx.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::max_unpool2d_backward(dxp, dyp, ip, xd.n * xd.c, xd.h * xd.w, lout);
  }, py::arg("dy").noconvert(), py::arg("indices").noconvert(), py::arg("dx").noconvert(),
  "Fills dx (N,C,H,W) with dy (N,C,Ho,Wo) gathered at indices.");

  m.def("adaptive_avg_pool2d_forward", [](const py::array& x_in, const py::array& y_in) {
    const char* fn = "adaptive_avg_pool2d_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray y = float32_array(y_in, fn, "y", true);
    const Dims xd = dims4(x, fn, "x");
    const Dims yd = dims4(y, fn, "y");
    if (yd.n != xd.n || yd.c != xd.c)
      throw py::value_error(where(fn) + "y must have the N and C of x " + describe(x) +
                            ", got a " + describe(y));
    if (y.size() > 0 && (xd.h < 1 || xd.w < 1))
      throw py::value_error(where(fn) + "cannot pool an empty plane " + describe(x));
    check_no_overlap(y, x, fn, "y", "x");
    if (y.size() == 0) return;
    const float* xp = x.data();
    float* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::adaptive_avg_pool2d_forward(yp, xp, xd.n * xd.c, xd.h, xd.w, yd.h, yd.w);
  }, py::arg("x").noconvert(), py::arg("y").noconvert(),
  "Fills y (N,C,P,Q) with the adaptive window averages of x (N,C,H,W).");

  m.def("adaptive_avg_pool2d_backward", [](const py::array& dy_in, const py::array& dx_in) {
    const char* fn = "adaptive_avg_pool2d_backward";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    const Dims xd = dims4(dx, fn, "dx");
    const Dims yd = dims4(dy, fn, "dy");
    if (yd.n != xd.n || yd.c != xd.c)
      throw py::value_error(where(fn) + "dy must have the N and C of dx " + describe(dx) +
                            ", got a " + describe(dy));
    if (dx.size() > 0 && (yd.h < 1 || yd.w < 1))
      throw py::value_error(where(fn) + "dy has an empty plane " + describe(dy));
    check_no_overlap(dx, dy, fn, "dx", "dy");
    if (dx.size() == 0) return;
    const float* dyp = dy.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::adaptive_avg_pool2d_backward(dxp, dyp, xd.n * xd.c, xd.h, xd.w, yd.h, yd.w);
  }, py::arg("dy").noconvert(), py::arg("dx").noconvert(),
  "Fills dx (N,C,H,W) from dy (N,C,P,Q) of an adaptive average pool.");
}

}  // namespace pyengine::bindings
