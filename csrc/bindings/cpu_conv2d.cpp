// pyengine._cpu bindings of the convolution kernels (csrc/cpu/conv2d*.cpp and the algorithms
// they dispatch to): forward, backward-data, backward-weight, bias gradient, the algorithm
// names and the `auto` choice.
//
// Shape letters: N batch, C input channels, K output channels, G groups, H W input plane,
// R S kernel, P Q output plane; x (N,C,H,W), w (K,C/G,R,S), b (K), y and dy (N,K,P,Q).
// Every array and the geometry are checked here before the GIL is released: a bad argument
// raises TypeError or ValueError, an unknown algorithm ValueError naming the valid ones.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "common/params.h"
#include "cpu/conv2d.h"

namespace pyengine::bindings {

namespace {

using pyengine::Conv2dParams;
using pyengine::cpu::Conv2dAlgo;
using pyengine::cpu::Conv2dShape;

std::string shape_str(int64_t a, int64_t b, int64_t c, int64_t d) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + ", " +
         std::to_string(d) + ")";
}

void check_4d(const py::array& a, const char* fn, const char* name) {
  if (a.ndim() != 4)
    throw py::value_error(std::string(fn) + ": " + name + " must be 4-d, got a " + describe(a));
}

void check_shape(const py::array& a, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                 const char* fn, const char* name) {
  if (a.shape(0) != n0 || a.shape(1) != n1 || a.shape(2) != n2 || a.shape(3) != n3)
    throw py::value_error(std::string(fn) + ": " + name + " is a " + describe(a) +
                          " but the convolution needs shape " + shape_str(n0, n1, n2, n3));
}

Conv2dAlgo parse_algo(const std::string& name, const char* fn) {
  try {
    return pyengine::cpu::conv2d_algo_from_name(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string(fn) + ": " + e.what());
  }
}

// The full geometry from x's shape (N, C, H, W), w's shape (K, Cg = C/G, R, S) and the params;
// ValueError when they do not describe a valid convolution.
Conv2dShape resolve(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t Cg, int64_t R,
                    int64_t S, const Conv2dParams& p, const char* fn) {
  const auto err = [fn](const std::string& msg) {
    return py::value_error(std::string(fn) + ": " + msg);
  };
  if (p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 || p.dilation_w < 1)
    throw err("stride and dilation must be >= 1");
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    throw err("padding must be >= 0");
  if (p.groups < 1) throw err("groups must be >= 1, got " + std::to_string(p.groups));
  if (N < 0 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1)
    throw err("needs at least one input channel, output channel, row and column; got input " +
              shape_str(N, C, H, W) + " and weight " + shape_str(K, Cg, R, S));
  if (C % p.groups != 0 || K % p.groups != 0 || Cg * p.groups != C)
    throw err("input " + shape_str(N, C, H, W) + " and weight " + shape_str(K, Cg, R, S) +
              " do not match groups=" + std::to_string(p.groups));
  const int64_t P = p.output_h(H, R), Q = p.output_w(W, S);
  if (P < 1 || Q < 1)
    throw err("the kernel does not fit the padded input " + shape_str(N, C, H, W) +
              " (output " + std::to_string(P) + " x " + std::to_string(Q) + ")");
  return Conv2dShape{N, C, H, W, K, R, S, P, Q};
}

const char* choice_name(Conv2dAlgo a) {
  return pyengine::cpu::kConv2dAlgoNames[static_cast<int>(a)];
}

}  // namespace

void bind_conv2d(pybind11::module_& m) {
  m.def("conv2d_algorithms", &pyengine::cpu::conv2d_algorithm_names,
        "The conv2d algorithm names (besides 'auto'), in dispatch order.");

  m.def("conv2d_forward", [](const py::array& x_in, const py::array& w_in, const py::object& b_in,
                             const py::array& out_in, const Conv2dParams& p,
                             const std::string& algo_name) {
    const char* fn = "conv2d_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray w = float32_array(w_in, fn, "w", false);
    FloatArray out = float32_array(out_in, fn, "out", true);
    check_4d(x, fn, "x");
    check_4d(w, fn, "w");
    check_4d(out, fn, "out");
    const Conv2dShape s = resolve(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                  w.shape(0), w.shape(1), w.shape(2), w.shape(3), p, fn);
    check_shape(out, s.N, s.K, s.P, s.Q, fn, "out");
    FloatArray b;
    const float* bp = nullptr;
    if (!b_in.is_none()) {
      if (!py::isinstance<py::array>(b_in))
        throw py::type_error(std::string(fn) + ": b must be a float32 array or None");
      b = float32_array(py::reinterpret_borrow<py::array>(b_in), fn, "b", false);
      if (b.ndim() != 1 || b.shape(0) != s.K)
        throw py::value_error(std::string(fn) + ": b must have shape (" + std::to_string(s.K) +
                              ",), got a " + describe(b));
      check_no_overlap(out, b, fn, "out", "b");
      bp = b.data();
    }
    check_no_overlap(out, x, fn, "out", "x");
    check_no_overlap(out, w, fn, "out", "w");
    const Conv2dAlgo algo = parse_algo(algo_name, fn);
    const float* xp = x.data();
    const float* wp = w.data();
    float* yp = out.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::conv2d_forward(algo, yp, xp, wp, bp, s, p);
  }, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert(),
  py::arg("out").noconvert(), py::arg("params"), py::arg("algo") = "auto",
  "out (N,K,P,Q) = conv2d(x (N,C,H,W), w (K,C/G,R,S)) + b (K,) or no bias (None); params: a "
  "_cpu.Conv2dParams.");

  m.def("conv2d_backward_data", [](const py::array& dy_in, const py::array& w_in,
                                   const py::array& dx_in, const Conv2dParams& p,
                                   const std::string& algo_name) {
    const char* fn = "conv2d_backward_data";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray w = float32_array(w_in, fn, "w", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_4d(dy, fn, "dy");
    check_4d(w, fn, "w");
    check_4d(dx, fn, "dx");
    const Conv2dShape s = resolve(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3),
                                  w.shape(0), w.shape(1), w.shape(2), w.shape(3), p, fn);
    check_shape(dy, s.N, s.K, s.P, s.Q, fn, "dy");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, w, fn, "dx", "w");
    const Conv2dAlgo algo = parse_algo(algo_name, fn);
    const float* dyp = dy.data();
    const float* wp = w.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::conv2d_backward_data(algo, dxp, dyp, wp, s, p);
  }, py::arg("dy").noconvert(), py::arg("w").noconvert(), py::arg("dx").noconvert(),
  py::arg("params"), py::arg("algo") = "auto",
  "dx (N,C,H,W; its shape gives x's) = the input gradient of conv2d given dy (N,K,P,Q) and w.");

  m.def("conv2d_backward_weight", [](const py::array& dy_in, const py::array& x_in,
                                     const py::array& dw_in, const Conv2dParams& p,
                                     const std::string& algo_name) {
    const char* fn = "conv2d_backward_weight";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray dw = float32_array(dw_in, fn, "dw", true);
    check_4d(dy, fn, "dy");
    check_4d(x, fn, "x");
    check_4d(dw, fn, "dw");
    const Conv2dShape s = resolve(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                  dw.shape(0), dw.shape(1), dw.shape(2), dw.shape(3), p, fn);
    check_shape(dy, s.N, s.K, s.P, s.Q, fn, "dy");
    check_no_overlap(dw, dy, fn, "dw", "dy");
    check_no_overlap(dw, x, fn, "dw", "x");
    const Conv2dAlgo algo = parse_algo(algo_name, fn);
    const float* dyp = dy.data();
    const float* xp = x.data();
    float* dwp = dw.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::conv2d_backward_weight(algo, dwp, dyp, xp, s, p);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("dw").noconvert(),
  py::arg("params"), py::arg("algo") = "auto",
  "dw (K,C/G,R,S; its shape gives w's) = the weight gradient of conv2d given dy and x.");

  m.def("conv2d_backward_bias", [](const py::array& dy_in, const py::array& db_in) {
    const char* fn = "conv2d_backward_bias";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray db = float32_array(db_in, fn, "db", true);
    check_4d(dy, fn, "dy");
    if (db.ndim() != 1 || db.shape(0) != dy.shape(1))
      throw py::value_error(std::string(fn) + ": db must have shape (" +
                            std::to_string(dy.shape(1)) + ",), got a " + describe(db));
    check_no_overlap(db, dy, fn, "db", "dy");
    const int64_t N = dy.shape(0), K = dy.shape(1), PQ = dy.shape(2) * dy.shape(3);
    const float* dyp = dy.data();
    float* dbp = db.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::conv2d_backward_bias(dbp, dyp, N, K, PQ);
  }, py::arg("dy").noconvert(), py::arg("db").noconvert(),
  "db (K,) = dy (N,K,P,Q) summed over N, P and Q.");

  m.def("conv2d_auto_choice", [](const std::string& direction, const py::tuple& x_shape,
                                 const py::tuple& w_shape, const Conv2dParams& p) {
    const char* fn = "conv2d_auto_choice";
    if (x_shape.size() != 4 || w_shape.size() != 4)
      throw py::value_error(std::string(fn) + ": x_shape and w_shape must have 4 entries");
    auto dim = [&](const py::tuple& t, size_t i) { return t[i].cast<int64_t>(); };
    const Conv2dShape s = resolve(dim(x_shape, 0), dim(x_shape, 1), dim(x_shape, 2),
                                  dim(x_shape, 3), dim(w_shape, 0), dim(w_shape, 1),
                                  dim(w_shape, 2), dim(w_shape, 3), p, fn);
    if (direction == "forward") return choice_name(pyengine::cpu::conv2d_choose_forward(s, p));
    if (direction == "backward_data")
      return choice_name(pyengine::cpu::conv2d_choose_backward_data(s, p));
    if (direction == "backward_weight")
      return choice_name(pyengine::cpu::conv2d_choose_backward_weight(s, p));
    throw py::value_error(std::string(fn) + ": direction must be 'forward', 'backward_data' or "
                          "'backward_weight', got '" + direction + "'");
  }, py::arg("direction"), py::arg("x_shape"), py::arg("w_shape"), py::arg("params"),
  "The algorithm that algo='auto' runs for this shape and direction.");
}

}  // namespace pyengine::bindings
