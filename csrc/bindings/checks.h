// Argument checks shared by the binding files of pyengine._cpu (csrc/bindings/cpu_*.cpp).
//
// Every array a kernel touches is checked here before the GIL is released: dtype, C-contiguity,
// writeable outputs, matching shapes, no overlap between an output and an input. A bad argument
// raises TypeError or ValueError (pybind11 maps py::type_error / py::value_error); it must never
// reach a kernel.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace pyengine::bindings {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style>;

inline std::string describe(const py::array& a) {
  return py::str("{} array of shape {}").format(a.dtype(), a.attr("shape")).cast<std::string>();
}

// `a` as a C-contiguous float32 array, or TypeError (dtype) / ValueError (layout, read-only).
inline FloatArray float32_array(const py::array& a, const char* fn, const char* name, bool output) {
  if (!py::isinstance<py::array_t<float>>(a))
    throw py::type_error(std::string(fn) + ": " + name + " must be a float32 array, got a " +
                         describe(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name +
                          " must be C-contiguous (pass np.ascontiguousarray), got a strided " +
                          describe(a));
  if (output && !a.writeable())
    throw py::value_error(std::string(fn) + ": " + name + " must be writeable");
  return py::reinterpret_borrow<FloatArray>(a);
}

inline void check_same_shape(const py::array& a, const py::array& b, const char* fn, const char* na,
                      const char* nb) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t k = 0; same && k < a.ndim(); ++k) same = a.shape(k) == b.shape(k);
  if (!same)
    throw py::value_error(std::string(fn) + ": " + na + " is a " + describe(a) + " but " + nb +
                          " is a " + describe(b) + "; they must have the same shape");
}

inline void check_no_overlap(const FloatArray& out, const FloatArray& in, const char* fn,
                      const char* nout, const char* nin) {
  const char* o = reinterpret_cast<const char*>(out.data());
  const char* i = reinterpret_cast<const char*>(in.data());
  const py::ssize_t bytes = out.nbytes();
  if (bytes > 0 && in.nbytes() > 0 && o < i + in.nbytes() && i < o + bytes)
    throw py::value_error(std::string(fn) + ": " + nout + " must not overlap " + nin);
}

using Int64Array = py::array_t<int64_t, py::array::c_style>;

// `a` as a C-contiguous int64 array (indices, class targets), or TypeError / ValueError.
inline Int64Array int64_array(const py::array& a, const char* fn, const char* name, bool output) {
  if (!py::isinstance<py::array_t<int64_t>>(a))
    throw py::type_error(std::string(fn) + ": " + name + " must be an int64 array, got a " +
                         describe(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name +
                          " must be C-contiguous (pass np.ascontiguousarray), got a strided " +
                          describe(a));
  if (output && !a.writeable())
    throw py::value_error(std::string(fn) + ": " + name + " must be writeable");
  return py::reinterpret_borrow<Int64Array>(a);
}

// check_no_overlap for arrays of any dtype (an int64 output next to float inputs, ...).
inline void check_disjoint(const py::array& out, const py::array& in, const char* fn,
                           const char* nout, const char* nin) {
  const char* o = static_cast<const char*>(out.data());
  const char* i = static_cast<const char*>(in.data());
  if (out.nbytes() > 0 && in.nbytes() > 0 && o < i + in.nbytes() && i < o + out.nbytes())
    throw py::value_error(std::string(fn) + ": " + nout + " must not overlap " + nin);
}

}  // namespace pyengine::bindings
