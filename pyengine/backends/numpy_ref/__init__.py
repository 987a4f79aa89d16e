"""The numpy reference backend: the specification every other backend is checked against.

Plain numpy, float32 and float64, written to be read: no tricks, accumulation in the input's
dtype except where a comment says otherwise. One module per op family, with the same base name
as the op's file in every other backend.
"""
from __future__ import annotations

import numpy as np

from ..base import Backend
from . import activation, batch_norm, conv2d, linear, loss, pad, pool2d, softmax


class NumpyBackend(Backend):
    """Every kernel of the interface, in numpy."""

    name = "numpy"
    dtypes = (np.dtype(np.float32), np.dtype(np.float64))

    conv2d_forward = staticmethod(conv2d.conv2d_forward)
    conv2d_backward_data = staticmethod(conv2d.conv2d_backward_data)
    conv2d_backward_weight = staticmethod(conv2d.conv2d_backward_weight)
    conv2d_backward_bias = staticmethod(conv2d.conv2d_backward_bias)

    max_pool2d_forward = staticmethod(pool2d.max_pool2d_forward)
    max_pool2d_backward = staticmethod(pool2d.max_pool2d_backward)
    avg_pool2d_forward = staticmethod(pool2d.avg_pool2d_forward)
    avg_pool2d_backward = staticmethod(pool2d.avg_pool2d_backward)
    max_unpool2d_forward = staticmethod(pool2d.max_unpool2d_forward)
    max_unpool2d_backward = staticmethod(pool2d.max_unpool2d_backward)
    adaptive_avg_pool2d_forward = staticmethod(pool2d.adaptive_avg_pool2d_forward)
    adaptive_avg_pool2d_backward = staticmethod(pool2d.adaptive_avg_pool2d_backward)

    softmax_forward = staticmethod(softmax.softmax_forward)
    softmax_backward = staticmethod(softmax.softmax_backward)
    log_softmax_forward = staticmethod(softmax.log_softmax_forward)
    log_softmax_backward = staticmethod(softmax.log_softmax_backward)

    cross_entropy_forward = staticmethod(loss.cross_entropy_forward)
    cross_entropy_backward = staticmethod(loss.cross_entropy_backward)
    nll_loss_forward = staticmethod(loss.nll_loss_forward)
    nll_loss_backward = staticmethod(loss.nll_loss_backward)
    mse_loss_forward = staticmethod(loss.mse_loss_forward)
    mse_loss_backward = staticmethod(loss.mse_loss_backward)
    smooth_l1_loss_forward = staticmethod(loss.smooth_l1_loss_forward)
    smooth_l1_loss_backward = staticmethod(loss.smooth_l1_loss_backward)

    activation_forward = staticmethod(activation.activation_forward)
    activation_backward = staticmethod(activation.activation_backward)

    linear_forward = staticmethod(linear.linear_forward)
    linear_backward_data = staticmethod(linear.linear_backward_data)
    linear_backward_weight = staticmethod(linear.linear_backward_weight)
    linear_backward_bias = staticmethod(linear.linear_backward_bias)

    batch_norm_forward_train = staticmethod(batch_norm.batch_norm_forward_train)
    batch_norm_forward_eval = staticmethod(batch_norm.batch_norm_forward_eval)
    batch_norm_backward = staticmethod(batch_norm.batch_norm_backward)

    pad_forward = staticmethod(pad.pad_forward)
    pad_backward = staticmethod(pad.pad_backward)

    def algorithms(self, op):
        """The reference has one algorithm per op."""
        return ("direct",) if op in ("conv2d",) else super().algorithms(op)
