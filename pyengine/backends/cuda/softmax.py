"""softmax / log_softmax kernels of the CUDA modules (csrc/cuda/softmax.cu), along any dim.

Algorithms (``algorithms('softmax')``): ``warp_per_row`` (a warp per row, statistics merged
with shuffles) and ``block_per_row`` (a block per row, merged through shared memory); both make
one online pass for the row's max and sum of exponentials. ``auto`` picks warp_per_row for rows
of at most 1024 elements. The functional ops do not take ``algo=``; tests and benchmarks pin
one by calling the kernel methods with ``algo=``.
"""
from __future__ import annotations

from ._glue import CudaGlue


class SoftmaxKernels(CudaGlue):
    """softmax / log_softmax forward and backward, float32, any dim."""

    def softmax_forward(self, x, dim, algo="auto"):
        """exp(x - max) / sum(exp(x - max)) along ``dim``."""
        y = self._out(x.shape, x.dtype, x)
        self._native.softmax_forward(x, y, dim, algo, self._stream())
        return y

    def softmax_backward(self, y, dy, dim, algo="auto"):
        """dx = y * (dy - sum(dy * y, dim))."""
        dx = self._out(y.shape, y.dtype, y)
        self._native.softmax_backward(y, dy, dx, dim, algo, self._stream())
        return dx

    def log_softmax_forward(self, x, dim, algo="auto"):
        """x - max - log(sum(exp(x - max))) along ``dim``."""
        y = self._out(x.shape, x.dtype, x)
        self._native.log_softmax_forward(x, y, dim, algo, self._stream())
        return y

    def log_softmax_backward(self, y, dy, dim, algo="auto"):
        """dx = dy - exp(y) * sum(dy, dim)."""
        dx = self._out(y.shape, y.dtype, y)
        self._native.log_softmax_backward(y, dy, dx, dim, algo, self._stream())
        return dx
