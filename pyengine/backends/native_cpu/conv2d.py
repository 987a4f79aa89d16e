"""conv2d kernels of ``pyengine._cpu`` (csrc/cpu/conv2d*.cpp): forward, backward-data,
backward-weight, bias gradient.

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them (the binding checks every shape and releases the GIL).

Shape letters: N batch, C input channels, K output channels, G groups, H W input plane,
R S kernel, P Q output plane.

Algorithms (``algo=``; ``auto`` chooses by shape, csrc/cpu/conv2d.cpp ``conv2d_choose_*``):

- ``im2col_gemm``: implicit GEMM on our packed micro-kernels; every stride, padding, dilation
  and group count.
- ``implicit_gemm``: the same GEMMs reading B in place from zero-padded, stride-phase-split
  copies of the input (or of dy for the data gradient): no im2col at all, at the price of
  computing and dropping the padding columns of the planes.
- ``direct_1x1``: 1x1 kernels with stride 1 and no padding as plain GEMMs on the NCHW planes;
  for any other shape it runs ``im2col_gemm``, so every listed algorithm is valid for every
  shape (tests and benchmarks run each one on every case).
- ``winograd_2x2_3x3``, ``winograd_4x4_3x3``: Winograd F(2x2,3x3) / F(4x4,3x3) for 3x3 kernels
  at stride 1, any padding, dilation (as interleaved undilated sub-planes) and groups: forward,
  backward-data and backward-weight (csrc/cpu/winograd.h); other shapes run ``im2col_gemm``.
- ``direct_depthwise``: groups == C with K a multiple of C, all three directions, vectorised
  along the output row (csrc/cpu/depthwise.h); other shapes run ``im2col_gemm``.
- ``direct_small_c``: first layers (groups 1, C <= 4): direct forward and backward-weight
  (csrc/cpu/conv_small_c.h); backward-data, and other shapes, run the general algorithm.

A new algorithm: add its name here and to the C++ dispatch (csrc/cpu/conv2d.h says where).
"""
from __future__ import annotations

from ..base import new_output
from ._module import _cpu, to_native

# The algorithms this backend lists for conv2d, in the order of the C++ enum (csrc/cpu/conv2d.h);
# tests/test_native_gemm.py checks that both lists agree.
CONV2D_ALGORITHMS: tuple[str, ...] = ("im2col_gemm", "implicit_gemm", "direct_1x1",
                                      "winograd_2x2_3x3", "winograd_4x4_3x3", "direct_depthwise",
                                      "direct_small_c")


class Conv2dKernels:
    """conv2d forward, backward-data, backward-weight, bias gradient (float32)."""

    def algorithms(self, op):
        """The conv2d algorithms (without 'auto'); other ops: as the next class says."""
        if op == "conv2d" or op.startswith("conv2d_"):
            return CONV2D_ALGORITHMS
        return super().algorithms(op)

    def conv2d_forward(self, x, w, b, p, algo="auto"):
        """y (N,K,P,Q) = conv2d(x (N,C,H,W), w (K,C/G,R,S)) + b (K,) (b may be None)."""
        N, _, H, W = x.shape
        K, _, R, S = w.shape
        P, Q = p.output_hw(H, W, R, S)
        y = new_output((N, K, P, Q), x.dtype)
        _cpu.conv2d_forward(x, w, b, y, to_native(p), algo)
        return y

    def conv2d_backward_data(self, dy, w, x_shape, p, algo="auto"):
        """dx (x_shape) given dy (N,K,P,Q) and w; padding gets no gradient."""
        dx = new_output(tuple(x_shape), dy.dtype)
        _cpu.conv2d_backward_data(dy, w, dx, to_native(p), algo)
        return dx

    def conv2d_backward_weight(self, dy, x, w_shape, p, algo="auto"):
        """dw (w_shape) given dy (N,K,P,Q) and x (N,C,H,W)."""
        dw = new_output(tuple(w_shape), dy.dtype)
        _cpu.conv2d_backward_weight(dy, x, dw, to_native(p), algo)
        return dw

    def conv2d_backward_bias(self, dy):
        """db (K,) = dy summed over N, P and Q."""
        db = new_output((dy.shape[1],), dy.dtype)
        _cpu.conv2d_backward_bias(dy, db)
        return db
