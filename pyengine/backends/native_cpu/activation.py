"""Pointwise activations of ``pyengine._cpu`` (csrc/cpu/activation*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class ActivationKernels:
    """pointwise activations (float32)."""
