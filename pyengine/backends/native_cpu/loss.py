"""Losses of ``pyengine._cpu`` (csrc/cpu/loss*.cpp): the fused cross-entropy, nll_loss, mse_loss
and smooth_l1_loss, forward and backward.

A mixin of :class:`NativeCpuBackend`: each method allocates its outputs with ``new_output`` and
lets the native function fill them. Shape letters: M rows, C classes.

The cross-entropy forward returns its log-sum-exp in float64 (the interface leaves the saved
value's precision to the backend): the backward then computes the softmax from it in one pass,
and a float32 lse of logits near 1e4 would be off by its ulp (about 1e-3). Given an lse of
another dtype (saved by another backend's forward) the backward recomputes it from the logits.
"""
from __future__ import annotations

import numpy as np

from ..base import new_output
from ._module import _cpu


def _loss_shape(p, rows_shape):
    return tuple(rows_shape) if p.reduction == "none" else ()


class LossKernels:
    """the fused cross-entropy, nll, mse and smooth-L1 losses (float32)."""

    def cross_entropy_forward(self, logits, target, weight, p):
        """(loss, lse) of logits (M,C): loss (M,) for 'none', else 0-d; lse (M,) float64."""
        m = logits.shape[0]
        loss = new_output(_loss_shape(p, (m,)), logits.dtype)
        lse = new_output((m,), np.float64)
        _cpu.cross_entropy_forward(logits, target, weight, loss, lse, p.reduction,
                                   p.ignore_index, p.label_smoothing)
        return loss, lse

    def cross_entropy_backward(self, dloss, logits, target, weight, lse, p):
        """dlogits (M,C); dloss (M,) for 'none', else 0-d."""
        dlogits = new_output(logits.shape, logits.dtype)
        saved = lse if lse is not None and lse.dtype == np.float64 else None
        _cpu.cross_entropy_backward(dloss, logits, target, weight, saved, dlogits, p.reduction,
                                    p.ignore_index, p.label_smoothing)
        return dlogits

    def nll_loss_forward(self, logp, target, weight, p):
        """-logp[r, t_r] * weight[t_r], reduced; (M,) for 'none', else 0-d."""
        loss = new_output(_loss_shape(p, logp.shape[:1]), logp.dtype)
        _cpu.nll_loss_forward(logp, target, weight, loss, p.reduction, p.ignore_index)
        return loss

    def nll_loss_backward(self, dloss, target, weight, input_shape, p):
        """dlogp (input_shape)."""
        dlogp = new_output(tuple(input_shape), dloss.dtype)
        _cpu.nll_loss_backward(dloss, target, weight, dlogp, p.reduction, p.ignore_index)
        return dlogp

    def mse_loss_forward(self, x, target, p):
        """(x - target)^2, reduced; x's shape for 'none', else 0-d."""
        loss = new_output(_loss_shape(p, x.shape), x.dtype)
        _cpu.elementwise_loss_forward("mse", x, target, loss, p.reduction)
        return loss

    def mse_loss_backward(self, dloss, x, target, p):
        """dx = 2 (x - target) * dloss (/ x.size for 'mean')."""
        dx = new_output(x.shape, x.dtype)
        _cpu.elementwise_loss_backward("mse", dloss, x, target, dx, p.reduction)
        return dx

    def smooth_l1_loss_forward(self, x, target, p):
        """Smooth L1 with p.beta, reduced; x's shape for 'none', else 0-d."""
        loss = new_output(_loss_shape(p, x.shape), x.dtype)
        _cpu.elementwise_loss_forward("smooth_l1", x, target, loss, p.reduction, p.beta)
        return loss

    def smooth_l1_loss_backward(self, dloss, x, target, p):
        """dx = clamp((x - target) / beta, -1, 1) * dloss (/ x.size for 'mean')."""
        dx = new_output(x.shape, x.dtype)
        _cpu.elementwise_loss_backward("smooth_l1", dloss, x, target, dx, p.reduction, p.beta)
        return dx
