"""Reverse-mode autograd: Function, the graph node it records, and the backward pass.

A :class:`Function` subclass defines ``forward(ctx, *args, **kwargs)`` on raw arrays and
``backward(ctx, *grad_outputs)`` returning one gradient (array or None) per positional argument
of forward. ``Function.apply`` unwraps Tensors, runs forward, and -- when gradients are enabled
and some input requires them -- records a :class:`Node` on the outputs. ``run_backward`` walks
the recorded graph in reverse topological order (iteratively, so a chain of any depth works)
and accumulates gradients into leaves.

A node refers to its inputs through :class:`Edge`s, not through the input tensors, so an
intermediate activation is freed as soon as nothing but the graph would hold it -- unless its
Function saved it for backward. In-place ops bump a tensor's :class:`VersionCounter`; backward
refuses to use a saved array whose tensor was modified in place after it was saved (PyTorch's
"modified by an inplace operation" error) instead of returning a wrong gradient.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

_grad_state = threading.local()

_FREED = ("trying to backward through the graph a second time (or to read saved arrays after "
          "they were freed): the saved arrays of {name} are released after backward(); pass "
          "retain_graph=True to the first backward() to keep them")


def is_grad_enabled() -> bool:
    """True unless inside ``pe.no_grad()``."""
    return getattr(_grad_state, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._prev = []  # a stack, so one instance can be re-entered (a decorated recursive fn)

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        _grad_state.enabled = self.enabled

    def __exit__(self, *exc):
        _grad_state.enabled = self._prev.pop()
        return False


def no_grad(func=None):
    """Context manager / decorator: ops inside record no graph (like ``torch.no_grad``).

    Works as ``with pe.no_grad():``, ``@pe.no_grad()`` and ``@pe.no_grad``.

    >>> import pyengine as pe
    >>> x = pe.ones(2, requires_grad=True)
    >>> with pe.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """
    return _GradMode(False)(func) if callable(func) else _GradMode(False)


def enable_grad(func=None):
    """Context manager / decorator: re-enable graph recording inside ``no_grad``."""
    return _GradMode(True)(func) if callable(func) else _GradMode(True)


class set_grad_enabled:  # noqa: N801  (torch's name)
    """Turn graph recording on or off: as a call, a context manager or a decorator.

    Like ``torch.set_grad_enabled``, calling it switches the mode at once; leaving a ``with``
    block restores the mode from before the call; as a decorator it sets the mode only while
    the decorated function runs.
    """

    def __init__(self, mode: bool):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _grad_state.enabled = self.mode

    def __call__(self, func):
        _grad_state.enabled = self.prev  # a decorator must not change the mode at definition
        return _GradMode(self.mode)(func)  # and restores the caller's mode, not self.prev

    def __enter__(self):
        _grad_state.enabled = self.mode

    def __exit__(self, *exc):
        _grad_state.enabled = self.prev
        return False


class VersionCounter:
    """How many times a buffer was modified in place. Tensors that view one buffer share one.

    ``graph_views`` is set once a recorded op produced a view of the buffer: an in-place op
    that records graph cannot then rewrite the history of every view, so it is refused.
    """

    __slots__ = ("value", "graph_views")

    def __init__(self):
        self.value = 0
        self.graph_views = False


def buffer_root(a):
    """The array that owns ``a``'s memory (``a`` itself when it owns it)."""
    while True:
        base = getattr(a, "base", None)
        if base is None or not hasattr(base, "shape"):
            return a
        a = base


class Context:
    """What forward leaves for backward: ``save_for_backward``, attributes, and
    ``needs_input_grad`` (one bool per positional argument of forward)."""

    def __init__(self, needs_input_grad, fn=None):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._released = False
        self._fn = fn

    def save_for_backward(self, *arrays):
        """Keep arrays for backward (released after the backward pass unless retain_graph)."""
        self._saved = arrays

    @property
    def saved(self):
        """The arrays passed to ``save_for_backward``."""
        if self._released:
            name = self._fn.__name__.lstrip("_") + "Backward" if self._fn else "this op"
            raise RuntimeError(_FREED.format(name=name))
        return self._saved

    saved_tensors = saved  # PyTorch's name

    def _release(self):
        # Like torch, only a node that saved something fails a second backward.
        if self._saved:
            self._saved = ()
            self._released = True


class Edge:
    """Where the gradient of one input goes: the node that produced it (and which of its
    outputs it was) or, for a leaf, the leaf tensor itself. Shape, dtype and device are kept
    to check and cast what backward returns."""

    __slots__ = ("node", "index", "leaf", "shape", "dtype", "device")

    def __init__(self, tensor):
        self.node = tensor._node
        self.index = tensor._out_index
        self.leaf = tensor if tensor._node is None else None
        self.shape = tensor.shape
        self.dtype = tensor.dtype
        self.device = tensor.device


class Node:
    """One recorded op: the Function, its context, one Edge (or None) per positional input, and
    what the outputs looked like (shape, dtype, array module) to build zero gradients."""

    __slots__ = ("fn", "ctx", "edges", "out_meta", "versions", "retained")

    def __init__(self, fn, ctx, edges, out_meta, versions):
        self.fn = fn
        self.ctx = ctx
        self.edges = edges
        self.out_meta = out_meta
        self.versions = versions  # (counter, value at record time, id of the buffer root)
        self.retained = None  # output index -> weakref of a tensor that called retain_grad()

    @property
    def name(self) -> str:
        """'MulBackward' and so on."""
        return f"{self.fn.__name__.lstrip('_')}Backward"

    @property
    def next_functions(self) -> tuple:
        """(node, output index) per input, like ``torch.autograd.graph.Node.next_functions``."""
        return tuple((e.node, e.index) if e is not None else (None, 0) for e in self.edges)

    def _retain(self, index, tensor):
        if self.retained is None:
            self.retained = {}
        self.retained[index] = weakref.ref(tensor)

    def __repr__(self):
        return f"<{self.name}>"


def _as_array(o):
    # numpy turns 0-d results into scalars (np.float32), which are immutable and have no
    # `base`; a Tensor always holds a real array.
    return np.asarray(o) if isinstance(o, np.generic) else o


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
        """Run forward on the arrays inside ``args`` and record the graph when needed.

        Tensor arguments must share a device, except one-element host tensors, which follow the
        others (as PyTorch lets a CPU scalar tensor meet a CUDA tensor).
        """
        Tensor = _tensor_class()
        tensors = [a for a in args if isinstance(a, Tensor)]
        device = _common_device(tensors)
        raw = [a if not isinstance(a, Tensor) else
               a._data if a._device == device else _move(a._data, device)  # a host scalar
               for a in args]
        needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        ctx = Context(needs, cls)
        outputs = cls.forward(ctx, *raw, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = [_as_array(o) for o in ((outputs,) if single else outputs)]
        record = any(needs) and is_grad_enabled()

        wrapped = []
        roots = [(t, buffer_root(t._data)) for t in tensors]
        for o in outs:
            t = Tensor._wrap(o, device)
            root = buffer_root(o)
            for src, src_root in roots:
                if root is src_root:  # a view of an input shares its version counter
                    t._vc = src._vc
                    if record:
                        src._vc.graph_views = True
                    break
            wrapped.append(t)

        if record:
            meta = tuple((o.shape, o.dtype, _array_module(o)) for o in outs)
            edges = tuple(Edge(a) if need else None for a, need in zip(args, needs))
            versions = tuple((t._vc, t._vc.value, id(r)) for t, r in roots) + tuple(
                (t._vc, t._vc.value, id(buffer_root(t.data))) for t in wrapped)
            node = Node(cls, ctx, edges, meta, versions)
            for i, t in enumerate(wrapped):
                if t.dtype.kind in "fc" and (cls.differentiable_outputs is None
                                             or i in cls.differentiable_outputs):
                    t._requires_grad = True
                    t._node = node
                    t._out_index = i
        return wrapped[0] if single else tuple(wrapped)


_tensor_cls = None


def _tensor_class():
    # tensor.py imports this module, so Tensor is looked up once, on the first op
    global _tensor_cls
    if _tensor_cls is None:
        from .tensor import Tensor
        _tensor_cls = Tensor
    return _tensor_cls


def _array_module(a):
    from .backends.base import array_module
    return array_module(a)


def _move(a, device):
    from .device import move_array
    return move_array(a, device)


def _common_device(tensors):
    if not tensors:
        return "cpu"
    first = tensors[0]._device
    if all(t._device == first for t in tensors):
        return first
    main = {t.device for t in tensors if not (t.device == "cpu" and t.data.ndim == 0)}
    if len(main) == 1:
        return main.pop()
    listing = ", ".join(f"{t.device} {t.shape}" for t in tensors)
    raise RuntimeError(f"expected all tensors on one device, got {listing}; "
                       "move them with .to(device)")


def _topological_order(root_node):
    """Nodes reachable from ``root_node``, each before every node it feeds (root first)."""
    order, seen = [], {id(root_node)}
    stack = [(root_node, iter(root_node.edges))]
    while stack:  # iterative depth-first search: no recursion limit on deep graphs
        node, edges = stack[-1]
        for e in edges:
            if e is not None and e.node is not None and id(e.node) not in seen:
                seen.add(id(e.node))
                stack.append((e.node, iter(e.node.edges)))
                break
        else:
            stack.pop()
            order.append(node)
    return order[::-1]


def _check_versions(node):
    """Raise if an array that ``node`` saved was modified in place after it was saved."""
    saved = node.ctx._saved
    if not saved:
        return
    saved_roots = {id(buffer_root(s)) for s in saved if hasattr(s, "shape")}
    for counter, value, root_id in node.versions:
        if counter.value != value and root_id in saved_roots:
            raise RuntimeError(
                f"an array needed by {node.name} to compute gradients was modified by an "
                f"in-place operation: it is at version {counter.value}, expected {value}; "
                "use an out-of-place op, or clone() before modifying")


def run_backward(tensor, grad, retain_graph=False):
    """Backpropagate ``grad`` (an array shaped like ``tensor``) through the recorded graph.

    Leaves with ``requires_grad`` accumulate into ``.grad``; a tensor used twice receives the sum
    of both gradients. Without ``retain_graph`` the saved arrays are released afterwards.
    """
    if tensor._node is None:
        if tensor.requires_grad:
            tensor._accumulate(grad)
        return
    root = tensor._node
    pending = {id(root): [None] * len(root.out_meta)}
    pending[id(root)][tensor._out_index] = grad
    for node in _topological_order(root):
        grads = pending.pop(id(node), None)
        if grads is None or all(g is None for g in grads):
            continue
        if node.retained:
            for k, ref in node.retained.items():
                t = ref()
                if t is not None and grads[k] is not None and t._node is node:
                    t._accumulate(grads[k])
        _check_versions(node)
        grads = [g if g is not None else meta[2].zeros(meta[0], dtype=meta[1])
                 for g, meta in zip(grads, node.out_meta)]
        in_grads = node.fn.backward(node.ctx, *grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        _check_count(node, in_grads)
        for i, (edge, g) in enumerate(zip(node.edges, in_grads)):
            if edge is None or g is None:
                continue
            g = _fit_gradient(node, i, edge, _as_array(g))
            if edge.node is None:
                if edge.leaf.requires_grad:
                    edge.leaf._accumulate(g)
                continue
            slot = pending.setdefault(id(edge.node), [None] * len(edge.node.out_meta))
            k = edge.index
            slot[k] = g if slot[k] is None else slot[k] + g
        if not retain_graph:
            node.ctx._release()


def _check_count(node, in_grads):
    n_in = len(node.edges)
    if len(in_grads) > n_in and any(g is not None for g in in_grads[n_in:]):
        raise RuntimeError(f"{node.name} returned {len(in_grads)} gradients for {n_in} inputs")
    missing = [i for i in range(len(in_grads), n_in) if node.edges[i] is not None]
    if missing:
        raise RuntimeError(f"{node.name} returned {len(in_grads)} gradients but input "
                           f"{missing[0]} needs one (expected {n_in})")


def _fit_gradient(node, i, edge, g):
    """Check the shape of a gradient; cast it to the input's dtype and move it to its device."""
    if tuple(g.shape) != tuple(edge.shape):
        raise RuntimeError(f"{node.name} returned a gradient of shape {tuple(g.shape)} for input "
                           f"{i} of shape {tuple(edge.shape)}")
    if g.dtype != edge.dtype:
        g = g.astype(edge.dtype)
    from .backends.base import array_module
    if (array_module(g) is np) != (edge.device != "cuda"):
        from .device import move_array
        g = move_array(g, edge.device)
    return g


__all__ = ["Function", "Context", "Node", "Edge", "VersionCounter", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "run_backward"]
