"""Batch normalisation of ``pyengine._cpu`` (csrc/cpu/batch_norm*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them. Shape letters: N batch, C channels, L positions.
"""
from __future__ import annotations

from ..base import new_output
from ._module import _cpu


class BatchNormKernels:
    """batch normalisation (float32)."""

    def batch_norm_forward_train(self, x, weight, bias, eps):
        """x (N,C,L) -> (y, mean (C,), invstd (C,)) with the batch statistics."""
        c = x.shape[1]
        y = new_output(x.shape, x.dtype)
        mean = new_output((c,), x.dtype)
        invstd = new_output((c,), x.dtype)
        _cpu.batch_norm_forward_train(x, weight, bias, float(eps), y, mean, invstd)
        return y, mean, invstd

    def batch_norm_forward_eval(self, x, running_mean, running_var, weight, bias, eps):
        """x (N,C,L) normalised with the running statistics."""
        y = new_output(x.shape, x.dtype)
        _cpu.batch_norm_forward_eval(x, running_mean, running_var, weight, bias, float(eps), y)
        return y

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        """(dx (N,C,L), dweight (C,), dbias (C,))."""
        c = x.shape[1]
        dx = new_output(x.shape, x.dtype)
        dweight = new_output((c,), x.dtype)
        dbias = new_output((c,), x.dtype)
        _cpu.batch_norm_backward(dy, x, weight, mean, invstd, bool(training), dx, dweight, dbias)
        return dx, dweight, dbias
