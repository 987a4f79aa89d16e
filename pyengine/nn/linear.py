"""Linear (y = x W^T + b, weight (out_features, in_features)), Identity and Flatten."""
from __future__ import annotations

import numbers

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter, new_tensor


class Identity(Module):
    """Returns its input; constructor arguments are accepted and ignored (as torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        """``input`` unchanged."""
        return input


class Linear(Module):
    """Affine map ``x @ weight.T + bias`` over the last dimension, as ``torch.nn.Linear``.

    >>> import numpy as np, pyengine as pe
    >>> fc = pe.nn.Linear(3, 2)
    >>> fc.weight.shape, fc(pe.tensor(np.ones((4, 3), np.float32))).shape
    ((2, 3), (4, 2))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {v!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(new_tensor((self.out_features, self.in_features), device, dtype))
        if bias:
            self.bias = Parameter(new_tensor((self.out_features,), device, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
        init.reset_weight_and_bias_(self.weight, self.bias)

    def forward(self, input):
        """Apply the affine map."""
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge dimensions ``start_dim``..``end_dim`` (default: all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        """``input.flatten(start_dim, end_dim)``."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


__all__ = ["Identity", "Linear", "Flatten"]
