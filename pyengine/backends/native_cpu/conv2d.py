"""conv2d kernels of ``pyengine._cpu`` (csrc/cpu/conv2d*.cpp): forward, backward-data,
backward-weight, bias gradient.

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class Conv2dKernels:
    """conv2d forward, backward-data, backward-weight, bias gradient (float32)."""
