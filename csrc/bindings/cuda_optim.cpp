// Bindings of the optimizer update kernels (csrc/cuda/optim.cu) for both CUDA modules. They
// update their arrays in place (param and state), unlike the op kernels.
//
// Shape letters: n elements.
#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/optim.h"

namespace pyengine::bindings {

namespace {

// `a` has p's shape and does not overlap it (state arrays are updated in place beside p).
void check_state(const Arg& a, const Arg& p, const char* fn, const char* name) {
  if (a.data == nullptr) return;
  check_shape(a, p.shape, fn, name);
  check_no_overlap(a, p, fn, name, "param");
}

}  // namespace

void bind_cuda_optim(py::module_& m) {
  m.def("sgd_update", [](const py::object& po, const py::object& go, const py::object& bo,
                         float lr, float momentum, float dampening, float weight_decay,
                         bool nesterov, bool maximize, bool first_step, uintptr_t stream) {
    const char* fn = "sgd_update";
    const Arg p = array_arg(po, DType::float32, fn, "param", true);
    const Arg g = array_arg(go, DType::float32, fn, "grad", false);
    const Arg b = optional_array_arg(bo, DType::float32, fn, "momentum_buffer", true);
    if (momentum != 0.0f && b.data == nullptr)
      throw py::value_error(std::string(fn) + ": momentum != 0 needs a momentum_buffer");
    check_state(g, p, fn, "grad");
    check_state(b, p, fn, "momentum_buffer");
    check_no_overlap(b, g, fn, "momentum_buffer", "grad");
    const gpu::SgdArgs a{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
    py::gil_scoped_release nogil;
    gpu::sgd_update(p.f32(), g.f32(), b.f32(), p.size, a, stream_arg(stream));
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
  py::arg("momentum") = 0.0f, py::arg("dampening") = 0.0f, py::arg("weight_decay") = 0.0f,
  py::arg("nesterov") = false, py::arg("maximize") = false, py::arg("first_step") = true,
  py::arg("stream") = 0,
  "One SGD step in place (torch.optim.SGD's formula); first_step: the buffer starts as g.");

  m.def("adam_update", [](const py::object& po, const py::object& go, const py::object& mo,
                          const py::object& vo, const py::object& vmo, int64_t step, float lr,
                          float beta1, float beta2, float eps, float weight_decay, bool amsgrad,
                          bool maximize, bool decoupled_weight_decay, uintptr_t stream) {
    const char* fn = "adam_update";
    const Arg p = array_arg(po, DType::float32, fn, "param", true);
    const Arg g = array_arg(go, DType::float32, fn, "grad", false);
    const Arg mm = array_arg(mo, DType::float32, fn, "exp_avg", true);
    const Arg v = array_arg(vo, DType::float32, fn, "exp_avg_sq", true);
    const Arg vmax = optional_array_arg(vmo, DType::float32, fn, "max_exp_avg_sq", true);
    if (amsgrad && vmax.data == nullptr)
      throw py::value_error(std::string(fn) + ": amsgrad needs max_exp_avg_sq");
    if (step < 1) throw py::value_error(std::string(fn) + ": step must be >= 1");
    for (const auto& [a, name] : {std::pair<const Arg*, const char*>{&g, "grad"},
                                  {&mm, "exp_avg"}, {&v, "exp_avg_sq"},
                                  {&vmax, "max_exp_avg_sq"}})
      check_state(*a, p, fn, name);
    check_no_overlap(mm, v, fn, "exp_avg", "exp_avg_sq");
    gpu::AdamArgs a;
    a.lr = lr;
    a.beta1 = beta1;
    a.beta2 = beta2;
    a.eps = eps;
    a.weight_decay = weight_decay;
    a.step = step;
    a.amsgrad = amsgrad;
    a.maximize = maximize;
    a.decoupled_weight_decay = decoupled_weight_decay;
    py::gil_scoped_release nogil;
    gpu::adam_update(p.f32(), g.f32(), mm.f32(), v.f32(), vmax.f32(), p.size, a,
                     stream_arg(stream));
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
  py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr") = 1e-3f, py::arg("beta1") = 0.9f,
  py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("weight_decay") = 0.0f,
  py::arg("amsgrad") = false, py::arg("maximize") = false,
  py::arg("decoupled_weight_decay") = false, py::arg("stream") = 0,
  "One Adam (AdamW with decoupled_weight_decay) step in place; step counts from 1.");
}

}  // namespace pyengine::bindings
