"""Batch normalisation kernels of the CUDA modules (csrc/cuda/batch_norm.cu): training forward
(batch statistics summed in double, a channel per block), evaluation forward, backward.
"""
from __future__ import annotations

from ._glue import CudaGlue


class BatchNormKernels(CudaGlue):
    """batch_norm forward (train, eval) and backward on (N, C, L) arrays (float32)."""

    def batch_norm_forward_train(self, x, weight, bias, eps):
        """(y, mean (C,), invstd (C,)) with the batch statistics of x (N,C,L)."""
        c = x.shape[1]
        y = self._out(x.shape, x.dtype, x)
        mean = self._out((c,), x.dtype, x)
        invstd = self._out((c,), x.dtype, x)
        self._native.batch_norm_forward_train(x, weight, bias, y, mean, invstd, float(eps),
                                              self._stream())
        return y, mean, invstd

    def batch_norm_forward_eval(self, x, running_mean, running_var, weight, bias, eps):
        """x (N,C,L) normalised with the running statistics."""
        y = self._out(x.shape, x.dtype, x)
        self._native.batch_norm_forward_eval(x, running_mean, running_var, weight, bias, y,
                                             float(eps), self._stream())
        return y

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        """(dx, dweight, dbias)."""
        c = x.shape[1]
        dx = self._out(x.shape, x.dtype, x)
        dw = self._out((c,), x.dtype, x)
        db = self._out((c,), x.dtype, x)
        self._native.batch_norm_backward(dy, x, weight, mean, invstd, dx, dw, db, bool(training),
                                         self._stream())
        return dx, dw, db
