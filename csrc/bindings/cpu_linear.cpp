// pyengine._cpu bindings of the GEMM (csrc/cpu/gemm*.cpp) and the linear kernels built on it.
//
// Shape letters: linear: M rows, K input features, N output features; x (M,K), w (N,K), b (N),
// y and dy (M,N). sgemm: C (M,N) = op(A) (M,K) op(B) (K,N).
// Arrays are checked with bindings/checks.h before the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "cpu/gemm.h"

namespace pyengine::bindings {

namespace {

void check_ndim(const py::array& a, py::ssize_t ndim, const char* fn, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) +
                          "-d, got a " + describe(a));
}

void check_dim(const py::array& a, py::ssize_t axis, int64_t expected, const char* fn,
               const char* name, const char* what) {
  if (static_cast<int64_t>(a.shape(axis)) != expected)
    throw py::value_error(std::string(fn) + ": " + name + " is a " + describe(a) + " but " +
                          what + " is " + std::to_string(expected));
}

// An optional 1-d bias of n elements (None: nullptr).
const float* optional_bias(const py::object& obj, int64_t n, const char* fn, const char* name,
                           FloatArray& keep) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a float32 array or None");
  keep = float32_array(py::reinterpret_borrow<py::array>(obj), fn, name, false);
  check_ndim(keep, 1, fn, name);
  check_dim(keep, 0, n, fn, name, "its expected length");
  return keep.data();
}

}  // namespace

void bind_linear(pybind11::module_& m) {
  m.def("linear_forward", [](const py::array& x_in, const py::array& w_in,
                             const py::object& b_in, const py::array& out_in) {
    const char* fn = "linear_forward";
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray w = float32_array(w_in, fn, "w", false);
    FloatArray out = float32_array(out_in, fn, "out", true);
    check_ndim(x, 2, fn, "x");
    check_ndim(w, 2, fn, "w");
    check_ndim(out, 2, fn, "out");
    const int64_t M = x.shape(0), K = x.shape(1), N = w.shape(0);
    check_dim(w, 1, K, fn, "w", "x's feature count K");
    check_dim(out, 0, M, fn, "out", "x's row count M");
    check_dim(out, 1, N, fn, "out", "w's output count N");
    FloatArray b;
    const float* bp = optional_bias(b_in, N, fn, "b", b);
    check_no_overlap(out, x, fn, "out", "x");
    check_no_overlap(out, w, fn, "out", "w");
    if (bp) check_no_overlap(out, b, fn, "out", "b");
    const float* xp = x.data();
    const float* wp = w.data();
    float* yp = out.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::GemmEpilogue ep;
    ep.col_bias = bp;
    // y (M x N) = x (M x K) * w^T: w (N x K) is op(B) transposed.
    pyengine::cpu::sgemm(false, true, M, N, K, 1.0f, xp, K, wp, K, 0.0f, yp, N, ep);
  }, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert(),
  py::arg("out").noconvert(), "out (M,N) = x (M,K) @ w (N,K)^T + b (N,) or no bias (None).");

  m.def("linear_backward_data", [](const py::array& dy_in, const py::array& w_in,
                                   const py::array& dx_in) {
    const char* fn = "linear_backward_data";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray w = float32_array(w_in, fn, "w", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_ndim(dy, 2, fn, "dy");
    check_ndim(w, 2, fn, "w");
    check_ndim(dx, 2, fn, "dx");
    const int64_t M = dy.shape(0), N = dy.shape(1), K = w.shape(1);
    check_dim(w, 0, N, fn, "w", "dy's column count N");
    check_dim(dx, 0, M, fn, "dx", "dy's row count M");
    check_dim(dx, 1, K, fn, "dx", "w's feature count K");
    check_no_overlap(dx, dy, fn, "dx", "dy");
    check_no_overlap(dx, w, fn, "dx", "w");
    const float* dyp = dy.data();
    const float* wp = w.data();
    float* dxp = dx.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::sgemm(false, false, M, K, N, 1.0f, dyp, N, wp, K, 0.0f, dxp, K);
  }, py::arg("dy").noconvert(), py::arg("w").noconvert(), py::arg("dx").noconvert(),
  "dx (M,K) = dy (M,N) @ w (N,K).");

  m.def("linear_backward_weight", [](const py::array& dy_in, const py::array& x_in,
                                     const py::array& dw_in) {
    const char* fn = "linear_backward_weight";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray dw = float32_array(dw_in, fn, "dw", true);
    check_ndim(dy, 2, fn, "dy");
    check_ndim(x, 2, fn, "x");
    check_ndim(dw, 2, fn, "dw");
    const int64_t M = dy.shape(0), N = dy.shape(1), K = x.shape(1);
    check_dim(x, 0, M, fn, "x", "dy's row count M");
    check_dim(dw, 0, N, fn, "dw", "dy's column count N");
    check_dim(dw, 1, K, fn, "dw", "x's feature count K");
    check_no_overlap(dw, dy, fn, "dw", "dy");
    check_no_overlap(dw, x, fn, "dw", "x");
    const float* dyp = dy.data();
    const float* xp = x.data();
    float* dwp = dw.mutable_data();
    py::gil_scoped_release nogil;
    // dw (N x K) = dy^T (N x M) * x (M x K): dy is op(A) transposed.
    pyengine::cpu::sgemm(true, false, N, K, M, 1.0f, dyp, N, xp, K, 0.0f, dwp, K);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("dw").noconvert(),
  "dw (N,K) = dy (M,N)^T @ x (M,K); zeros when M = 0.");

  m.def("linear_backward_bias", [](const py::array& dy_in, const py::array& db_in) {
    const char* fn = "linear_backward_bias";
    FloatArray dy = float32_array(dy_in, fn, "dy", false);
    FloatArray db = float32_array(db_in, fn, "db", true);
    check_ndim(dy, 2, fn, "dy");
    check_ndim(db, 1, fn, "db");
    const int64_t M = dy.shape(0), N = dy.shape(1);
    check_dim(db, 0, N, fn, "db", "dy's column count N");
    check_no_overlap(db, dy, fn, "db", "dy");
    const float* dyp = dy.data();
    float* dbp = db.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::sum_rows(dbp, dyp, M, N);
  }, py::arg("dy").noconvert(), py::arg("db").noconvert(), "db (N,) = dy (M,N) summed over rows.");

  m.def("sgemm", [](const py::array& a_in, const py::array& b_in, const py::array& c_in,
                    bool trans_a, bool trans_b, float alpha, float beta,
                    const py::object& row_bias_in, const py::object& col_bias_in, bool relu,
                    bool parallel) {
    const char* fn = "sgemm";
    FloatArray a = float32_array(a_in, fn, "a", false);
    FloatArray b = float32_array(b_in, fn, "b", false);
    FloatArray c = float32_array(c_in, fn, "c", true);
    check_ndim(a, 2, fn, "a");
    check_ndim(b, 2, fn, "b");
    check_ndim(c, 2, fn, "c");
    const int64_t M = trans_a ? a.shape(1) : a.shape(0);
    const int64_t K = trans_a ? a.shape(0) : a.shape(1);
    const int64_t N = trans_b ? b.shape(0) : b.shape(1);
    check_dim(b, trans_b ? 1 : 0, K, fn, "b", "op(a)'s column count K");
    check_dim(c, 0, M, fn, "c", "op(a)'s row count M");
    check_dim(c, 1, N, fn, "c", "op(b)'s column count N");
    FloatArray rb, cb;
    pyengine::cpu::GemmEpilogue ep;
    ep.row_bias = optional_bias(row_bias_in, M, fn, "row_bias", rb);
    ep.col_bias = optional_bias(col_bias_in, N, fn, "col_bias", cb);
    ep.relu = relu;
    check_no_overlap(c, a, fn, "c", "a");
    check_no_overlap(c, b, fn, "c", "b");
    if (ep.row_bias) check_no_overlap(c, rb, fn, "c", "row_bias");
    if (ep.col_bias) check_no_overlap(c, cb, fn, "c", "col_bias");
    const float* ap = a.data();
    const float* bp = b.data();
    float* cp = c.mutable_data();
    const int64_t lda = a.shape(1), ldb = b.shape(1), ldc = c.shape(1);
    py::gil_scoped_release nogil;
    if (parallel)
      pyengine::cpu::sgemm(trans_a, trans_b, M, N, K, alpha, ap, lda, bp, ldb, beta, cp, ldc, ep);
    else
      pyengine::cpu::sgemm_serial(trans_a, trans_b, M, N, K, alpha, ap, lda, bp, ldb, beta, cp,
                                  ldc, ep);
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
  py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0f,
  py::arg("beta") = 0.0f, py::arg("row_bias") = py::none(), py::arg("col_bias") = py::none(),
  py::arg("relu") = false, py::arg("parallel") = true,
  "c = alpha * op(a) @ op(b) + beta * c (+ row_bias[:, None]) (+ col_bias) (relu), in place. "
  "op(x) = x.T when trans_x. beta = 0 never reads c. parallel=False: the calling thread only.");

  m.def("gemm_register_tile", [] {
    int mr = 0, nr = 0;
    pyengine::cpu::gemm_register_tile(&mr, &nr);
    return py::make_tuple(mr, nr);
  }, "(MR, NR): the register tile of the active ISA path's GEMM micro-kernel.");
}

}  // namespace pyengine::bindings
