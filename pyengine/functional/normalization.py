"""batch_norm (torch.nn.functional.batch_norm): normalisation per channel, with the running
statistics updated in place during training.

Shape letters: N batch, C channels, L every further dimension flattened. Input (N, C) or
(N, C, d1, d2, ...) is viewed as (N, C, L) for the kernels. Zero-size inputs are handled here
rather than in every kernel: the output is empty, the running statistics stay as they are (as
torch), and the weight and bias gradients are zero.

Running statistics: the training kernel returns the batch mean and invstd = 1/sqrt(var + eps)
(the interface every backend shares), so the biased batch variance is recovered here in float64
as invstd^-2 - eps. That is exact up to the rounding of invstd: a relative error of a few ulps
of the dtype times (1 + eps/var), negligible unless a channel's variance is far below eps.
"""
from __future__ import annotations

import math
import numbers

from ..autograd import Function, no_grad
from ..backends.base import array_module
from ._common import (as_tensor, check_float, check_same_device, check_same_dtype, contiguous,
                      kernel)


class _BatchNorm(Function):
    """Outputs (y, mean, invstd): only y is differentiable; mean and invstd are the batch
    statistics in training (for the running-statistics update) and the constants derived from
    the running statistics in evaluation."""

    differentiable_outputs = (0,)

    @staticmethod
    def forward(ctx, x, weight, bias, training, eps, running_mean, running_var, device):
        xp = array_module(x)
        n, c = x.shape[:2]
        x3 = contiguous(x).reshape(n, c, math.prod(x.shape[2:]))  # not -1: x may be empty
        w1 = None if weight is None else contiguous(weight).reshape(c)
        b1 = None if bias is None else contiguous(bias).reshape(c)
        ctx.device, ctx.training, ctx.x_shape = device, training, x.shape
        ctx.shapes = (None if weight is None else weight.shape,
                      None if bias is None else bias.shape)
        if x3.size == 0:
            ctx.save_for_backward(x3)
            nothing = xp.zeros(c, dtype=x.dtype)
            return x.copy(), nothing, nothing.copy()
        if training:
            y3, mean, invstd = kernel("batch_norm_forward_train", x.dtype, device)(
                x3, w1, b1, eps)
        else:
            y3 = kernel("batch_norm_forward_eval", x.dtype, device)(
                x3, contiguous(running_mean).reshape(c), contiguous(running_var).reshape(c),
                w1, b1, eps)
            # Copies: the running statistics may be updated in place before backward runs.
            mean = running_mean.reshape(c).copy()
            invstd = (1 / xp.sqrt(running_var.reshape(c).astype(xp.float64) + eps)).astype(x.dtype)
        ctx.save_for_backward(x3, w1, mean, invstd)
        return y3.reshape(x.shape), mean, invstd

    @staticmethod
    def backward(ctx, dy, _dmean, _dinvstd):
        w_shape, b_shape = ctx.shapes
        if len(ctx.saved) == 1:  # zero-size input
            xp = array_module(dy)
            c = ctx.x_shape[1]
            dw = None if w_shape is None else xp.zeros(c, dtype=dy.dtype).reshape(w_shape)
            db = None if b_shape is None else xp.zeros(c, dtype=dy.dtype).reshape(b_shape)
            return dy.copy(), dw, db
        x3, w1, mean, invstd = ctx.saved
        dx, dw, db = kernel("batch_norm_backward", dy.dtype, ctx.device)(
            contiguous(dy).reshape(x3.shape), x3, w1, mean, invstd, ctx.training)
        dx = dx.reshape(ctx.x_shape)
        dw = None if w_shape is None or not ctx.needs_input_grad[1] else dw.reshape(w_shape)
        db = None if b_shape is None or not ctx.needs_input_grad[2] else db.reshape(b_shape)
        return dx, dw, db


def _update_running(running_mean, running_var, mean, invstd, eps, momentum, count):
    """running = (1 - momentum) * running + momentum * batch statistic, written in place
    (``copy_``, so the tensors' version counts move as in PyTorch); the variance unbiased."""
    xp = array_module(mean)
    f64 = xp.float64
    var = 1.0 / (invstd.astype(f64) ** 2) - eps
    unbiased = var * (count / (count - 1))
    new_mean = (1 - momentum) * running_mean.data.reshape(-1).astype(f64) \
        + momentum * mean.astype(f64)
    new_var = (1 - momentum) * running_var.data.reshape(-1).astype(f64) + momentum * unbiased
    with no_grad():
        running_mean.copy_(new_mean.reshape(running_mean.shape))
        running_var.copy_(new_var.reshape(running_var.shape))


def _check_channel_vector(t, name, x, c):
    if t is None:
        return None
    t = as_tensor(t, name)
    check_float(t, name)
    check_same_dtype(x, t, "input", name)
    check_same_device(x, t, "input", name)
    if t.numel() != c:
        raise ValueError(f"batch_norm: {name} should contain {c} elements (one per channel of "
                         f"input of shape {x.shape}), got {name} of shape {t.shape}")
    return t


def _check_real(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"batch_norm: {name} must be a real number, got {v!r}")
    return float(v)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """Normalise each channel (dim 1) of ``input``: (x - mean) / sqrt(var + eps) * weight + bias.

    input (N, C, ...) with at least 2 dimensions. Training: mean and the biased variance of the
    batch, and ``running_mean`` / ``running_var`` (tensors or arrays with C elements, or both
    None) are updated in place: running = (1 - momentum) * running + momentum * batch statistic,
    with the unbiased variance. Evaluation: the running statistics, which are then required.
    Gradients flow to input, weight and bias.

    >>> import numpy as np, pyengine as pe, pyengine.functional as F
    >>> rm, rv = np.zeros(1, np.float32), np.ones(1, np.float32)
    >>> y = F.batch_norm(pe.tensor([[1.0], [3.0]]), rm, rv, training=True)
    >>> [round(v, 3) for v in y.numpy().ravel().tolist()], rm.tolist()
    ([-1.0, 1.0], [0.20000000298023224])
    """
    x = as_tensor(input, "input")
    check_float(x, "input")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must have at least 2 dimensions (N, C, ...), "
                         f"got shape {x.shape}")
    c = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must either both be None or "
                         "neither be None")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var must be given in evaluation "
                         "mode (training=False)")
    rm = _check_channel_vector(running_mean, "running_mean", x, c)
    rv = _check_channel_vector(running_var, "running_var", x, c)
    w = _check_channel_vector(weight, "weight", x, c)
    b = _check_channel_vector(bias, "bias", x, c)
    momentum = _check_real(momentum, "momentum")
    eps = _check_real(eps, "eps")
    if training and not eps > 0:
        raise ValueError(f"batch_norm: eps must be positive during training, got {eps}")
    if not training and not eps >= 0:
        raise ValueError(f"batch_norm: eps must be non-negative, got {eps}")
    if training:
        values_per_channel = x.shape[0] * math.prod(x.shape[2:])
        if values_per_channel == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {x.shape}")
    y, mean, invstd = _BatchNorm.apply(
        x, w, b, training=bool(training), eps=eps,
        running_mean=None if training else rm.data, running_var=None if training else rv.data,
        device=x.device)
    count = x.shape[0] * math.prod(x.shape[2:])
    if training and rm is not None and count > 0:
        _update_running(rm, rv, mean.data, invstd.data, eps, momentum, count)
    return y


__all__ = ["batch_norm"]
