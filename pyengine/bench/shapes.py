"""The benchmark shape set: every implementation is timed on exactly these shapes.

Conv: (N, C, H, W) -> K with kernel R x S, stride, padding, dilation, groups.
Pooling: (N, C, H, W) with kernel, stride, padding. Softmax family: a shape and a dim.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..params import Conv2dParams, Pool2dParams


@dataclass(frozen=True)
class ConvShape:
    """One convolution of the set."""
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def w_shape(self):
        return (self.k, self.c // self.groups, self.r, self.s)

    def params(self) -> Conv2dParams:
        """The kernel interface's parameters of this convolution (symmetric padding)."""
        return Conv2dParams(self.stride, self.stride, self.pad, self.pad, self.pad, self.pad,
                            self.dilation, self.dilation, self.groups)

    def out_hw(self):
        """(P, Q)."""
        return self.params().output_hw(self.h, self.w, self.r, self.s)

    def flops(self) -> float:
        """Direct-convolution FLOPs of the forward pass (2 per multiply-add)."""
        p, q = self.out_hw()
        return 2.0 * self.n * self.k * p * q * (self.c // self.groups) * self.r * self.s


CONV_SHAPES = [
    ConvShape("mnist_c1", 64, 1, 28, 28, 32, 3, 3, pad=1),
    ConvShape("mnist_c2", 64, 32, 14, 14, 64, 3, 3, pad=1),
    ConvShape("vgg", 4, 64, 112, 112, 128, 3, 3, pad=1),
    ConvShape("res_c2", 8, 64, 56, 56, 64, 3, 3, pad=1),
    ConvShape("res_c4", 8, 256, 14, 14, 256, 3, 3, pad=1),
    ConvShape("res_c5", 8, 512, 7, 7, 512, 3, 3, pad=1),
    ConvShape("stem", 8, 3, 224, 224, 64, 7, 7, stride=2, pad=3),
    ConvShape("pointwise", 8, 256, 56, 56, 64, 1, 1),
    ConvShape("strided", 8, 128, 56, 56, 128, 3, 3, stride=2, pad=1),
    ConvShape("depthwise", 8, 128, 56, 56, 128, 3, 3, pad=1, groups=128),
    ConvShape("dilated", 8, 64, 56, 56, 64, 3, 3, pad=2, dilation=2),
]


@dataclass(frozen=True)
class PoolShape:
    """One pooling of the set; kind 'max', 'avg' or 'global'."""
    name: str
    kind: str
    n: int
    c: int
    h: int
    w: int
    kernel: int = 1
    stride: int = 1
    pad: int = 0

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    def params(self) -> Pool2dParams:
        """The kernel interface's parameters of this pooling (max and avg kinds)."""
        return Pool2dParams(self.kernel, self.kernel, self.stride, self.stride, self.pad, self.pad)


POOL_SHAPES = [
    PoolShape("max2x2", "max", 8, 64, 112, 112, 2, 2),
    # simple_cnn's first pooling (batch 128): small planes, short rows.
    PoolShape("max2x2_28", "max", 128, 32, 28, 28, 2, 2),
    PoolShape("max3x3s2", "max", 8, 64, 112, 112, 3, 2, 1),
    PoolShape("avg2x2", "avg", 8, 64, 112, 112, 2, 2),
    PoolShape("global", "global", 8, 512, 7, 7),
]


@dataclass(frozen=True)
class SoftmaxShape:
    """One softmax-family case: op in softmax, log_softmax, cross_entropy."""
    name: str
    op: str
    shape: tuple
    dim: int


SOFTMAX_SHAPES = [
    SoftmaxShape("softmax_4096x1000", "softmax", (4096, 1000), 1),
    SoftmaxShape("log_softmax_4096x1000", "log_softmax", (4096, 1000), 1),
    SoftmaxShape("softmax_seg", "softmax", (8, 21, 112, 112), 1),
    SoftmaxShape("log_softmax_seg", "log_softmax", (8, 21, 112, 112), 1),
    SoftmaxShape("cross_entropy_4096x1000", "cross_entropy", (4096, 1000), 1),
]

SHAPE_SETS = {"conv2d": CONV_SHAPES, "pool2d": POOL_SHAPES, "softmax": SOFTMAX_SHAPES}
