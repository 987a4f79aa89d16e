"""Loss kernels of the CUDA modules (csrc/cuda/loss.cu): fused cross-entropy (class-index or
probability targets, weights, ignore_index, label smoothing), NLL, MSE and smooth L1.
Reductions run in double in a fixed order (deterministic).
"""
from __future__ import annotations

from ._glue import CudaGlue


def _loss_shape(m, p):
    return (m,) if p.reduction == "none" else ()


class LossKernels(CudaGlue):
    """cross_entropy, nll_loss, mse_loss, smooth_l1_loss forward and backward (float32)."""

    def _target(self, target):
        return target if target.ndim == 2 else self._int64(target)

    def cross_entropy_forward(self, logits, target, weight, p):
        """(loss, lse) of logits (M,C); loss (M,) for 'none', else 0-d."""
        m = logits.shape[0]
        loss = self._out(_loss_shape(m, p), logits.dtype, logits)
        lse = self._out((m,), logits.dtype, logits)
        self._native.cross_entropy_forward(logits, self._target(target), weight, loss, lse, p,
                                           self._stream())
        return loss, lse

    def cross_entropy_backward(self, dloss, logits, target, weight, lse, p):
        """dlogits (M,C). The row statistics are recomputed from the logits (see loss.h)."""
        del lse
        dlogits = self._out(logits.shape, logits.dtype, logits)
        self._native.cross_entropy_backward(dloss, logits, self._target(target), weight, dlogits,
                                            p, self._stream())
        return dlogits

    def nll_loss_forward(self, logp, target, weight, p):
        """-logp[r, target[r]] * weight[target[r]], reduced."""
        loss = self._out(_loss_shape(logp.shape[0], p), logp.dtype, logp)
        self._native.nll_loss_forward(logp, self._int64(target), weight, loss, p, self._stream())
        return loss

    def nll_loss_backward(self, dloss, target, weight, input_shape, p):
        """dlogp (input_shape)."""
        dlogp = self._out(input_shape, dloss.dtype, dloss)
        self._native.nll_loss_backward(dloss, self._int64(target), weight, dlogp, p,
                                       self._stream())
        return dlogp

    def _pointwise_forward(self, name, x, target, p):
        loss = self._out(x.shape if p.reduction == "none" else (), x.dtype, x)
        getattr(self._native, name)(x, target, loss, p, self._stream())
        return loss

    def _pointwise_backward(self, name, dloss, x, target, p):
        dx = self._out(x.shape, x.dtype, x)
        getattr(self._native, name)(dloss, x, target, dx, p, self._stream())
        return dx

    def mse_loss_forward(self, x, target, p):
        """(x - target)^2, reduced."""
        return self._pointwise_forward("mse_loss_forward", x, target, p)

    def mse_loss_backward(self, dloss, x, target, p):
        """dx; the target's gradient is -dx."""
        return self._pointwise_backward("mse_loss_backward", dloss, x, target, p)

    def smooth_l1_loss_forward(self, x, target, p):
        """Smooth L1 with transition p.beta, reduced."""
        return self._pointwise_forward("smooth_l1_loss_forward", x, target, p)

    def smooth_l1_loss_backward(self, dloss, x, target, p):
        """dx; the target's gradient is -dx."""
        return self._pointwise_backward("smooth_l1_loss_backward", dloss, x, target, p)
