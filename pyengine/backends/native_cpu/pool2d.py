"""Max/avg/unpool/adaptive pooling and their backwards of ``pyengine._cpu`` (csrc/cpu/pool2d*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class Pool2dKernels:
    """max/avg/unpool/adaptive pooling and their backwards (float32)."""
