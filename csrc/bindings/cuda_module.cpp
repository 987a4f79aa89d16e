// The CUDA modules: pyengine._cuda (kernels built by nvcc, device arrays) and
// pyengine._cuda_emu (the same kernel sources built by the host compiler against csrc/emu, numpy
// arrays). This file is compiled into both; PYENGINE_CUDA_EMU says which.
//
// Importing either module makes no CUDA call: a machine without a GPU or driver imports
// pyengine._cuda cleanly, and probe() says what is missing when asked.
//
// Shape letters: n elements (self-test functions of the emulator).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "bindings/cuda_bindings.h"
#include "bindings/cuda_checks.h"
#include "cuda/device.h"

#if defined(PYENGINE_CUDA_EMU)
#include "emu/cuda_emu.h"
#include "emu/tests/emu_test_kernels.h"
#endif

#if !defined(PYENGINE_CUDA_ARCHS_STR)
#define PYENGINE_CUDA_ARCHS_STR ""
#endif
#if !defined(PYENGINE_CUDA_COMPILER_STR)
#define PYENGINE_CUDA_COMPILER_STR ""
#endif

namespace py = pybind11;
using namespace pyengine::bindings;

namespace {

py::dict build_info() {
  py::dict d;
#if defined(PYENGINE_CUDA_EMU)
  d["emulated"] = true;
  d["archs"] = "";
#else
  d["emulated"] = false;
  d["archs"] = PYENGINE_CUDA_ARCHS_STR;  // CMake's CUDA_ARCHITECTURES, e.g. "90" or "75-real;90"
#endif
  d["cuda_compiler"] = PYENGINE_CUDA_COMPILER_STR;
  d["host_compiler"] = __VERSION__;
  return d;
}

py::dict probe() {
  const pyengine::gpu::DeviceReport r = pyengine::gpu::probe_device();
  py::dict d;
  d["runtime_version"] = r.runtime_version;
  d["driver_version"] = r.driver_version;
  d["device_count"] = r.device_count;
  d["device"] = r.device;
  d["capability"] = py::make_tuple(r.major, r.minor);
  d["multiprocessors"] = r.multiprocessors;
  d["error_name"] = r.error_name;
  d["error_string"] = r.error_string;
  return d;
}

#if defined(PYENGINE_CUDA_EMU)
void bind_emulator(py::module_& m) {
  m.def("set_seed", &pyengine::emu::set_seed, py::arg("seed"),
        "Seed of the shuffled thread order (default: PYENGINE_EMU_SEED, else 0).");
  m.def("get_seed", &pyengine::emu::get_seed, "Seed of the shuffled thread order.");

  namespace t = pyengine::emu_tests;
  py::module_ s = m.def_submodule("testing", "Self-test kernels of the CUDA emulator.");
  s.def("block_reduce", [](const py::object& xo, const py::object& outo, bool barriers) {
    const Arg x = array_arg(xo, DType::float32, "block_reduce", "x", false);
    const Arg out = array_arg(outo, DType::float32, "block_reduce", "out", true);
    check_shape(out, {(x.size + 255) / 256}, "block_reduce", "out");
    py::gil_scoped_release nogil;
    t::block_reduce(out.f32(), x.f32(), x.size, barriers);
  }, py::arg("x"), py::arg("out"), py::arg("barriers"),
  "out[b] = sum of x[256b : 256b+256] by a shared-memory tree; barriers=False plants the bug "
  "of a missing __syncthreads between its levels.");
  s.def("warp_reduce", [](const py::object& xo, const py::object& outo, int warps) {
    const Arg x = array_arg(xo, DType::float32, "warp_reduce", "x", false);
    const Arg out = array_arg(outo, DType::float32, "warp_reduce", "out", true);
    if (warps < 1 || warps > 32) throw py::value_error("warp_reduce: warps must be in [1, 32]");
    check_shape(out, {(x.size + 32 * warps - 1) / (32 * warps)}, "warp_reduce", "out");
    py::gil_scoped_release nogil;
    t::warp_reduce(out.f32(), x.f32(), x.size, warps);
  }, py::arg("x"), py::arg("out"), py::arg("warps"));
  s.def("votes", []() {
    py::array_t<uint32_t> out(8);
    t::votes(out.mutable_data());
    return out;
  });
  s.def("read_uninitialised_shared", [](int words) {
    if (words < 1 || words > 1024) throw py::value_error("words must be in [1, 1024]");
    py::array_t<uint32_t> out(words);
    t::read_uninitialised_shared(out.mutable_data(), words);
    return out;
  }, py::arg("words"));
  s.def("atomic_count", [](int blocks) {
    if (blocks < 1) throw py::value_error("blocks must be >= 1");
    unsigned long long count = 0;
    {
      py::gil_scoped_release nogil;
      t::atomic_count(&count, blocks);
    }
    return count;
  }, py::arg("blocks"));
  s.def("misuse", [](int kind) {
    py::gil_scoped_release nogil;
    t::misuse(kind);
  }, py::arg("kind"),
  "Run a kernel with a planted barrier misuse (0: divergent __syncthreads, 1: shuffle outside "
  "its mask, 2: mask naming an exited lane); raises RuntimeError.");
}
#endif

void bind_common(py::module_& m) {
  m.def("build_info", &build_info, "How this module was built (emulated or not, CUDA archs).");
  m.def("probe", &probe,
        "Runtime and driver versions, device count, current device and its compute capability; "
        "error_name/error_string of the first failing call (e.g. cudaErrorNoDevice).");
  m.def("synchronize", [](uintptr_t stream) {
    py::gil_scoped_release nogil;
    pyengine::gpu::synchronize(stream_arg(stream));
  }, py::arg("stream") = 0, "Wait for every kernel launched on `stream`.");
  bind_cuda_conv2d(m);
  bind_cuda_pool2d(m);
  bind_cuda_softmax(m);
  bind_cuda_loss(m);
  bind_cuda_batch_norm(m);
  bind_cuda_activation(m);
  bind_cuda_linear(m);
  bind_cuda_optim(m);
}

}  // namespace

#if defined(PYENGINE_CUDA_EMU)
PYBIND11_MODULE(_cuda_emu, m) {
  m.doc() = "pyengine's CUDA kernels compiled for the host against the CUDA emulator "
            "(csrc/emu): numpy arrays in, kernels run on CPU threads with a shuffled thread "
            "order. Use through pyengine.backends ('cuda_emu').";
  bind_common(m);
  bind_emulator(m);
}
#else
PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyengine's CUDA kernels (nvcc): device arrays (__cuda_array_interface__) in. Use "
            "through pyengine.backends ('cuda').";
  bind_common(m);
}
#endif
