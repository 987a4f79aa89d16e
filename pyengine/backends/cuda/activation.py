"""Pointwise activation kernels of the CUDA modules (csrc/cuda/activation.cu): relu,
leaky_relu, sigmoid, tanh, forward and backward. The modules also hold
``bias_activation_forward`` (act(x + bias[c]) in one pass), for layers that fuse their bias.
"""
from __future__ import annotations

from ._glue import CudaGlue


class ActivationKernels(CudaGlue):
    """activation forward and backward (float32)."""

    def activation_forward(self, x, p):
        """y = act(x) for p.kind in relu, leaky_relu, sigmoid, tanh."""
        y = self._out(x.shape, x.dtype, x)
        self._native.activation_forward(x, y, p.kind, float(p.negative_slope), self._stream())
        return y

    def activation_backward(self, dy, x, y, p):
        """dx from dy and the forward's x and y."""
        dx = self._out(dy.shape, dy.dtype, dy)
        self._native.activation_backward(dy, x, y, dx, p.kind, float(p.negative_slope),
                                         self._stream())
        return dx
