// Argument handling shared by the binding files of the CUDA modules (csrc/bindings/cuda_*.cpp),
// which are compiled twice: into pyengine._cuda_emu (PYENGINE_CUDA_EMU defined: arrays are
// numpy arrays in host memory) and into pyengine._cuda (arrays are device arrays, e.g. cupy's,
// read through __cuda_array_interface__). The Python-facing signatures are the same in both;
// only array_arg() differs.
//
// Every array is checked here before a kernel sees it: dtype, C-contiguity, writeable outputs,
// shapes, no overlap between an output and an input. A bad argument raises TypeError or
// ValueError; it never reaches a kernel. Params objects (pyengine.params dataclasses) are read
// field by field into the C++ structs of csrc/common/params.h.
//
// Shape letters: none.
#pragma once

#include <pybind11/pybind11.h>
#if defined(PYENGINE_CUDA_EMU)
#include <pybind11/numpy.h>
#endif

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/params.h"
#include "cuda/api.h"

namespace pyengine::bindings {

namespace py = pybind11;

enum class DType { float32, int64 };

// A checked array argument: its address (device or host) and shape.
struct Arg {
  void* data = nullptr;
  std::vector<int64_t> shape;
  int64_t size = 0;
  int64_t itemsize = 0;

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t dim(int64_t k) const { return shape[static_cast<size_t>(k < 0 ? k + ndim() : k)]; }
  float* f32() const { return static_cast<float*>(data); }
  int64_t* i64() const { return static_cast<int64_t*>(data); }
};

inline const char* dtype_name(DType dt) { return dt == DType::float32 ? "float32" : "int64"; }

inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += ", ";
    s += std::to_string(shape[k]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string where(const char* fn, const char* name) {
  return std::string(fn) + ": " + name;
}

#if defined(PYENGINE_CUDA_EMU)
// A C-contiguous numpy array of dtype `dt` (writeable when `output`).
inline Arg array_arg(const py::handle& obj, DType dt, const char* fn, const char* name,
                     bool output) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(where(fn, name) + " must be a numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const bool ok_dtype = dt == DType::float32 ? a.dtype().is(py::dtype::of<float>())
                                             : a.dtype().is(py::dtype::of<int64_t>());
  if (!ok_dtype)
    throw py::type_error(where(fn, name) + " must be a " + dtype_name(dt) + " array, got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(where(fn, name) + " must be C-contiguous");
  if (output && !a.writeable()) throw py::value_error(where(fn, name) + " must be writeable");
  Arg r;
  r.data = const_cast<void*>(a.data());
  r.itemsize = static_cast<int64_t>(a.itemsize());
  r.size = static_cast<int64_t>(a.size());
  for (py::ssize_t k = 0; k < a.ndim(); ++k) r.shape.push_back(static_cast<int64_t>(a.shape(k)));
  return r;
}
#else
// A C-contiguous device array of dtype `dt` described by __cuda_array_interface__ (cupy,
// numba, torch...). The pointer must be on the current device; the caller's stream orders it.
inline Arg array_arg(const py::handle& obj, DType dt, const char* fn, const char* name,
                     bool output) {
  if (!py::hasattr(obj, "__cuda_array_interface__"))
    throw py::type_error(where(fn, name) + " must be a device array (e.g. cupy) with "
                         "__cuda_array_interface__, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const py::dict cai = obj.attr("__cuda_array_interface__");
  const std::string typestr = py::str(cai["typestr"]);
  const std::string want = dt == DType::float32 ? "<f4" : "<i8";
  if (typestr != want)
    throw py::type_error(where(fn, name) + " must be a " + dtype_name(dt) +
                         " array, got typestr " + typestr);
  Arg r;
  r.itemsize = dt == DType::float32 ? 4 : 8;
  r.size = 1;
  for (const py::handle& d : py::tuple(cai["shape"])) {
    r.shape.push_back(d.cast<int64_t>());
    r.size *= r.shape.back();
  }
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    const py::tuple strides(cai["strides"]);
    int64_t expect = r.itemsize;
    for (int64_t k = r.ndim() - 1; k >= 0; --k) {
      if (r.shape[k] != 1 && strides[k].cast<int64_t>() != expect)
        throw py::value_error(where(fn, name) + " must be C-contiguous");
      expect *= r.shape[k];
    }
  }
  const py::tuple data(cai["data"]);
  if (output && data[1].cast<bool>()) throw py::value_error(where(fn, name) + " is read-only");
  r.data = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
  return r;
}
#endif

// array_arg, or an empty Arg (data null) for None.
inline Arg optional_array_arg(const py::handle& obj, DType dt, const char* fn, const char* name,
                              bool output) {
  if (obj.is_none()) return Arg{};
  return array_arg(obj, dt, fn, name, output);
}

inline void check_shape(const Arg& a, const std::vector<int64_t>& expected, const char* fn,
                        const char* name) {
  if (a.shape != expected)
    throw py::value_error(where(fn, name) + " has shape " + shape_str(a.shape) + ", expected " +
                          shape_str(expected));
}

inline void check_ndim(const Arg& a, int64_t ndim, const char* fn, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(where(fn, name) + " must have " + std::to_string(ndim) +
                          " dimensions, got shape " + shape_str(a.shape));
}

inline void check_no_overlap(const Arg& out, const Arg& in, const char* fn, const char* nout,
                             const char* nin) {
  if (out.data == nullptr || in.data == nullptr) return;
  const auto* o = static_cast<const char*>(out.data);
  const auto* i = static_cast<const char*>(in.data);
  const int64_t ob = out.size * out.itemsize, ib = in.size * in.itemsize;
  if (ob > 0 && ib > 0 && o < i + ib && i < o + ob)
    throw py::value_error(std::string(fn) + ": " + nout + " must not overlap " + nin);
}

inline gpu::StreamHandle stream_arg(uintptr_t stream) {
  return reinterpret_cast<gpu::StreamHandle>(stream);
}

inline Conv2dParams conv_params(const py::handle& p) {
  Conv2dParams c;
  c.stride_h = p.attr("stride_h").cast<int64_t>();
  c.stride_w = p.attr("stride_w").cast<int64_t>();
  c.pad_top = p.attr("pad_top").cast<int64_t>();
  c.pad_bottom = p.attr("pad_bottom").cast<int64_t>();
  c.pad_left = p.attr("pad_left").cast<int64_t>();
  c.pad_right = p.attr("pad_right").cast<int64_t>();
  c.dilation_h = p.attr("dilation_h").cast<int64_t>();
  c.dilation_w = p.attr("dilation_w").cast<int64_t>();
  c.groups = p.attr("groups").cast<int64_t>();
  if (c.stride_h < 1 || c.stride_w < 1 || c.dilation_h < 1 || c.dilation_w < 1 || c.groups < 1)
    throw py::value_error("Conv2dParams: strides, dilations and groups must be >= 1");
  return c;
}

inline Pool2dParams pool_params(const py::handle& p) {
  Pool2dParams c;
  c.kernel_h = p.attr("kernel_h").cast<int64_t>();
  c.kernel_w = p.attr("kernel_w").cast<int64_t>();
  c.stride_h = p.attr("stride_h").cast<int64_t>();
  c.stride_w = p.attr("stride_w").cast<int64_t>();
  c.pad_h = p.attr("pad_h").cast<int64_t>();
  c.pad_w = p.attr("pad_w").cast<int64_t>();
  c.dilation_h = p.attr("dilation_h").cast<int64_t>();
  c.dilation_w = p.attr("dilation_w").cast<int64_t>();
  c.ceil_mode = p.attr("ceil_mode").cast<bool>();
  c.count_include_pad = p.attr("count_include_pad").cast<bool>();
  c.divisor_override = p.attr("divisor_override").cast<int64_t>();
  if (c.kernel_h < 1 || c.kernel_w < 1 || c.stride_h < 1 || c.stride_w < 1 ||
      c.dilation_h < 1 || c.dilation_w < 1)
    throw py::value_error("Pool2dParams: kernel, stride and dilation must be >= 1");
  return c;
}

// The index of `name` in `names` (algorithm names; "auto" is 0), or ValueError.
inline int choice(const std::string& name, std::initializer_list<const char*> names,
                  const char* fn, const char* what) {
  int k = 0;
  std::string known;
  for (const char* n : names) {
    if (name == n) return k;
    known += std::string(k ? ", " : "") + "'" + n + "'";
    ++k;
  }
  throw py::value_error(std::string(fn) + ": unknown " + what + " '" + name + "'; expected " +
                        known);
}

}  // namespace pyengine::bindings
