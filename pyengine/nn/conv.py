"""Conv2d and ConvTranspose2d: parameters, torch's default init, and a call to functional.

Layouts (torch's): Conv2d weight (K, C/groups, R, S); ConvTranspose2d weight
(C, K/groups, R, S); bias (K,). K output channels, C input channels, R x S kernel.
"""
from __future__ import annotations

import numbers

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter, new_tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v, name: str, cls: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != 2 or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool)
                                  for e in v):
            raise ValueError(f"{cls}: {name} must be an int or a pair of ints, got {v!r}")
        return tuple(int(e) for e in v)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{cls}: {name} must be an int or a pair of ints, got {v!r}")
    return (int(v), int(v))


def _positive_int(v, name: str, cls: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{cls}: {name} must be an int, got {v!r}")
    if v <= 0:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {v}")
    return int(v)


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: argument checks, parameters, init, repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        cls = type(self).__name__
        groups = _positive_int(groups, "groups", cls)
        in_channels = _positive_int(in_channels, "in_channels", cls)
        out_channels = _positive_int(out_channels, "out_channels", cls)
        if in_channels % groups != 0:
            raise ValueError(f"{cls}: in_channels must be divisible by groups "
                             f"(in_channels={in_channels}, groups={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{cls}: out_channels must be divisible by groups "
                             f"(out_channels={out_channels}, groups={groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", cls)
        self.stride = _pair(stride, "stride", cls)
        self.dilation = _pair(dilation, "dilation", cls)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 f"['valid', 'same']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding", cls)
        self.transposed = transposed
        self.output_padding = _pair(output_padding, "output_padding", cls)
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's order: last dimension first, (left, right) of each.
        if self.padding == "valid":
            self._reversed_padding_repeated_twice = [0, 0, 0, 0]
        elif self.padding == "same":
            pads = []
            for d, k in zip(reversed(self.dilation), reversed(self.kernel_size)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            self._reversed_padding_repeated_twice = pads
        else:
            ph, pw = self.padding
            self._reversed_padding_repeated_twice = [pw, pw, ph, ph]
        if transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(new_tensor(shape, device, dtype))
        if bias:
            self.bias = Parameter(new_tensor((out_channels,), device, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias."""
        init.reset_weight_and_bias_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-d convolution over (N, C, H, W) or (C, H, W) input, as ``torch.nn.Conv2d``.

    ``padding`` is an int, a pair, 'valid' or 'same'; ``padding_mode`` 'zeros' pads inside the
    convolution, 'reflect' / 'replicate' / 'circular' pad with ``F.pad`` first.

    >>> import numpy as np, pyengine as pe
    >>> conv = pe.nn.Conv2d(1, 4, 3, padding=1)
    >>> conv(pe.tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
    (2, 4, 8, 8)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def forward(self, input):
        """Convolve ``input`` with this layer's weight and bias."""
        return self._conv_forward(input, self.weight, self.bias)


class ConvTranspose2d(_ConvNd):
    """2-d transposed convolution (the gradient of Conv2d w.r.t. its input), as
    ``torch.nn.ConvTranspose2d``. ``forward(input, output_size)`` picks the output_padding that
    gives ``output_size`` (the last two entries are used).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, '
                             f'got {padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair of ints, "
                             f"got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        output_size = [int(v) for v in output_size]
        batched = input.ndim == 4
        non_spatial = 2 if batched else 1
        if len(output_size) == non_spatial + 2:
            output_size = output_size[non_spatial:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d: for {input.ndim}D input, output_size must have "
                             f"2 or {non_spatial + 2} elements (got {len(output_size)})")
        result = []
        for d in range(2):
            size_in = input.shape[d + non_spatial]
            lo = ((size_in - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= output_size[d] <= hi:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes "
                                 f"range from {lo} to {hi} (for an input of "
                                 f"{tuple(input.shape[non_spatial:])})")
            result.append(output_size[d] - lo)
        return tuple(result)

    def forward(self, input, output_size=None):
        """Transposed convolution of ``input``; ``output_size`` resolves the ambiguous size."""
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)


__all__ = ["Conv2d", "ConvTranspose2d"]
