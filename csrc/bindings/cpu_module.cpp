// pyengine._cpu: the Python bindings of the CPU kernels (csrc/cpu) and of the params helpers
// (csrc/common/params.h). The only C++ of the CPU module that includes pybind11.
//
// Kernels fill outputs that Python allocated (pyengine/backends/native_cpu.py allocates them
// with base.new_output, so PYENGINE_POISON applies) and return None. Every array is checked
// here before the GIL is released: float32, C-contiguous, writeable outputs, matching shapes,
// no overlap between an output and an input. A bad argument raises TypeError or ValueError; it
// must never reach a kernel. Arrays are taken with noconvert, so pybind11 never slips in a
// converted copy (an output written into a copy would be lost).
//
// Shape letters: B D I, the (before, softmax dim, after) view of softmax.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/params.h"
#include "cpu/build_info.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
#include "cpu/softmax.h"
#include "bindings/checks.h"
#include "bindings/cpu_bindings.h"

namespace py = pybind11;
using pyengine::Conv2dParams;
using pyengine::Pool2dParams;

namespace {

using namespace pyengine::bindings;

struct SoftmaxView {
  int64_t B = 1, D = 1, I = 1;
};

// The (B, D, I) view of `a` around `dim` (negative dims count from the end).
SoftmaxView softmax_view(const py::array& a, int64_t dim, const char* fn) {
  const int64_t nd = a.ndim();
  if (nd < 1)
    throw py::value_error(std::string(fn) + ": needs an array of at least 1 dimension "
                          "(reshape a 0-d array to (1,))");
  if (dim < -nd || dim >= nd)
    throw py::value_error(std::string(fn) + ": dim=" + std::to_string(dim) +
                          " out of range for an array of " + std::to_string(nd) +
                          " dimensions");
  if (dim < 0) dim += nd;
  SoftmaxView v;
  for (int64_t k = 0; k < nd; ++k) {
    const int64_t n = static_cast<int64_t>(a.shape(k));
    if (k < dim) v.B *= n;
    else if (k == dim) v.D = n;
    else v.I *= n;
  }
  return v;
}

using ForwardKernel = void (*)(float*, const float*, int64_t, int64_t, int64_t);
using BackwardKernel = void (*)(float*, const float*, const float*, int64_t, int64_t, int64_t);

void run_forward(ForwardKernel kernel, const char* fn, const py::array& x_in,
                 const py::array& out_in, int64_t dim) {
  FloatArray x = float32_array(x_in, fn, "x", false);
  FloatArray out = float32_array(out_in, fn, "out", true);
  check_same_shape(out, x, fn, "out", "x");
  check_no_overlap(out, x, fn, "out", "x");
  const SoftmaxView v = softmax_view(x, dim, fn);
  if (x.size() == 0) return;
  const float* xp = x.data();
  float* yp = out.mutable_data();
  py::gil_scoped_release nogil;
  kernel(yp, xp, v.B, v.D, v.I);
}

void run_backward(BackwardKernel kernel, const char* fn, const py::array& y_in,
                  const py::array& dy_in, const py::array& dx_in, int64_t dim) {
  FloatArray y = float32_array(y_in, fn, "y", false);
  FloatArray dy = float32_array(dy_in, fn, "dy", false);
  FloatArray dx = float32_array(dx_in, fn, "dx", true);
  check_same_shape(dy, y, fn, "dy", "y");
  check_same_shape(dx, y, fn, "dx", "y");
  check_no_overlap(dx, y, fn, "dx", "y");
  check_no_overlap(dx, dy, fn, "dx", "dy");
  const SoftmaxView v = softmax_view(y, dim, fn);
  if (y.size() == 0) return;
  const float* yp = y.data();
  const float* dyp = dy.data();
  float* dxp = dx.mutable_data();
  py::gil_scoped_release nogil;
  kernel(dxp, yp, dyp, v.B, v.D, v.I);
}

void check_stride(int64_t stride, const char* fn) {
  if (stride < 1)
    throw py::value_error(std::string(fn) + ": stride must be >= 1, got " +
                          std::to_string(stride));
}

// Binds a params struct field by field and records the field names in order, so a test can
// compare them with the Python dataclass, and from_python can copy any object that has them.
template <class S>
class ParamsBinder {
 public:
  ParamsBinder(py::module_& m, const char* name, const char* doc) : cls_(m, name, doc) {
    cls_.def(py::init<>());
  }

  template <class T>
  ParamsBinder& field(const char* name, T S::*member) {
    cls_.def_readwrite(name, member);
    names_.push_back(name);
    return *this;
  }

  py::class_<S>& finish() {
    cls_.attr("fields") = py::tuple(py::cast(names_));
    const std::vector<std::string> names = names_;
    cls_.def_static("from_python", [names](const py::handle& obj) {
      S s;
      py::object native = py::cast(&s, py::return_value_policy::reference);
      for (const std::string& n : names) native.attr(n.c_str()) = obj.attr(n.c_str());
      return s;
    }, py::arg("params"), "Copy of a pyengine.params dataclass (any object with the fields).");
    cls_.def("__repr__", [names](const py::object& self) {
      std::string r = py::str(self.attr("__class__").attr("__name__")).cast<std::string>() + "(";
      for (size_t k = 0; k < names.size(); ++k) {
        if (k) r += ", ";
        r += names[k] + "=" + py::repr(self.attr(names[k].c_str())).cast<std::string>();
      }
      return r + ")";
    });
    return cls_;
  }

 private:
  py::class_<S> cls_;
  std::vector<std::string> names_;
};

py::dict build_info_dict() {
  const pyengine::cpu::BuildInfo info = pyengine::cpu::build_info();
  py::dict d;
  d["compiler"] = info.compiler;
  d["compiler_path"] = info.compiler_path;
  d["cxx_flags"] = info.cxx_flags;
  d["build_type"] = info.build_type;
  d["cmake_version"] = info.cmake_version;
  d["openmp"] = info.openmp;
  d["openmp_version"] = info.openmp_version ? py::object(py::str(
      std::to_string(info.openmp_version) + " (OpenMP " + info.openmp_spec + ")")) : py::none();
  d["pybind11_version"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                          std::to_string(PYBIND11_VERSION_MINOR) + "." +
                          std::to_string(PYBIND11_VERSION_PATCH);
  d["isa_paths"] = info.isa_paths;
  d["isa"] = pyengine::cpu::isa_name(pyengine::cpu::active_isa());  // the path that runs
  py::dict features;
  for (const auto& f : pyengine::cpu::cpu_features()) features[py::str(f.first)] = f.second;
  d["cpu_features"] = features;
  d["sanitize"] = info.sanitize;
  d["cuda"] = info.cuda;
  d["num_threads"] = pyengine::cpu::num_threads();
  return d;
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "pyengine's native CPU kernels (float32). Use through pyengine.backends, whose "
            "'cpu' backend allocates the outputs; these functions fill them.";

  // The ISA path, chosen once (PYENGINE_ISA may force one): a path this CPU or build lacks
  // fails the import with a message naming it, rather than running another path silently.
  try {
    pyengine::cpu::select_isa_from_env();
  } catch (const std::runtime_error& e) {
    throw py::import_error(e.what());
  }
  m.def("isa", [] { return pyengine::cpu::isa_name(pyengine::cpu::active_isa()); },
        "The ISA path the kernels run: 'baseline', 'avx2' or 'avx512' (PYENGINE_ISA forces one).");

  // ---- op families bound in their own files (csrc/bindings/cpu_<family>.cpp) -------------
  bind_conv2d(m);
  bind_linear(m);
  bind_pool2d(m);
  bind_loss(m);
  bind_batch_norm(m);
  bind_activation(m);

  // ---- softmax family ---------------------------------------------------------------------
  m.def("softmax_forward", [](const py::array& x, const py::array& out, int64_t dim) {
    run_forward(pyengine::cpu::softmax_forward, "softmax_forward", x, out, dim);
  }, py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("dim"),
  "out = softmax(x) along dim; x and out C-contiguous float32 of one shape.");
  m.def("log_softmax_forward", [](const py::array& x, const py::array& out, int64_t dim) {
    run_forward(pyengine::cpu::log_softmax_forward, "log_softmax_forward", x, out, dim);
  }, py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("dim"),
  "out = log_softmax(x) along dim; x and out C-contiguous float32 of one shape.");
  m.def("softmax_backward",
        [](const py::array& y, const py::array& dy, const py::array& dx, int64_t dim) {
    run_backward(pyengine::cpu::softmax_backward, "softmax_backward", y, dy, dx, dim);
  }, py::arg("y").noconvert(), py::arg("dy").noconvert(), py::arg("dx").noconvert(),
  py::arg("dim"), "dx = y * (dy - sum(dy * y, dim)); y is the forward's output.");
  m.def("log_softmax_backward",
        [](const py::array& y, const py::array& dy, const py::array& dx, int64_t dim) {
    run_backward(pyengine::cpu::log_softmax_backward, "log_softmax_backward", y, dy, dx, dim);
  }, py::arg("y").noconvert(), py::arg("dy").noconvert(), py::arg("dx").noconvert(),
  py::arg("dim"), "dx = dy - exp(y) * sum(dy, dim); y is the forward's output.");

  // ---- params and output sizes (csrc/common/params.h) -------------------------------------
  m.def("conv_output_size", [](int64_t size, int64_t kernel, int64_t stride, int64_t pad_before,
                               int64_t pad_after, int64_t dilation) {
    check_stride(stride, "conv_output_size");
    return pyengine::conv_output_size(size, kernel, stride, pad_before, pad_after, dilation);
  }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("pad_before"),
  py::arg("pad_after"), py::arg("dilation"), "Same as pyengine.params.conv_output_size.");
  m.def("pool_output_size", [](int64_t size, int64_t kernel, int64_t stride, int64_t pad,
                               int64_t dilation, bool ceil_mode) {
    check_stride(stride, "pool_output_size");
    return pyengine::pool_output_size(size, kernel, stride, pad, dilation, ceil_mode);
  }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("pad"), py::arg("dilation"),
  py::arg("ceil_mode"), "Same as pyengine.params.pool_output_size.");
  m.def("conv_transpose_output_size", [](int64_t size, int64_t kernel, int64_t stride,
                                         int64_t pad, int64_t dilation, int64_t output_padding) {
    return pyengine::conv_transpose_output_size(size, kernel, stride, pad, dilation,
                                                output_padding);
  }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("pad"), py::arg("dilation"),
  py::arg("output_padding"), "Same as pyengine.params.conv_transpose_output_size.");

  ParamsBinder<Conv2dParams>(m, "Conv2dParams", "C++ twin of pyengine.params.Conv2dParams.")
      .field("stride_h", &Conv2dParams::stride_h)
      .field("stride_w", &Conv2dParams::stride_w)
      .field("pad_top", &Conv2dParams::pad_top)
      .field("pad_bottom", &Conv2dParams::pad_bottom)
      .field("pad_left", &Conv2dParams::pad_left)
      .field("pad_right", &Conv2dParams::pad_right)
      .field("dilation_h", &Conv2dParams::dilation_h)
      .field("dilation_w", &Conv2dParams::dilation_w)
      .field("groups", &Conv2dParams::groups)
      .finish()
      .def("output_hw", [](const Conv2dParams& p, int64_t h, int64_t w, int64_t r, int64_t s) {
        check_stride(p.stride_h < p.stride_w ? p.stride_h : p.stride_w, "output_hw");
        return py::make_tuple(p.output_h(h, r), p.output_w(w, s));
      }, py::arg("h"), py::arg("w"), py::arg("r"), py::arg("s"), "(P, Q) for H x W and R x S.");

  ParamsBinder<Pool2dParams>(m, "Pool2dParams", "C++ twin of pyengine.params.Pool2dParams.")
      .field("kernel_h", &Pool2dParams::kernel_h)
      .field("kernel_w", &Pool2dParams::kernel_w)
      .field("stride_h", &Pool2dParams::stride_h)
      .field("stride_w", &Pool2dParams::stride_w)
      .field("pad_h", &Pool2dParams::pad_h)
      .field("pad_w", &Pool2dParams::pad_w)
      .field("dilation_h", &Pool2dParams::dilation_h)
      .field("dilation_w", &Pool2dParams::dilation_w)
      .field("ceil_mode", &Pool2dParams::ceil_mode)
      .field("count_include_pad", &Pool2dParams::count_include_pad)
      .field("divisor_override", &Pool2dParams::divisor_override)
      .finish()
      .def("output_hw", [](const Pool2dParams& p, int64_t h, int64_t w) {
        check_stride(p.stride_h < p.stride_w ? p.stride_h : p.stride_w, "output_hw");
        return py::make_tuple(p.output_h(h), p.output_w(w));
      }, py::arg("h"), py::arg("w"), "(P, Q) for an H x W input.");

  // ---- build and threads --------------------------------------------------------------------
  m.def("build_info", &build_info_dict,
        "How this module was built (compiler, flags, OpenMP, pybind11, ISA paths) and the "
        "CPU features it sees.");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    pyengine::cpu::set_num_threads(n);
  }, py::arg("n"), "Threads the kernels use (OpenMP; without OpenMP it stays 1).");
  m.def("get_num_threads", &pyengine::cpu::num_threads, "Threads the kernels use.");
}
