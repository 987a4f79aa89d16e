"""BatchNorm2d: per-channel normalisation of (N, C, H, W) input with running statistics.

Buffers (torch's names and dtypes): running_mean (C,) zeros, running_var (C,) ones,
num_batches_tracked () int64. Parameters when ``affine``: weight (C,) ones, bias (C,) zeros.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter, new_tensor


class BatchNorm2d(Module):
    """Batch normalisation over N, H, W for each channel, as ``torch.nn.BatchNorm2d``.

    Training mode normalises with the batch statistics and updates the running ones
    (``running = (1 - momentum) * running + momentum * batch``, the variance unbiased);
    ``momentum=None`` makes it a cumulative average over ``num_batches_tracked`` batches.
    Eval mode normalises with the running statistics, unless ``track_running_stats=False``,
    where batch statistics are always used. ``bias=False`` (keyword, torch 2.13) keeps the
    affine weight but drops the bias.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, "
                             f"got {num_features!r}")
        if momentum is not None and not isinstance(momentum, numbers.Real):
            raise TypeError(f"BatchNorm2d: momentum must be a number or None, got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(new_tensor((self.num_features,), device, dtype, fill=1.0))
            if bias:
                self.bias = Parameter(new_tensor((self.num_features,), device, dtype, fill=0.0))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean",
                                 new_tensor((self.num_features,), device, dtype, fill=0.0))
            self.register_buffer("running_var",
                                 new_tensor((self.num_features,), device, dtype, fill=1.0))
            self.register_buffer("num_batches_tracked",
                                 new_tensor((), device, np.int64, fill=0))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch count 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, and weight to 1 and bias to 0 when ``affine``."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        """Normalise ``input`` (N, C, H, W)."""
        if isinstance(input, Tensor) and input.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (got {input.ndim}D input of "
                             f"shape {input.shape})")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input,
                            self.running_mean if track else None,
                            self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


__all__ = ["BatchNorm2d"]
