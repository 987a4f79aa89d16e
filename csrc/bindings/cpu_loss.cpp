// pyengine._cpu bindings of the loss kernels (csrc/cpu/loss*.cpp): the fused cross-entropy
// (forward and backward in one pass over the logits), nll_loss, mse_loss and smooth_l1_loss.
//
// Every array is checked before the GIL is released: dtype (float32; int64 class targets;
// float64 log-sum-exp), C-contiguity, shapes, writeable outputs that overlap no input, and class
// targets in [0, C) or equal to ignore_index (the kernels index the logits and the weight with
// them). A bad argument raises TypeError or ValueError.
//
// Shape letters: M rows, C classes, n elements of an element-wise loss.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"
#include "cpu/loss.h"

namespace pyengine::bindings {
namespace {

using pyengine::cpu::LossOptions;
using pyengine::cpu::Reduction;
using DoubleArray = py::array_t<double, py::array::c_style>;

std::string where(const char* fn) { return std::string(fn) + ": "; }

Reduction parse_reduction(const std::string& r, const char* fn) {
  if (r == "none") return Reduction::none;
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  throw py::value_error(where(fn) + "reduction must be 'none', 'mean' or 'sum', got '" + r + "'");
}

DoubleArray float64_array(const py::array& a, const char* fn, const char* name, bool output) {
  if (!py::isinstance<py::array_t<double>>(a))
    throw py::type_error(where(fn) + name + " must be a float64 array, got a " + describe(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(where(fn) + name + " must be C-contiguous, got a strided " +
                          describe(a));
  if (output && !a.writeable()) throw py::value_error(where(fn) + name + " must be writeable");
  return py::reinterpret_borrow<DoubleArray>(a);
}

void check_shape(const py::array& a, const std::vector<int64_t>& shape, const char* fn,
                 const char* name) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(k) == shape[k];
  if (!ok) {
    std::string s = "(";
    for (size_t k = 0; k < shape.size(); ++k)
      s += std::to_string(shape[k]) + (shape.size() == 1 ? "," : (k + 1 < shape.size() ? ", " : ""));
    throw py::value_error(where(fn) + name + " must have shape " + s + "), got a " + describe(a));
  }
}

// (M,) for 'none', else a single value (0-d, or any shape of one element).
void check_reduced(const py::array& a, Reduction red, int64_t m, const char* fn,
                   const char* name) {
  if (red == Reduction::none) {
    check_shape(a, {m}, fn, name);
  } else if (a.size() != 1) {
    throw py::value_error(where(fn) + name + " must hold one value for a reduced loss, got a " +
                          describe(a));
  }
}

struct Rows {
  int64_t M, C;
};

Rows rows_of(const py::array& logits, const char* fn, const char* name) {
  if (logits.ndim() != 2)
    throw py::value_error(where(fn) + name + " must be 2-d (M, C), got a " + describe(logits));
  return {logits.shape(0), logits.shape(1)};
}

const float* optional_weight(const py::object& w, int64_t C, const char* fn,
                             FloatArray* holder) {
  if (w.is_none()) return nullptr;
  *holder = float32_array(w.cast<py::array>(), fn, "weight", false);
  check_shape(*holder, {C}, fn, "weight");
  return holder->data();
}

// Class targets: (M,) int64, each in [0, C) or equal to ignore_index.
Int64Array class_targets(const py::array& t, const Rows& r, int64_t ignore_index,
                         const char* fn) {
  Int64Array target = int64_array(t, fn, "target", false);
  check_shape(target, {r.M}, fn, "target");
  const int64_t* p = target.data();
  for (int64_t k = 0; k < r.M; ++k) {
    if (p[k] != ignore_index && (p[k] < 0 || p[k] >= r.C))
      throw py::value_error(where(fn) + "target[" + std::to_string(k) + "] = " +
                            std::to_string(p[k]) + " is not a class index in [0, " +
                            std::to_string(r.C) + ") nor ignore_index (" +
                            std::to_string(ignore_index) + ")");
  }
  return target;
}

void bind_cross_entropy(py::module_& m) {
  m.def("cross_entropy_forward", [](const py::array& logits_in, const py::array& target_in,
                                    const py::object& weight_in, const py::array& loss_in,
                                    const py::array& lse_in, const std::string& reduction,
                                    int64_t ignore_index, double label_smoothing) {
    const char* fn = "cross_entropy_forward";
    FloatArray logits = float32_array(logits_in, fn, "logits", false);
    const Rows r = rows_of(logits, fn, "logits");
    LossOptions o{parse_reduction(reduction, fn), ignore_index, label_smoothing};
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
      throw py::value_error(where(fn) + "label_smoothing must be in [0, 1]");
    FloatArray wh;
    const float* w = optional_weight(weight_in, r.C, fn, &wh);
    FloatArray loss = float32_array(loss_in, fn, "loss", true);
    DoubleArray lse = float64_array(lse_in, fn, "lse", true);
    check_reduced(loss, o.reduction, r.M, fn, "loss");
    check_shape(lse, {r.M}, fn, "lse");
    check_disjoint(loss, lse, fn, "loss", "lse");
    for (const py::array* in : {static_cast<const py::array*>(&logits), &target_in}) {
      check_disjoint(loss, *in, fn, "loss", "an input");
      check_disjoint(lse, *in, fn, "lse", "an input");
    }
    if (w != nullptr) {
      check_disjoint(loss, wh, fn, "loss", "weight");
      check_disjoint(lse, wh, fn, "lse", "weight");
    }
    float* lp = loss.mutable_data();
    double* sp = lse.mutable_data();
    const float* xp = logits.data();
    if (py::isinstance<py::array_t<float>>(target_in) && target_in.ndim() == 2) {
      FloatArray target = float32_array(target_in, fn, "target", false);
      check_shape(target, {r.M, r.C}, fn, "target");
      const float* tp = target.data();
      py::gil_scoped_release nogil;
      pyengine::cpu::cross_entropy_forward_prob(lp, sp, xp, tp, w, r.M, r.C, o);
    } else {
      Int64Array target = class_targets(target_in, r, ignore_index, fn);
      const int64_t* tp = target.data();
      py::gil_scoped_release nogil;
      pyengine::cpu::cross_entropy_forward_index(lp, sp, xp, tp, w, r.M, r.C, o);
    }
  }, py::arg("logits").noconvert(), py::arg("target").noconvert(), py::arg("weight").none(true),
  py::arg("loss").noconvert(), py::arg("lse").noconvert(), py::arg("reduction"),
  py::arg("ignore_index"), py::arg("label_smoothing"),
  "Fills loss ((M,) for reduction 'none', else one value) and lse (M,) float64 from logits "
  "(M,C) and int64 class targets (M,) or float32 probabilities (M,C).");

  m.def("cross_entropy_backward", [](const py::array& dloss_in, const py::array& logits_in,
                                     const py::array& target_in, const py::object& weight_in,
                                     const py::object& lse_in, const py::array& dlogits_in,
                                     const std::string& reduction, int64_t ignore_index,
                                     double label_smoothing) {
    const char* fn = "cross_entropy_backward";
    FloatArray logits = float32_array(logits_in, fn, "logits", false);
    const Rows r = rows_of(logits, fn, "logits");
    LossOptions o{parse_reduction(reduction, fn), ignore_index, label_smoothing};
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
      throw py::value_error(where(fn) + "label_smoothing must be in [0, 1]");
    FloatArray dloss = float32_array(dloss_in, fn, "dloss", false);
    check_reduced(dloss, o.reduction, r.M, fn, "dloss");
    FloatArray wh;
    const float* w = optional_weight(weight_in, r.C, fn, &wh);
    DoubleArray lse;
    const double* sp = nullptr;
    if (!lse_in.is_none()) {
      lse = float64_array(lse_in.cast<py::array>(), fn, "lse", false);
      check_shape(lse, {r.M}, fn, "lse");
      sp = lse.data();
    }
    FloatArray dlogits = float32_array(dlogits_in, fn, "dlogits", true);
    check_shape(dlogits, {r.M, r.C}, fn, "dlogits");
    check_disjoint(dlogits, logits, fn, "dlogits", "logits");
    check_disjoint(dlogits, dloss, fn, "dlogits", "dloss");
    check_disjoint(dlogits, target_in, fn, "dlogits", "target");
    if (w != nullptr) check_disjoint(dlogits, wh, fn, "dlogits", "weight");
    if (sp != nullptr) check_disjoint(dlogits, lse, fn, "dlogits", "lse");
    float* gp = dlogits.mutable_data();
    const float* dp = dloss.data();
    const float* xp = logits.data();
    if (py::isinstance<py::array_t<float>>(target_in) && target_in.ndim() == 2) {
      FloatArray target = float32_array(target_in, fn, "target", false);
      check_shape(target, {r.M, r.C}, fn, "target");
      const float* tp = target.data();
      py::gil_scoped_release nogil;
      pyengine::cpu::cross_entropy_backward_prob(gp, dp, xp, tp, w, sp, r.M, r.C, o);
    } else {
      Int64Array target = class_targets(target_in, r, ignore_index, fn);
      const int64_t* tp = target.data();
      py::gil_scoped_release nogil;
      pyengine::cpu::cross_entropy_backward_index(gp, dp, xp, tp, w, sp, r.M, r.C, o);
    }
  }, py::arg("dloss").noconvert(), py::arg("logits").noconvert(), py::arg("target").noconvert(),
  py::arg("weight").none(true), py::arg("lse").none(true), py::arg("dlogits").noconvert(),
  py::arg("reduction"), py::arg("ignore_index"), py::arg("label_smoothing"),
  "Fills dlogits (M,C). lse: the forward's float64 (M,) log-sum-exp, or None to recompute it.");
}

void bind_nll(py::module_& m) {
  m.def("nll_loss_forward", [](const py::array& logp_in, const py::array& target_in,
                               const py::object& weight_in, const py::array& loss_in,
                               const std::string& reduction, int64_t ignore_index) {
    const char* fn = "nll_loss_forward";
    FloatArray logp = float32_array(logp_in, fn, "logp", false);
    const Rows r = rows_of(logp, fn, "logp");
    LossOptions o{parse_reduction(reduction, fn), ignore_index, 0.0};
    Int64Array target = class_targets(target_in, r, ignore_index, fn);
    FloatArray wh;
    const float* w = optional_weight(weight_in, r.C, fn, &wh);
    FloatArray loss = float32_array(loss_in, fn, "loss", true);
    check_reduced(loss, o.reduction, r.M, fn, "loss");
    check_disjoint(loss, logp, fn, "loss", "logp");
    check_disjoint(loss, target, fn, "loss", "target");
    if (w != nullptr) check_disjoint(loss, wh, fn, "loss", "weight");
    float* lp = loss.mutable_data();
    const float* xp = logp.data();
    const int64_t* tp = target.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::nll_loss_forward(lp, xp, tp, w, r.M, r.C, o);
  }, py::arg("logp").noconvert(), py::arg("target").noconvert(), py::arg("weight").none(true),
  py::arg("loss").noconvert(), py::arg("reduction"), py::arg("ignore_index"),
  "Fills loss ((M,) for 'none', else one value) from logp (M,C) and class targets (M,).");

  m.def("nll_loss_backward", [](const py::array& dloss_in, const py::array& target_in,
                                const py::object& weight_in, const py::array& dlogp_in,
                                const std::string& reduction, int64_t ignore_index) {
    const char* fn = "nll_loss_backward";
    FloatArray dlogp = float32_array(dlogp_in, fn, "dlogp", true);
    const Rows r = rows_of(dlogp, fn, "dlogp");
    LossOptions o{parse_reduction(reduction, fn), ignore_index, 0.0};
    Int64Array target = class_targets(target_in, r, ignore_index, fn);
    FloatArray wh;
    const float* w = optional_weight(weight_in, r.C, fn, &wh);
    FloatArray dloss = float32_array(dloss_in, fn, "dloss", false);
    check_reduced(dloss, o.reduction, r.M, fn, "dloss");
    check_disjoint(dlogp, dloss, fn, "dlogp", "dloss");
    check_disjoint(dlogp, target, fn, "dlogp", "target");
    if (w != nullptr) check_disjoint(dlogp, wh, fn, "dlogp", "weight");
    float* gp = dlogp.mutable_data();
    const float* dp = dloss.data();
    const int64_t* tp = target.data();
    py::gil_scoped_release nogil;
    pyengine::cpu::nll_loss_backward(gp, dp, tp, w, r.M, r.C, o);
  }, py::arg("dloss").noconvert(), py::arg("target").noconvert(), py::arg("weight").none(true),
  py::arg("dlogp").noconvert(), py::arg("reduction"), py::arg("ignore_index"),
  "Fills dlogp (M,C) of nll_loss.");
}

// mse_loss / smooth_l1_loss: x and target of one shape (n elements).
void bind_elementwise(py::module_& m) {
  m.def("elementwise_loss_forward", [](const std::string& kind, const py::array& x_in,
                                       const py::array& t_in, const py::array& loss_in,
                                       const std::string& reduction, double beta) {
    const char* fn = "elementwise_loss_forward";
    const Reduction red = parse_reduction(reduction, fn);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray t = float32_array(t_in, fn, "target", false);
    FloatArray loss = float32_array(loss_in, fn, "loss", true);
    check_same_shape(t, x, fn, "target", "x");
    if (red == Reduction::none) check_same_shape(loss, x, fn, "loss", "x");
    else if (loss.size() != 1)
      throw py::value_error(where(fn) + "loss must hold one value for a reduced loss, got a " +
                            describe(loss));
    check_no_overlap(loss, x, fn, "loss", "x");
    check_no_overlap(loss, t, fn, "loss", "target");
    const bool mse = kind == "mse";
    if (!mse && kind != "smooth_l1")
      throw py::value_error(where(fn) + "kind must be 'mse' or 'smooth_l1', got '" + kind + "'");
    if (!mse && !(beta >= 0.0)) throw py::value_error(where(fn) + "beta must be >= 0");
    const int64_t n = x.size();
    float* lp = loss.mutable_data();
    const float* xp = x.data();
    const float* tp = t.data();
    py::gil_scoped_release nogil;
    if (mse) pyengine::cpu::mse_loss_forward(lp, xp, tp, n, red);
    else pyengine::cpu::smooth_l1_loss_forward(lp, xp, tp, n, red, beta);
  }, py::arg("kind"), py::arg("x").noconvert(), py::arg("target").noconvert(),
  py::arg("loss").noconvert(), py::arg("reduction"), py::arg("beta") = 1.0,
  "Fills loss (x's shape for 'none', else one value) of kind 'mse' or 'smooth_l1'.");

  m.def("elementwise_loss_backward", [](const std::string& kind, const py::array& dloss_in,
                                        const py::array& x_in, const py::array& t_in,
                                        const py::array& dx_in, const std::string& reduction,
                                        double beta) {
    const char* fn = "elementwise_loss_backward";
    const Reduction red = parse_reduction(reduction, fn);
    FloatArray dloss = float32_array(dloss_in, fn, "dloss", false);
    FloatArray x = float32_array(x_in, fn, "x", false);
    FloatArray t = float32_array(t_in, fn, "target", false);
    FloatArray dx = float32_array(dx_in, fn, "dx", true);
    check_same_shape(t, x, fn, "target", "x");
    check_same_shape(dx, x, fn, "dx", "x");
    if (red == Reduction::none) check_same_shape(dloss, x, fn, "dloss", "x");
    else if (dloss.size() != 1)
      throw py::value_error(where(fn) + "dloss must hold one value for a reduced loss, got a " +
                            describe(dloss));
    check_no_overlap(dx, x, fn, "dx", "x");
    check_no_overlap(dx, t, fn, "dx", "target");
    check_no_overlap(dx, dloss, fn, "dx", "dloss");
    const bool mse = kind == "mse";
    if (!mse && kind != "smooth_l1")
      throw py::value_error(where(fn) + "kind must be 'mse' or 'smooth_l1', got '" + kind + "'");
    if (!mse && !(beta >= 0.0)) throw py::value_error(where(fn) + "beta must be >= 0");
    const int64_t n = x.size();
    float* gp = dx.mutable_data();
    const float* dp = dloss.data();
    const float* xp = x.data();
    const float* tp = t.data();
    py::gil_scoped_release nogil;
    if (mse) pyengine::cpu::mse_loss_backward(gp, dp, xp, tp, n, red);
    else pyengine::cpu::smooth_l1_loss_backward(gp, dp, xp, tp, n, red, beta);
  }, py::arg("kind"), py::arg("dloss").noconvert(), py::arg("x").noconvert(),
  py::arg("target").noconvert(), py::arg("dx").noconvert(), py::arg("reduction"),
  py::arg("beta") = 1.0, "Fills dx (x's shape) of an 'mse' or 'smooth_l1' loss.");
}

}  // namespace

void bind_loss(py::module_& m) {
  bind_cross_entropy(m);
  bind_nll(m);
  bind_elementwise(m);
}

}  // namespace pyengine::bindings
