"""conv2d kernels of the CUDA modules (csrc/cuda/conv2d.cu): forward, backward-data,
backward-weight and the bias gradient.

Algorithms (``algorithms('conv2d')``, the module's CONV2D_ALGORITHMS): ``implicit_gemm_tiled``
(a shared-memory tiled, register-blocked GEMM whose operands are gathered from the tensors on
the fly; the weight gradient's long reduction is split and summed in a fixed order),
``direct_depthwise`` (groups == C; any other convolution runs the GEMM) and
``implicit_gemm_tf32`` (the same GEMMs on the TF32 tensor cores, sm_80+: operands rounded to
TF32, fp32 accumulation; chosen by name only). ``auto`` picks direct_depthwise for depthwise
convolutions with groups > 1, else implicit_gemm_tiled.
"""
from __future__ import annotations

from ._glue import CudaGlue


class Conv2dKernels(CudaGlue):
    """conv2d forward, backward-data, backward-weight, bias gradient (float32)."""

    def conv2d_forward(self, x, w, b, p, algo="auto"):
        """y (N,K,P,Q) = conv2d(x (N,C,H,W), w (K,C/G,R,S)) + b."""
        n, _, h, wd = x.shape
        k, _, r, s = w.shape
        y = self._out((n, k) + p.output_hw(h, wd, r, s), x.dtype, x)
        self._native.conv2d_forward(x, w, b, y, p, algo, self._stream())
        return y

    def conv2d_backward_data(self, dy, w, x_shape, p, algo="auto"):
        """dx (x_shape) from dy (N,K,P,Q) and w."""
        dx = self._out(x_shape, dy.dtype, dy)
        self._native.conv2d_backward_data(dy, w, dx, p, algo, self._stream())
        return dx

    def conv2d_backward_weight(self, dy, x, w_shape, p, algo="auto"):
        """dw (w_shape) from dy (N,K,P,Q) and x."""
        dw = self._out(w_shape, dy.dtype, dy)
        self._native.conv2d_backward_weight(dy, x, dw, p, algo, self._stream())
        return dw

    def conv2d_backward_bias(self, dy):
        """db (K,) = dy summed over N, P, Q."""
        db = self._out((dy.shape[1],), dy.dtype, dy)
        self._native.conv2d_backward_bias(dy, db, self._stream())
        return db
