"""Pooling kernels of the CUDA modules (csrc/cuda/pool2d.cu): max (with indices), average,
max-unpool and adaptive average, forward and backward. Every backward gathers per input
element (no atomics), so results are deterministic.
"""
from __future__ import annotations

import numpy as np

from ._glue import CudaGlue


class Pool2dKernels(CudaGlue):
    """max/avg/unpool/adaptive pooling and their backwards (float32)."""

    def max_pool2d_forward(self, x, p):
        """(y, int64 indices) of max pooling x (N,C,H,W)."""
        n, c, h, w = x.shape
        shape = (n, c) + p.output_hw(h, w)
        y = self._out(shape, x.dtype, x)
        idx = self._out(shape, np.int64, x)
        self._native.max_pool2d_forward(x, y, idx, p, self._stream())
        return y, idx

    def max_pool2d_backward(self, dy, indices, x_shape, p):
        """dx (x_shape): each element gathers dy of the windows whose index points at it."""
        dx = self._out(x_shape, dy.dtype, dy)
        self._native.max_pool2d_backward(dy, self._int64(indices), dx, p, self._stream())
        return dx

    def avg_pool2d_forward(self, x, p):
        """Average pooling of x (N,C,H,W)."""
        n, c, h, w = x.shape
        y = self._out((n, c) + p.output_hw(h, w), x.dtype, x)
        self._native.avg_pool2d_forward(x, y, p, self._stream())
        return y

    def avg_pool2d_backward(self, dy, x_shape, p):
        """dx (x_shape) of avg_pool2d_forward."""
        dx = self._out(x_shape, dy.dtype, dy)
        self._native.avg_pool2d_backward(dy, dx, p, self._stream())
        return dx

    def max_unpool2d_forward(self, x, indices, out_hw):
        """y (N,C,*out_hw) zero except y.plane[indices] = x."""
        y = self._out(tuple(x.shape[:2]) + tuple(out_hw), x.dtype, x)
        self._native.max_unpool2d_forward(x, self._int64(indices), y, self._stream())
        return y

    def max_unpool2d_backward(self, dy, indices):
        """dx (indices' shape) = dy gathered at indices."""
        dx = self._out(indices.shape, dy.dtype, dy)
        self._native.max_unpool2d_backward(dy, self._int64(indices), dx, self._stream())
        return dx

    def adaptive_avg_pool2d_forward(self, x, out_hw):
        """y (N,C,*out_hw): the mean of each adaptive window."""
        y = self._out(tuple(x.shape[:2]) + tuple(out_hw), x.dtype, x)
        self._native.adaptive_avg_pool2d_forward(x, y, self._stream())
        return y

    def adaptive_avg_pool2d_backward(self, dy, x_shape):
        """dx (x_shape) of adaptive_avg_pool2d_forward."""
        dx = self._out(x_shape, dy.dtype, dy)
        self._native.adaptive_avg_pool2d_backward(dy, dx, self._stream())
        return dx
