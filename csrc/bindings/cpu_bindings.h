// The binding functions of pyengine._cpu, one per op family, each in its own file
// (csrc/bindings/cpu_<family>.cpp); cpu_module.cpp calls them all from PYBIND11_MODULE.
#pragma once

#include <pybind11/pybind11.h>

namespace pyengine::bindings {

void bind_conv2d(pybind11::module_& m);  // convolution kernels
void bind_linear(pybind11::module_& m);  // the GEMM
void bind_pool2d(pybind11::module_& m);  // pooling kernels
void bind_loss(pybind11::module_& m);  // loss kernels
void bind_batch_norm(pybind11::module_& m);  // batch normalisation kernels
void bind_activation(pybind11::module_& m);  // pointwise activation kernels

}  // namespace pyengine::bindings
