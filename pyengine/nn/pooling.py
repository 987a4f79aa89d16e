"""Pooling layers: MaxPool2d, AvgPool2d, MaxUnpool2d, AdaptiveAvgPool2d (no parameters).

Each keeps its arguments as given (torch's attributes and repr) and calls the functional op,
which validates them.
"""
from __future__ import annotations

from .. import functional as F
from .module import Module


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class MaxPool2d(Module):
    """Max over sliding windows, as ``torch.nn.MaxPool2d``; ``stride`` defaults to
    ``kernel_size``. With ``return_indices`` it also returns the flat H*W positions that
    :class:`MaxUnpool2d` consumes.

    >>> import numpy as np, pyengine as pe
    >>> pe.nn.MaxPool2d(2)(pe.tensor(np.arange(16.0).reshape(1, 1, 4, 4))).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        """Pool ``input``; a (values, indices) pair when ``return_indices``."""
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool2d(Module):
    """Mean over sliding windows, as ``torch.nn.AvgPool2d``; ``stride`` defaults to
    ``kernel_size``; ``count_include_pad`` and ``divisor_override`` as in torch."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        """Average-pool ``input``."""
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class MaxUnpool2d(Module):
    """Partial inverse of MaxPool2d: scatter values back to the positions in ``indices``
    (zeros elsewhere), as ``torch.nn.MaxUnpool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input, indices, output_size=None):
        """Unpool ``input`` with the ``indices`` MaxPool2d returned."""
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` (an int, a pair; None keeps that size), as
    ``torch.nn.AdaptiveAvgPool2d``."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        """Pool ``input`` to ``output_size``."""
        return F.adaptive_avg_pool2d(input, self.output_size)


__all__ = ["MaxPool2d", "AvgPool2d", "MaxUnpool2d", "AdaptiveAvgPool2d"]
