"""The GEMM behind linear of ``pyengine._cpu`` (csrc/cpu/gemm*.cpp).

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them (our SGEMM, bias fused into the forward's store).

Shape letters: M rows, K input features, N output features; x (M,K), w (N,K), b (N,), dy (M,N).
"""
from __future__ import annotations

from ..base import new_output
from ._module import _cpu


class LinearKernels:
    """linear forward and its three gradients on the GEMM (float32)."""

    def linear_forward(self, x, w, b):
        """y (M,N) = x (M,K) @ w (N,K)^T + b (N,) (b may be None)."""
        y = new_output((x.shape[0], w.shape[0]), x.dtype)
        _cpu.linear_forward(x, w, b, y)
        return y

    def linear_backward_data(self, dy, w):
        """dx (M,K) = dy (M,N) @ w (N,K)."""
        dx = new_output((dy.shape[0], w.shape[1]), dy.dtype)
        _cpu.linear_backward_data(dy, w, dx)
        return dx

    def linear_backward_weight(self, dy, x):
        """dw (N,K) = dy (M,N)^T @ x (M,K)."""
        dw = new_output((dy.shape[1], x.shape[1]), dy.dtype)
        _cpu.linear_backward_weight(dy, x, dw)
        return dw

    def linear_backward_bias(self, dy):
        """db (N,) = dy (M,N) summed over the rows."""
        db = new_output((dy.shape[1],), dy.dtype)
        _cpu.linear_backward_bias(dy, db)
        return db
