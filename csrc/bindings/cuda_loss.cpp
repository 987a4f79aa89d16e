// Bindings of the loss kernels (csrc/cuda/loss.cu) for both CUDA modules. `p` is a
// pyengine.params.LossParams (reduction, ignore_index, label_smoothing, beta).
//
// Shape letters: M rows, C classes.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/loss.h"

namespace pyengine::bindings {

namespace {

gpu::LossArgs loss_args(const py::handle& p, const char* fn) {
  gpu::LossArgs a;
  const std::string red = py::str(p.attr("reduction"));
  a.reduction = static_cast<gpu::Reduction>(choice(red, {"none", "mean", "sum"}, fn,
                                                   "reduction"));
  a.ignore_index = p.attr("ignore_index").cast<int64_t>();
  a.label_smoothing = p.attr("label_smoothing").cast<float>();
  a.beta = p.attr("beta").cast<float>();
  return a;
}

// The loss output's shape: (M) for 'none', else one element (0-d or (1,)).
void check_loss_shape(const Arg& loss, int64_t M, gpu::Reduction red, const char* fn,
                      const char* name) {
  if (red == gpu::Reduction::none) {
    check_shape(loss, {M}, fn, name);
  } else if (loss.size != 1) {
    throw py::value_error(std::string(fn) + ": " + name + " must have one element, got shape " +
                          shape_str(loss.shape));
  }
}

struct Targets {
  Arg index, prob;
};

// Class indices int64 (M), or probabilities float32 (M, C) (cross-entropy only).
Targets targets(const py::object& to, const Arg& logits, bool allow_prob, const char* fn) {
  Targets t;
  const bool is_prob = allow_prob && py::hasattr(to, "ndim") && to.attr("ndim").cast<int>() == 2;
  if (is_prob) {
    t.prob = array_arg(to, DType::float32, fn, "target", false);
    check_shape(t.prob, logits.shape, fn, "target");
  } else {
    t.index = array_arg(to, DType::int64, fn, "target", false);
    check_shape(t.index, {logits.dim(0)}, fn, "target");
  }
  return t;
}

void check_rows(const Arg& logits, const char* fn, const char* name) {
  check_ndim(logits, 2, fn, name);
  if (logits.dim(0) < 1 || logits.dim(1) < 1)
    throw py::value_error(std::string(fn) + ": " + name + " must not be empty");
}

void bind_pointwise(py::module_& m, const char* fwd, const char* bwd, int kind) {
  m.def(fwd, [fwd, kind](const py::object& xo, const py::object& to, const py::object& lo,
                         const py::object& po, uintptr_t stream) {
    const gpu::LossArgs a = loss_args(po, fwd);
    const Arg x = array_arg(xo, DType::float32, fwd, "x", false);
    const Arg t = array_arg(to, DType::float32, fwd, "target", false);
    const Arg loss = array_arg(lo, DType::float32, fwd, "loss", true);
    check_shape(t, x.shape, fwd, "target");
    if (a.reduction == gpu::Reduction::none) check_shape(loss, x.shape, fwd, "loss");
    else check_loss_shape(loss, 1, a.reduction, fwd, "loss");
    check_no_overlap(loss, x, fwd, "loss", "x");
    check_no_overlap(loss, t, fwd, "loss", "target");
    if (x.size == 0) throw py::value_error(std::string(fwd) + ": x must not be empty");
    py::gil_scoped_release nogil;
    gpu::pointwise_loss_forward(loss.f32(), x.f32(), t.f32(), x.size, kind, a,
                                stream_arg(stream));
  }, py::arg("x"), py::arg("target"), py::arg("loss"), py::arg("p"), py::arg("stream") = 0,
  kind == 0 ? "(x - target)^2, reduced per p.reduction." : "smooth L1 (beta p.beta), reduced.");
  m.def(bwd, [bwd, kind](const py::object& dlo, const py::object& xo, const py::object& to,
                         const py::object& dxo, const py::object& po, uintptr_t stream) {
    const gpu::LossArgs a = loss_args(po, bwd);
    const Arg dloss = array_arg(dlo, DType::float32, bwd, "dloss", false);
    const Arg x = array_arg(xo, DType::float32, bwd, "x", false);
    const Arg t = array_arg(to, DType::float32, bwd, "target", false);
    const Arg dx = array_arg(dxo, DType::float32, bwd, "dx", true);
    check_shape(t, x.shape, bwd, "target");
    check_shape(dx, x.shape, bwd, "dx");
    if (a.reduction == gpu::Reduction::none) check_shape(dloss, x.shape, bwd, "dloss");
    else check_loss_shape(dloss, 1, a.reduction, bwd, "dloss");
    check_no_overlap(dx, x, bwd, "dx", "x");
    check_no_overlap(dx, t, bwd, "dx", "target");
    check_no_overlap(dx, dloss, bwd, "dx", "dloss");
    py::gil_scoped_release nogil;
    gpu::pointwise_loss_backward(dx.f32(), dloss.f32(), x.f32(), t.f32(), x.size, kind, a,
                                 stream_arg(stream));
  }, py::arg("dloss"), py::arg("x"), py::arg("target"), py::arg("dx"), py::arg("p"),
  py::arg("stream") = 0, "dx of the forward; the target's gradient is -dx.");
}

}  // namespace

void bind_cuda_loss(py::module_& m) {
  m.def("cross_entropy_forward", [](const py::object& lo, const py::object& to,
                                    const py::object& wo, const py::object& losso,
                                    const py::object& lseo, const py::object& po,
                                    uintptr_t stream) {
    const char* fn = "cross_entropy_forward";
    const gpu::LossArgs a = loss_args(po, fn);
    const Arg logits = array_arg(lo, DType::float32, fn, "logits", false);
    check_rows(logits, fn, "logits");
    const Targets t = targets(to, logits, true, fn);
    const Arg w = optional_array_arg(wo, DType::float32, fn, "weight", false);
    const Arg loss = array_arg(losso, DType::float32, fn, "loss", true);
    const Arg lse = array_arg(lseo, DType::float32, fn, "lse", true);
    const int64_t M = logits.dim(0), C = logits.dim(1);
    if (w.data != nullptr) check_shape(w, {C}, fn, "weight");
    check_loss_shape(loss, M, a.reduction, fn, "loss");
    check_shape(lse, {M}, fn, "lse");
    for (const Arg* in : {&logits, &t.index, &t.prob, &w}) {
      check_no_overlap(loss, *in, fn, "loss", "an input");
      check_no_overlap(lse, *in, fn, "lse", "an input");
    }
    check_no_overlap(loss, lse, fn, "loss", "lse");
    py::gil_scoped_release nogil;
    gpu::cross_entropy_forward(loss.f32(), lse.f32(), logits.f32(), t.index.i64(), t.prob.f32(),
                               w.f32(), M, C, a, stream_arg(stream));
  }, py::arg("logits"), py::arg("target"), py::arg("weight"), py::arg("loss"), py::arg("lse"),
  py::arg("p"), py::arg("stream") = 0,
  "Fused log-softmax + NLL of logits (M,C): loss ((M) or one element) and lse (M).");

  m.def("cross_entropy_backward", [](const py::object& dlo, const py::object& lo,
                                     const py::object& to, const py::object& wo,
                                     const py::object& dxo, const py::object& po,
                                     uintptr_t stream) {
    const char* fn = "cross_entropy_backward";
    const gpu::LossArgs a = loss_args(po, fn);
    const Arg dloss = array_arg(dlo, DType::float32, fn, "dloss", false);
    const Arg logits = array_arg(lo, DType::float32, fn, "logits", false);
    check_rows(logits, fn, "logits");
    const Targets t = targets(to, logits, true, fn);
    const Arg w = optional_array_arg(wo, DType::float32, fn, "weight", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dlogits", true);
    const int64_t M = logits.dim(0), C = logits.dim(1);
    if (w.data != nullptr) check_shape(w, {C}, fn, "weight");
    check_loss_shape(dloss, M, a.reduction, fn, "dloss");
    check_shape(dx, logits.shape, fn, "dlogits");
    for (const Arg* in : {&dloss, &logits, &t.index, &t.prob, &w})
      check_no_overlap(dx, *in, fn, "dlogits", "an input");
    py::gil_scoped_release nogil;
    gpu::cross_entropy_backward(dx.f32(), dloss.f32(), logits.f32(), t.index.i64(),
                                t.prob.f32(), w.f32(), M, C, a, stream_arg(stream));
  }, py::arg("dloss"), py::arg("logits"), py::arg("target"), py::arg("weight"),
  py::arg("dlogits"), py::arg("p"), py::arg("stream") = 0, "dlogits (M,C) of the forward.");

  m.def("nll_loss_forward", [](const py::object& lo, const py::object& to, const py::object& wo,
                               const py::object& losso, const py::object& po,
                               uintptr_t stream) {
    const char* fn = "nll_loss_forward";
    const gpu::LossArgs a = loss_args(po, fn);
    const Arg logp = array_arg(lo, DType::float32, fn, "logp", false);
    check_rows(logp, fn, "logp");
    const Targets t = targets(to, logp, false, fn);
    const Arg w = optional_array_arg(wo, DType::float32, fn, "weight", false);
    const Arg loss = array_arg(losso, DType::float32, fn, "loss", true);
    const int64_t M = logp.dim(0), C = logp.dim(1);
    if (w.data != nullptr) check_shape(w, {C}, fn, "weight");
    check_loss_shape(loss, M, a.reduction, fn, "loss");
    for (const Arg* in : {&logp, &t.index, &w}) check_no_overlap(loss, *in, fn, "loss", "an input");
    py::gil_scoped_release nogil;
    gpu::nll_loss_forward(loss.f32(), logp.f32(), t.index.i64(), w.f32(), M, C, a,
                          stream_arg(stream));
  }, py::arg("logp"), py::arg("target"), py::arg("weight"), py::arg("loss"), py::arg("p"),
  py::arg("stream") = 0, "-logp[r, target[r]] * weight[target[r]], reduced.");

  m.def("nll_loss_backward", [](const py::object& dlo, const py::object& to,
                                const py::object& wo, const py::object& dxo,
                                const py::object& po, uintptr_t stream) {
    const char* fn = "nll_loss_backward";
    const gpu::LossArgs a = loss_args(po, fn);
    const Arg dloss = array_arg(dlo, DType::float32, fn, "dloss", false);
    const Arg dx = array_arg(dxo, DType::float32, fn, "dlogp", true);
    check_rows(dx, fn, "dlogp");
    const Targets t = targets(to, dx, false, fn);
    const Arg w = optional_array_arg(wo, DType::float32, fn, "weight", false);
    const int64_t M = dx.dim(0), C = dx.dim(1);
    if (w.data != nullptr) check_shape(w, {C}, fn, "weight");
    check_loss_shape(dloss, M, a.reduction, fn, "dloss");
    for (const Arg* in : {&dloss, &t.index, &w}) check_no_overlap(dx, *in, fn, "dlogp", "an input");
    py::gil_scoped_release nogil;
    gpu::nll_loss_backward(dx.f32(), dloss.f32(), t.index.i64(), w.f32(), M, C, a,
                           stream_arg(stream));
  }, py::arg("dloss"), py::arg("target"), py::arg("weight"), py::arg("dlogp"), py::arg("p"),
  py::arg("stream") = 0, "dlogp (M,C) of nll_loss_forward.");

  bind_pointwise(m, "mse_loss_forward", "mse_loss_backward", 0);
  bind_pointwise(m, "smooth_l1_loss_forward", "smooth_l1_loss_backward", 1);
}

}  // namespace pyengine::bindings
