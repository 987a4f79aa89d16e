"""Batch normalisation of ``pyengine._cpu`` (csrc/cpu/batch_norm*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations


class BatchNormKernels:
    """batch normalisation (float32)."""
