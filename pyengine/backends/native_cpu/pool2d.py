"""Max/avg/unpool/adaptive pooling and their backwards of ``pyengine._cpu`` (csrc/cpu/pool2d*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them. Shape letters: N C H W input, P Q pooled plane.
"""
from __future__ import annotations

import functools

import numpy as np

from ..base import new_output
from ._module import _cpu, to_native


@functools.lru_cache(maxsize=256)
def _native_params(p):
    """The C++ twin of a (frozen, hashable) Pool2dParams, converted once per distinct value."""
    return to_native(p)


class Pool2dKernels:
    """max/avg/unpool/adaptive pooling and their backwards (float32)."""

    def max_pool2d_forward(self, x, p):
        """(y, indices) (N,C,P,Q) of max pooling x (N,C,H,W)."""
        n, c, h, w = x.shape
        shape = (n, c) + p.output_hw(h, w)
        y = new_output(shape, x.dtype)
        indices = new_output(shape, np.int64)
        _cpu.max_pool2d_forward(x, y, indices, _native_params(p))
        return y, indices

    def max_pool2d_backward(self, dy, indices, x_shape, p):
        """dx (x_shape): each input element gathers dy of the windows whose index points at it."""
        dx = new_output(tuple(x_shape), dy.dtype)
        _cpu.max_pool2d_backward(dy, indices, dx, _native_params(p))
        return dx

    def avg_pool2d_forward(self, x, p):
        """Window averages (N,C,P,Q) of x (N,C,H,W)."""
        n, c, h, w = x.shape
        y = new_output((n, c) + p.output_hw(h, w), x.dtype)
        _cpu.avg_pool2d_forward(x, y, _native_params(p))
        return y

    def avg_pool2d_backward(self, dy, x_shape, p):
        """dx (x_shape) of avg_pool2d_forward."""
        dx = new_output(tuple(x_shape), dy.dtype)
        _cpu.avg_pool2d_backward(dy, dx, _native_params(p))
        return dx

    def max_unpool2d_forward(self, x, indices, out_hw):
        """y (N,C,*out_hw): zero except x placed at its indices."""
        y = new_output(x.shape[:2] + tuple(out_hw), x.dtype)
        _cpu.max_unpool2d_forward(x, indices, y)
        return y

    def max_unpool2d_backward(self, dy, indices):
        """dx (indices' shape) = dy gathered at indices."""
        dx = new_output(indices.shape, dy.dtype)
        _cpu.max_unpool2d_backward(dy, indices, dx)
        return dx

    def adaptive_avg_pool2d_forward(self, x, out_hw):
        """y (N,C,*out_hw): means over windows [floor(i*H/P), ceil((i+1)*H/P))."""
        y = new_output(x.shape[:2] + tuple(out_hw), x.dtype)
        _cpu.adaptive_avg_pool2d_forward(x, y)
        return y

    def adaptive_avg_pool2d_backward(self, dy, x_shape):
        """dx (x_shape) of adaptive_avg_pool2d_forward."""
        dx = new_output(tuple(x_shape), dy.dtype)
        _cpu.adaptive_avg_pool2d_backward(dy, dx)
        return dx
