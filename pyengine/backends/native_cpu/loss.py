"""The fused cross-entropy of ``pyengine._cpu`` (csrc/cpu/loss*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class LossKernels:
    """the fused cross-entropy (float32)."""
