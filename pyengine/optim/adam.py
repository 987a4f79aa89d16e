"""Adam and AdamW, following torch's single-tensor update.

Per parameter p with gradient g (negated when ``maximize``), step t = 1, 2, ...:

    p = p * (1 - lr * weight_decay)            (decoupled: AdamW)
    g = g + weight_decay * p                   (coupled: Adam, if weight_decay != 0)
    m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
    vmax = max(vmax, v) and use vmax for v     (amsgrad)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

State per parameter: 'step' (a float, torch keeps a 0-d tensor), 'exp_avg', 'exp_avg_sq',
and 'max_exp_avg_sq' with amsgrad.
"""
from __future__ import annotations

import numbers

from ..autograd import no_grad
from ..tensor import Tensor
from .optimizer import Optimizer, check_nonnegative


def _lerp_(start, end, weight: float) -> None:
    """start += weight * (end - start) in place, with torch's two-sided formula (it computes
    from the nearer end so that weight = 1 gives ``end`` exactly)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` makes it AdamW.

    >>> import pyengine as pe
    >>> w = pe.nn.Parameter(pe.tensor([1.0]))
    >>> w.grad = pe.tensor([3.0])
    >>> pe.optim.Adam([w], lr=0.1).step()
    >>> round(w.item(), 4)   # the first step moves by lr * sign(g)
    0.9
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        check_nonnegative(lr, "lr", f"Invalid learning rate: {lr}")
        check_nonnegative(eps, "eps", f"Invalid epsilon value: {eps}")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(
                isinstance(b, numbers.Real) and not isinstance(b, bool) for b in betas):
            raise TypeError(f"betas must be a pair of floats, got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        check_nonnegative(weight_decay, "weight_decay",
                          f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            amsgrad, maximize = group["amsgrad"], group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                xp, param = p._xp, p.data
                g = -p.grad.data if maximize else p.grad.data
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["exp_avg"] = Tensor(xp.zeros_like(param), device=p.device)
                    state["exp_avg_sq"] = Tensor(xp.zeros_like(param), device=p.device)
                    if amsgrad:
                        state["max_exp_avg_sq"] = Tensor(xp.zeros_like(param), device=p.device)
                state["step"] += 1
                step = state["step"]
                if weight_decay != 0:
                    if decoupled:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        g = g + weight_decay * param
                exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
                _lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * g * g
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                step_size = lr / bias_correction1
                if amsgrad:
                    vmax = state["max_exp_avg_sq"].data
                    xp.maximum(vmax, exp_avg_sq, out=vmax)
                    denom = xp.sqrt(vmax) / bias_correction2_sqrt + eps
                else:
                    denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
                p.sub_(step_size * (exp_avg / denom))
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as ``torch.optim.AdamW``."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        """As Optimizer's, keeping decoupled weight decay on whatever the dict says."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


__all__ = ["Adam", "AdamW"]
