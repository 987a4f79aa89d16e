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
from .optimizer import Optimizer, check_nonnegative


def _lerp(start, end, weight: float):
    """start + weight * (end - start), with torch's two-sided formula (it computes from the
    nearer end so that weight = 1 gives ``end`` exactly)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


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
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.
        All or nothing: the new values are computed first, then written (``_commit``)."""
        loss = self._evaluate_closure(closure)
        updates = []
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
                step = state.get("step", 0.0) + 1
                zeros = None if state else xp.zeros_like(param)
                exp_avg = zeros if zeros is not None else state["exp_avg"].data
                exp_avg_sq = zeros if zeros is not None else state["exp_avg_sq"].data
                if weight_decay != 0:
                    if decoupled:
                        param = param * (1 - lr * weight_decay)
                    else:
                        g = g + weight_decay * param
                new = {"step": step, "exp_avg": _lerp(exp_avg, g, 1 - beta1),
                       "exp_avg_sq": exp_avg_sq * beta2 + (1 - beta2) * g * g}
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                step_size = lr / bias_correction1
                v = new["exp_avg_sq"]
                if amsgrad:
                    vmax = zeros if zeros is not None else state["max_exp_avg_sq"].data
                    v = new["max_exp_avg_sq"] = xp.maximum(vmax, v)
                denom = xp.sqrt(v) / bias_correction2_sqrt + eps
                updates.append((p, param - step_size * (new["exp_avg"] / denom), new))
        self._commit(updates)
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
