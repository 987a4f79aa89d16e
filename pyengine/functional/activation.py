"""Pointwise activations: relu, leaky_relu, sigmoid, tanh (torch.nn.functional semantics).

All four run on the two activation kernels of the interface, on the input flattened to 1-d (a
pointwise op does not care about shape, so kernels only ever see contiguous vectors).

``inplace=True`` (relu, leaky_relu; also dropout) overwrites the input and returns it, with
PyTorch's autograd rules, through the Tensor's own in-place machinery: without graph
involvement the result is written into the buffer and the version count bumped (a backward that
saved that buffer then refuses to run); for a non-leaf that requires grad the op is recorded on
a copy of the old value, so the tensor's history continues through it; a leaf that requires grad
raises RuntimeError unless gradients are off (``pe.no_grad()``). An array input is written
through, since it is wrapped without a copy.
"""
from __future__ import annotations

import numbers

from ..autograd import Function, no_grad
from ..params import ActivationParams
from ._common import as_tensor, check_float, contiguous, kernel


class _Activation(Function):
    @staticmethod
    def forward(ctx, x, p, device):
        flat = contiguous(x).reshape(-1)
        if flat.size == 0:
            y = flat.copy()
        else:
            y = kernel("activation_forward", x.dtype, device)(flat, p)
        ctx.p, ctx.device = p, device
        ctx.save_for_backward(flat, y)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, dy):
        flat, y = ctx.saved
        if flat.size == 0:
            return dy.copy(), None, None
        dx = kernel("activation_backward", y.dtype, ctx.device)(
            contiguous(dy).reshape(-1), flat, y, ctx.p)
        return dx.reshape(dy.shape), None, None


def apply_in_place(t, fn):
    """Replace ``t``'s value by ``fn(t)`` (same shape and dtype) in place and return ``t``.

    ``fn`` maps a Tensor to a Tensor through differentiable ops. Recorded in the graph when
    ``t`` takes part in it (PyTorch's rules, see the module docstring), else a plain write that
    bumps ``t``'s version count.
    """
    if t._tracks_inplace():  # raises for a leaf that requires grad while gradients are on
        return t._inplace_recorded(fn)
    with no_grad():
        result = fn(t)
    t.copy_(result)
    return t


def _activate(input, kind, negative_slope=0.01, inplace=False):
    x = as_tensor(input, "input")
    check_float(x, "input")
    p = ActivationParams(kind, float(negative_slope))
    if inplace:
        return apply_in_place(x, lambda t: _Activation.apply(t, p, t.device))
    return _Activation.apply(x, p, x.device)


def relu(input, inplace=False):
    """max(x, 0) elementwise; the gradient is 0 where x <= 0. ``inplace=True`` overwrites and
    returns the input (autograd rules in the module docstring).

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.relu(pe.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    return _activate(input, "relu", inplace=inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x. ``inplace`` as for :func:`relu`.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.leaky_relu(pe.tensor([-2.0, 3.0]), negative_slope=0.5).tolist()
    [-1.0, 3.0]
    """
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a real number, "
                        f"got {negative_slope!r}")
    return _activate(input, "leaky_relu", negative_slope, inplace)


def sigmoid(input):
    """1 / (1 + exp(-x)) elementwise, without overflow for large |x|.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.sigmoid(pe.tensor([0.0])).tolist()
    [0.5]
    """
    return _activate(input, "sigmoid")


def tanh(input):
    """Hyperbolic tangent elementwise.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.tanh(pe.tensor([0.0])).tolist()
    [0.0]
    """
    return _activate(input, "tanh")


__all__ = ["relu", "leaky_relu", "sigmoid", "tanh"]
