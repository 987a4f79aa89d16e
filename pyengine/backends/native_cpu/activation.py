"""Pointwise activations of ``pyengine._cpu`` (csrc/cpu/activation*.cpp): relu, leaky_relu,
sigmoid, tanh.

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them.
"""
from __future__ import annotations

from ..base import new_output
from ._module import _cpu


class ActivationKernels:
    """pointwise activations (float32)."""

    def activation_forward(self, x, p):
        """y = act(x) for p.kind in relu, leaky_relu, sigmoid, tanh."""
        y = new_output(x.shape, x.dtype)
        _cpu.activation_forward(x, y, p.kind, p.negative_slope)
        return y

    def activation_backward(self, dy, x, y, p):
        """dx of activation_forward (relu'(0) = 0)."""
        dx = new_output(dy.shape, dy.dtype)
        _cpu.activation_backward(dy, x, y, dx, p.kind, p.negative_slope)
        return dx
