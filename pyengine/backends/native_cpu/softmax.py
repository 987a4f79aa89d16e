"""softmax and log_softmax kernels of ``pyengine._cpu`` (csrc/cpu/softmax.cpp)."""
from __future__ import annotations

from ..base import new_output
from ._module import _cpu


class SoftmaxKernels:
    """softmax / log_softmax forward and backward, float32, any dim."""

    def softmax_forward(self, x, dim):
        """exp(x - max) / sum(exp(x - max)) along ``dim``."""
        y = new_output(x.shape, x.dtype)
        _cpu.softmax_forward(x, y, dim)
        return y

    def softmax_backward(self, y, dy, dim):
        """dx = y * (dy - sum(dy * y, dim))."""
        dx = new_output(y.shape, y.dtype)
        _cpu.softmax_backward(y, dy, dx, dim)
        return dx

    def log_softmax_forward(self, x, dim):
        """x - max - log(sum(exp(x - max))) along ``dim``."""
        y = new_output(x.shape, x.dtype)
        _cpu.log_softmax_forward(x, y, dim)
        return y

    def log_softmax_backward(self, y, dy, dim):
        """dx = dy - exp(y) * sum(dy, dim)."""
        dx = new_output(y.shape, y.dtype)
        _cpu.log_softmax_backward(y, dy, dx, dim)
        return dx
