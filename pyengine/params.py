"""Parameter objects of the kernel interface, one per op family.

Each is a frozen dataclass that ``pyengine.functional`` builds once from the user's (already
validated) arguments and hands to a kernel. The same structs exist in C++
(``csrc/common/params.h``) with the same fields and the same output-size helpers; a test checks
that both agree.

Shape letters used across pyengine: N batch, C input channels, K output channels, H/W input
height/width, R/S kernel height/width, P/Q output height/width, G groups.
"""
from __future__ import annotations

from dataclasses import dataclass


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int) -> int:
    """Output length of a convolution along one axis: floor((H + pads - d(k-1) - 1)/s) + 1."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int,
                     ceil_mode: bool) -> int:
    """Output length of a pooling window along one axis, PyTorch's rule.

    With ``ceil_mode`` the division rounds up, but the last window must start inside the input
    or the left padding (``(out-1)*stride < size + pad``), otherwise it is dropped.
    """
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1
    if ceil_mode:
        numerator += stride - 1
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def conv_transpose_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int,
                               output_padding: int) -> int:
    """Output length of a transposed convolution: (H-1)s - 2p + d(k-1) + output_padding + 1."""
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class Conv2dParams:
    """Geometry of a 2-d convolution (cross-correlation, NCHW, weight K x C/G x R x S).

    Padding is stored per side because ``padding='same'`` with an even effective kernel puts the
    odd extra row/column at the bottom/right.
    """
    stride_h: int = 1
    stride_w: int = 1
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1

    def output_hw(self, h: int, w: int, r: int, s: int) -> tuple[int, int]:
        """(P, Q) for an H x W input and an R x S kernel."""
        return (conv_output_size(h, r, self.stride_h, self.pad_top, self.pad_bottom, self.dilation_h),
                conv_output_size(w, s, self.stride_w, self.pad_left, self.pad_right, self.dilation_w))


@dataclass(frozen=True)
class Pool2dParams:
    """Geometry and options of max/avg pooling. ``divisor_override`` 0 means none."""
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_h: int = 0
    pad_w: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int = 0

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """(P, Q) for an H x W input."""
        return (pool_output_size(h, self.kernel_h, self.stride_h, self.pad_h, self.dilation_h, self.ceil_mode),
                pool_output_size(w, self.kernel_w, self.stride_w, self.pad_w, self.dilation_w, self.ceil_mode))


@dataclass(frozen=True)
class ActivationParams:
    """Which pointwise activation: kind in {'relu', 'leaky_relu', 'sigmoid', 'tanh'}."""
    kind: str
    negative_slope: float = 0.01


@dataclass(frozen=True)
class LossParams:
    """Options shared by the losses.

    reduction: 'none' | 'mean' | 'sum'; ignore_index: class index that contributes nothing
    (class-index targets only); label_smoothing in [0, 1]; beta: smooth-L1 transition point.
    """
    reduction: str = "mean"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    beta: float = 1.0


@dataclass(frozen=True)
class PadParams:
    """Padding in PyTorch's order (last dim first: left, right, top, bottom, ...), mode and value.

    mode: 'constant' | 'reflect' | 'replicate' | 'circular'. Negative amounts crop.
    """
    pads: tuple
    mode: str = "constant"
    value: float = 0.0
