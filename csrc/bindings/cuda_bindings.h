// The binding functions of the CUDA modules (pyengine._cuda and pyengine._cuda_emu), one per op
// family, each in its own file (csrc/bindings/cuda_<family>.cpp); cuda_module.cpp calls them all.
//
// Conventions of every bound kernel: Python allocates the outputs (pyengine.backends.new_output,
// so PYENGINE_POISON applies) and passes them in; the function checks every argument
// (cuda_checks.h), launches the kernels on `stream` (an integer cudaStream_t, 0: the default
// stream; ignored by the emulator) and returns None without waiting for the GPU.
//
// Shape letters: none (each family's file states its own).
#pragma once

#include <pybind11/pybind11.h>

namespace pyengine::bindings {

void bind_cuda_conv2d(pybind11::module_& m);
void bind_cuda_pool2d(pybind11::module_& m);
void bind_cuda_softmax(pybind11::module_& m);
void bind_cuda_loss(pybind11::module_& m);
void bind_cuda_batch_norm(pybind11::module_& m);
void bind_cuda_activation(pybind11::module_& m);
void bind_cuda_linear(pybind11::module_& m);
void bind_cuda_optim(pybind11::module_& m);

}  // namespace pyengine::bindings
