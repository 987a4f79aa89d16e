"""The linear layer's GEMMs in the CUDA modules (csrc/cuda/linear.cu), on the tiled GEMM core
shared with the convolutions.
"""
from __future__ import annotations

from ._glue import CudaGlue


class LinearKernels(CudaGlue):
    """linear forward, backward-data, backward-weight, bias gradient (float32)."""

    def linear_forward(self, x, w, b):
        """y (M,N) = x (M,K) @ w (N,K)^T + b."""
        y = self._out((x.shape[0], w.shape[0]), x.dtype, x)
        self._native.linear_forward(x, w, b, y, self._stream())
        return y

    def linear_backward_data(self, dy, w):
        """dx (M,K) = dy @ w."""
        dx = self._out((dy.shape[0], w.shape[1]), dy.dtype, dy)
        self._native.linear_backward_data(dy, w, dx, self._stream())
        return dx

    def linear_backward_weight(self, dy, x):
        """dw (N,K) = dy^T @ x."""
        dw = self._out((dy.shape[1], x.shape[1]), dy.dtype, dy)
        self._native.linear_backward_weight(dy, x, dw, self._stream())
        return dw

    def linear_backward_bias(self, dy):
        """db (N,) = dy summed over rows."""
        db = self._out((dy.shape[1],), dy.dtype, dy)
        self._native.linear_backward_bias(dy, db, self._stream())
        return db
