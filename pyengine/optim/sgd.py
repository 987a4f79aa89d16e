"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize.

torch's update, per parameter p with gradient g (negated when ``maximize``):

    g = g + weight_decay * p                      (if weight_decay != 0)
    buf = g  (first step)  or  buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf  (nesterov)  or  g = buf      (if momentum != 0)
    p = p - lr * g
"""
from __future__ import annotations

from ..autograd import no_grad
from .optimizer import Optimizer, check_nonnegative


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (state 'momentum_buffer' when
    ``momentum != 0``).

    >>> import pyengine as pe
    >>> w = pe.nn.Parameter(pe.tensor([1.0, 2.0]))
    >>> w.grad = pe.tensor([0.5, 0.5])
    >>> pe.optim.SGD([w], lr=0.1).step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.95, 1.95]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        check_nonnegative(lr, "lr", f"Invalid learning rate: {lr}")
        check_nonnegative(momentum, "momentum", f"Invalid momentum value: {momentum}")
        check_nonnegative(weight_decay, "weight_decay",
                          f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.
        All or nothing: the new values are computed first, then written (``_commit``)."""
        loss = self._evaluate_closure(closure)
        updates = []
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            dampening, weight_decay = group["dampening"], group["weight_decay"]
            nesterov, maximize = group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                param = p.data
                g = -p.grad.data if maximize else p.grad.data
                if weight_decay != 0:
                    g = g + weight_decay * param
                state = {}
                if momentum != 0:
                    buf = self.state[p].get("momentum_buffer")
                    buf = p._xp.array(g, copy=True) if buf is None else \
                        momentum * buf.data + (1 - dampening) * g
                    state["momentum_buffer"] = buf
                    g = g + momentum * buf if nesterov else buf
                updates.append((p, param - lr * g, state))
        self._commit(updates)
        return loss


__all__ = ["SGD"]
