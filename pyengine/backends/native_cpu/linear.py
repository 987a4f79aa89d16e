"""The GEMM behind linear of ``pyengine._cpu`` (csrc/cpu/gemm*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class LinearKernels:
    """the GEMM behind linear (float32)."""
