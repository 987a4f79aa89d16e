"""Reverse-mode autograd: Function, the graph node it leaves behind, and the backward pass.

A :class:`Function` subclass defines ``forward(ctx, *args, **kwargs)`` on raw arrays and
``backward(ctx, *grad_outputs)`` returning one gradient (array or None) per positional argument
of forward. ``Function.apply`` unwraps Tensors, runs forward, and -- when gradients are enabled
and some input requires them -- records a :class:`Node` on the outputs. ``run_backward`` walks
the recorded graph in reverse topological order and accumulates gradients into leaves.
"""
from __future__ import annotations

import contextlib
import threading

_grad_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside ``pe.no_grad()``."""
    return getattr(_grad_state, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.prev = is_grad_enabled()
        _grad_state.enabled = self.enabled

    def __exit__(self, *exc):
        _grad_state.enabled = self.prev
        return False


def no_grad():
    """Context manager / decorator: ops inside record no graph (like ``torch.no_grad``)."""
    return _GradMode(False)


def enable_grad():
    """Context manager / decorator: re-enable graph recording inside ``no_grad``."""
    return _GradMode(True)


class Context:
    """What forward leaves for backward: ``save_for_backward``, attributes, and
    ``needs_input_grad`` (one bool per positional argument of forward)."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved = ()

    def save_for_backward(self, *arrays):
        """Keep arrays for backward (released after the backward pass)."""
        self.saved = arrays


class Node:
    """One recorded op: the Function, its context, its inputs (Tensors or None) and the number of
    outputs. Output tensors point back at it with their output index."""

    __slots__ = ("fn", "ctx", "inputs", "n_outputs", "out_meta")

    def __init__(self, fn, ctx, inputs, n_outputs, out_meta):
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs
        self.n_outputs = n_outputs
        self.out_meta = out_meta  # (shape, dtype, array module) per output, to build zero grads

    def __repr__(self):
        return f"<{self.fn.__name__}Backward>"


class Function:
    """Base class of differentiable ops (see the module docstring)."""

    differentiable_outputs = None  # None: every floating output; else a tuple of output indices

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """Compute the outputs (an array or a tuple of arrays) from raw arrays."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        """Gradients w.r.t. each positional input of forward (None where not needed)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on the arrays inside ``args`` and record the graph when needed."""
        from .backends.base import array_module
        from .tensor import Tensor

        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = Context(needs)
        outputs = cls.forward(ctx, *raw, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        device = next((a.device for a in args if isinstance(a, Tensor)), None)
        record = is_grad_enabled() and any(needs)
        wrapped = []
        node = None
        if record:
            meta = tuple((o.shape, o.dtype, array_module(o)) for o in outs)
            node = Node(cls, ctx, tuple(a if isinstance(a, Tensor) else None for a in args),
                        len(outs), meta)
        for i, o in enumerate(outs):
            grad_ok = record and o.dtype.kind in "fc" and (
                cls.differentiable_outputs is None or i in cls.differentiable_outputs)
            t = Tensor._wrap(o, device=device)
            if grad_ok:
                t.requires_grad = True
                t._node = node
                t._out_index = i
            wrapped.append(t)
        return wrapped[0] if single else tuple(wrapped)


def _topological_order(root_node):
    order, seen = [], set()
    stack = [(root_node, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for inp in node.inputs:
            if inp is not None and inp._node is not None and id(inp._node) not in seen:
                stack.append((inp._node, False))
    return order[::-1]  # root first


def run_backward(tensor, grad, retain_graph=False):
    """Backpropagate ``grad`` (an array shaped like ``tensor``) through the recorded graph.

    Leaves with ``requires_grad`` accumulate into ``.grad``; a tensor used twice receives the sum
    of both gradients. Without ``retain_graph`` the saved arrays are released afterwards.
    """
    if tensor._node is None:
        if tensor.requires_grad:
            tensor._accumulate(grad)
        return
    pending = {id(tensor._node): [None] * tensor._node.n_outputs}
    pending[id(tensor._node)][tensor._out_index] = grad
    for node in _topological_order(tensor._node):
        grads = pending.pop(id(node), None)
        if grads is None:
            continue
        if node.ctx is None:
            raise RuntimeError("trying to backward through the graph a second time; "
                               "pass retain_graph=True to the first backward()")
        if all(g is None for g in grads):
            continue
        grads = [g if g is not None else _zeros_like(meta) for g, meta in zip(grads, node.out_meta)]
        in_grads = node.fn.backward(node.ctx, *grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for inp, g in zip(node.inputs, in_grads):
            if inp is None or g is None or not inp.requires_grad:
                continue
            if g.shape != inp.shape:
                raise RuntimeError(f"{node!r} returned a gradient of shape {g.shape} "
                                   f"for an input of shape {inp.shape}")
            if inp._node is None:
                inp._accumulate(g)
            else:
                slot = pending.setdefault(id(inp._node), [None] * inp._node.n_outputs)
                k = inp._out_index
                slot[k] = g if slot[k] is None else slot[k] + g
            if inp._retain_grad and inp._node is not None:
                inp._accumulate(g)
        if not retain_graph:
            node.ctx = None


def _zeros_like(meta):
    shape, dtype, xp = meta
    return xp.zeros(shape, dtype=dtype)
