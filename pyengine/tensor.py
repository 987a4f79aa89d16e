"""pe.Tensor: an array (numpy on the host, cupy on a GPU) with a gradient and the op that made it.

Array code goes through ``self._xp`` (numpy or cupy), never ``np.`` directly on data, so the GPU
device plugs in without rewriting this file. The differentiable tensor ops (arithmetic with
broadcasting, reductions, views, indexing, cat, exp/log, max) are the Function subclasses below;
neural-network ops live in :mod:`pyengine.functional`.
"""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np

from .autograd import Function, no_grad, run_backward
from .backends.base import array_module

DEVICES = ("cpu", "cuda", "cuda_emu")

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _device_of(array) -> str:
    return "cuda" if array_module(array) is not np else "cpu"


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape`` (undo numpy broadcasting)."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _normalize_dim(dim, ndim, name="dim"):
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(f"{name}={dim} out of range for a tensor of {ndim} dimensions "
                         f"(expected in [{lo}, {hi}])")
    return int(dim) % max(ndim, 1)


def _normalize_dims(dim, ndim):
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = tuple(sorted({_normalize_dim(d, ndim) for d in dims}))
    return out


class Tensor:
    """A multi-dimensional array with reverse-mode autograd, shaped like ``torch.Tensor``.

    >>> import pyengine as pe
    >>> x = pe.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy().tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __array_priority__ = 1000  # numpy defers to our operators

    def __init__(self, data, requires_grad: bool = False, device: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        xp = array_module(data)
        if not hasattr(data, "dtype") or not hasattr(data, "shape"):
            data = np.asarray(data)
            xp = np
        self.data = data
        self._device = device or _device_of(data)
        self.grad: Tensor | None = None
        self._node = None
        self._out_index = 0
        self._retain_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)
        del xp

    @classmethod
    def _wrap(cls, array, device=None):
        t = cls.__new__(cls)
        t.data = array
        t._device = device or _device_of(array)
        t.grad = None
        t._node = None
        t._out_index = 0
        t._retain_grad = False
        t.requires_grad = False
        return t

    # -- properties ----------------------------------------------------------------------------
    @property
    def _xp(self):
        return array_module(self.data)

    @property
    def shape(self) -> tuple:
        """The shape, a tuple of ints."""
        return tuple(self.data.shape)

    @property
    def dtype(self):
        """The numpy dtype of the elements (``pe.float32`` etc.)."""
        return self.data.dtype

    @property
    def device(self) -> str:
        """'cpu', 'cuda' or 'cuda_emu'."""
        return self._device

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self):
        """The recorded op that produced this tensor (None for leaves)."""
        return self._node

    @property
    def T(self) -> "Tensor":
        """The tensor with its dimensions reversed."""
        return self.permute(*reversed(range(self.ndim)))

    def dim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    def size(self, dim=None):
        """The shape, or its length along ``dim``."""
        if dim is None:
            return self.shape
        return self.shape[_normalize_dim(dim, self.ndim)]

    def numel(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = f", device={self.device!r}" if self.device != "cpu" else ""
        return f"tensor({np.array2string(self.numpy(), separator=', ')}, dtype={self.dtype}{dev}{extra})"

    # -- conversion ----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (a view on the host, a copy from the GPU)."""
        if self._xp is np:
            return self.data
        return self.data.get()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self.data, self._device)

    def clone(self) -> "Tensor":
        """A differentiable copy."""
        return _Clone.apply(self)

    def contiguous(self) -> "Tensor":
        """Self if C-contiguous, else a differentiable contiguous copy."""
        if self.data.flags.c_contiguous:
            return self
        return _Clone.apply(self)

    def is_contiguous(self) -> bool:
        """True if the data is C-contiguous."""
        return bool(self.data.flags.c_contiguous)

    def to(self, target=None, dtype=None) -> "Tensor":
        """Move to a device ('cpu', 'cuda', 'cuda_emu') and/or cast to a dtype (differentiable)."""
        device = None
        if isinstance(target, str):
            device = target
        elif target is not None:
            dtype = target
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = _Cast.apply(out, dtype=np.dtype(dtype))
        if device is not None and device != out.device:
            out = _ToDevice.apply(out, device=device)
        return out

    def float(self) -> "Tensor":
        """Cast to float32."""
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        """Cast to float64."""
        return self.to(dtype=np.float64)

    def long(self) -> "Tensor":
        """Cast to int64 (not differentiable)."""
        return Tensor._wrap(self.data.astype(np.int64), self._device)

    def cpu(self) -> "Tensor":
        """Move to the host."""
        return self.to("cpu")

    # -- autograd ------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set requires_grad in place (leaves of a floating dtype only)."""
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor during backward."""
        self._retain_grad = True

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` defaults to 1 for a one-element tensor and is required otherwise.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward() without gradient needs a one-element tensor, "
                                   f"got shape {self.shape}")
            g = self._xp.ones(self.shape, dtype=self.dtype)
        else:
            g = gradient.data if isinstance(gradient, Tensor) else self._xp.asarray(gradient)
            if tuple(g.shape) != self.shape:
                raise ValueError(f"gradient has shape {tuple(g.shape)}, expected {self.shape}")
            g = g.astype(self.dtype, copy=False)
        run_backward(self, g, retain_graph=retain_graph)

    def _accumulate(self, g):
        g = g.astype(self.dtype, copy=False)
        if self.grad is None:
            self.grad = Tensor._wrap(g.copy(), self._device)
        else:
            self.grad.data = self.grad.data + g

    def zero_(self) -> "Tensor":
        """Fill with zeros in place."""
        self.data[...] = 0
        return self

    def fill_(self, value) -> "Tensor":
        """Fill with ``value`` in place."""
        self.data[...] = value
        return self

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (Tensor or array, broadcastable) into self in place."""
        src = src.data if isinstance(src, Tensor) else src
        if array_module(src) is not self._xp:
            src = self._xp.asarray(src.get() if hasattr(src, "get") else src)
        self.data[...] = src
        return self

    # -- arithmetic ----------------------------------------------------------------------------
    def _operand(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number):
            return other
        return Tensor(self._xp.asarray(other), device=self._device)

    def __add__(self, other):
        return _Add.apply(self, self._operand(other))

    def __radd__(self, other):
        return _Add.apply(self._operand(other), self)

    def __sub__(self, other):
        return _Sub.apply(self, self._operand(other))

    def __rsub__(self, other):
        return _Sub.apply(self._operand(other), self)

    def __mul__(self, other):
        return _Mul.apply(self, self._operand(other))

    def __rmul__(self, other):
        return _Mul.apply(self._operand(other), self)

    def __truediv__(self, other):
        return _Div.apply(self, self._operand(other))

    def __rtruediv__(self, other):
        return _Div.apply(self._operand(other), self)

    def __neg__(self):
        return _Neg.apply(self)

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Number):
            raise TypeError("only a scalar exponent is supported in Tensor ** exponent")
        return _Pow.apply(self, exponent=exponent)

    def __matmul__(self, other):
        return _MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other):
        return _MatMul.apply(self._operand(other), self)

    def _compare(self, other, op):
        o = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, o), self._device)

    def __eq__(self, other):  # noqa: D105  (elementwise, like torch)
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    __hash__ = object.__hash__

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # -- math ----------------------------------------------------------------------------------
    def exp(self) -> "Tensor":
        """Elementwise e^x."""
        return _Exp.apply(self)

    def log(self) -> "Tensor":
        """Elementwise natural logarithm."""
        return _Log.apply(self)

    def sqrt(self) -> "Tensor":
        """Elementwise square root."""
        return _Pow.apply(self, exponent=0.5)

    def abs(self) -> "Tensor":
        """Elementwise absolute value (gradient sign(x), 0 at 0)."""
        return _Abs.apply(self)

    def relu(self) -> "Tensor":
        """max(x, 0)."""
        from .functional import relu
        return relu(self)

    def sigmoid(self) -> "Tensor":
        """1 / (1 + e^-x)."""
        from .functional import sigmoid
        return sigmoid(self)

    def tanh(self) -> "Tensor":
        """Hyperbolic tangent."""
        from .functional import tanh
        return tanh(self)

    def softmax(self, dim) -> "Tensor":
        """Softmax along ``dim``."""
        from .functional import softmax
        return softmax(self, dim)

    def log_softmax(self, dim) -> "Tensor":
        """Log-softmax along ``dim``."""
        from .functional import log_softmax
        return log_softmax(self, dim)

    # -- reductions ----------------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Sum over ``dim`` (an int, a tuple, or None for all)."""
        return _Sum.apply(self, dims=_normalize_dims(dim, self.ndim), keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Mean over ``dim`` (an int, a tuple, or None for all)."""
        if self.dtype.kind not in "fc":
            raise TypeError(f"mean() needs a floating-point tensor, got {self.dtype}")
        dims = _normalize_dims(dim, self.ndim)
        count = self.numel() if dims is None else int(np.prod([self.shape[d] for d in dims]))
        total = _Sum.apply(self, dims=dims, keepdim=keepdim)
        return total / count if count else total * float("nan")  # empty mean is NaN, as torch

    def max(self, dim=None, keepdim: bool = False):
        """The maximum; with ``dim``, a (values, indices) pair like ``torch.max``."""
        if dim is None:
            return _MaxAll.apply(self)
        d = _normalize_dim(dim, self.ndim)
        values, indices = _MaxDim.apply(self, dim=d, keepdim=keepdim)
        return MaxResult(values, indices)

    def argmax(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Index of the maximum (of the flattened tensor when ``dim`` is None); int64."""
        xp = self._xp
        if dim is None:
            return Tensor._wrap(xp.asarray(xp.argmax(self.data), dtype=np.int64), self._device)
        d = _normalize_dim(dim, self.ndim)
        idx = xp.argmax(self.data, axis=d).astype(np.int64)
        if keepdim:
            idx = xp.expand_dims(idx, d)
        return Tensor._wrap(idx, self._device)

    # -- views ---------------------------------------------------------------------------------
    def reshape(self, *shape) -> "Tensor":
        """Same data in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            target = np.empty(self.shape, dtype=np.bool_).reshape(shape).shape  # validates shape
        except ValueError as exc:
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} to {shape}: {exc}") from None
        return _Reshape.apply(self, shape=target)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge dimensions start_dim..end_dim into one."""
        if self.ndim == 0:
            return self.reshape(1)
        s = _normalize_dim(start_dim, self.ndim, "start_dim")
        e = _normalize_dim(end_dim, self.ndim, "end_dim")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim: int) -> "Tensor":
        """Insert a dimension of length 1 at ``dim``."""
        d = _normalize_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None) -> "Tensor":
        """Remove dimensions of length 1 (only ``dim`` when given)."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        d = _normalize_dim(dim, self.ndim)
        if self.shape[d] != 1:
            return self
        return self.reshape(self.shape[:d] + self.shape[d + 1:])

    def permute(self, *dims) -> "Tensor":
        """Reorder the dimensions."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        norm = tuple(_normalize_dim(d, self.ndim) for d in dims)
        if sorted(norm) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dimensions")
        return _Permute.apply(self, dims=norm)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        """Swap two dimensions."""
        order = list(range(self.ndim))
        a, b = _normalize_dim(dim0, self.ndim), _normalize_dim(dim1, self.ndim)
        order[a], order[b] = order[b], order[a]
        return _Permute.apply(self, dims=tuple(order))

    def __getitem__(self, index) -> "Tensor":
        def raw(i):
            return i.data if isinstance(i, Tensor) else i
        index = tuple(raw(i) for i in index) if isinstance(index, tuple) else raw(index)
        return _GetItem.apply(self, index=index)


# -- creation ----------------------------------------------------------------------------------
def _default_dtype_for(data):
    arr = np.asarray(data)
    if arr.dtype.kind == "f" and not isinstance(data, np.ndarray):
        return np.float32  # Python floats become float32, as in torch
    return None


def tensor(data, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, numbers, arrays, Tensors).

    Python floats give float32 (as ``torch.tensor``); numpy arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.numpy()
    if hasattr(data, "__cuda_array_interface__") and dtype is None and device == "cpu":
        data = data.get()
    arr = np.array(data, dtype=dtype if dtype is not None else _default_dtype_for(data), copy=True)
    t = Tensor._wrap(arr, "cpu").to(device) if device != "cpu" else Tensor._wrap(arr, "cpu")
    if requires_grad:
        t.requires_grad_(True)
    return t


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along ``dim`` (differentiable)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    ndim = tensors[0].ndim
    d = _normalize_dim(dim, ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:d] + t.shape[d + 1:] != tensors[0].shape[:d] + tensors[0].shape[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, incompatible with "
                             f"{tensors[0].shape} along dim {dim}")
    return _Cat.apply(*tensors, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack tensors of equal shape along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    d = _normalize_dim(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], dim=d)


# -- the differentiable tensor ops -------------------------------------------------------------
def _shape_of(a):
    return getattr(a, "shape", ())


class _Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape_of(a), _shape_of(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (_unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                _unbroadcast(g, sb) if ctx.needs_input_grad[1] else None)


class _Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape_of(a), _shape_of(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (_unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                _unbroadcast(-g, sb) if ctx.needs_input_grad[1] else None)


class _Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return (_unbroadcast(g * b, _shape_of(a)) if ctx.needs_input_grad[0] else None,
                _unbroadcast(g * a, _shape_of(b)) if ctx.needs_input_grad[1] else None)


class _Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g / b, _shape_of(a)) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(-g * a / (b * b), _shape_of(b)) if ctx.needs_input_grad[1] else None
        return da, db


class _Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class _Pow(Function):
    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        e = ctx.exponent
        return g * e * a ** (e - 1)


class _Exp(Function):
    @staticmethod
    def forward(ctx, a):
        y = array_module(a).exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class _Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


class _Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * array_module(g).sign(ctx.saved[0])


class _MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                             f"({ka} != {kb})")
        ctx.save_for_backward(a, b)
        return array_module(a).matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        xp = array_module(g)
        A = a if a.ndim > 1 else a[None, :]
        B = b if b.ndim > 1 else b[:, None]
        G = g
        if a.ndim == 1:
            G = xp.expand_dims(G, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            G = xp.expand_dims(G, -1)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = _unbroadcast(xp.matmul(G, xp.swapaxes(B, -1, -2)), A.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            db = _unbroadcast(xp.matmul(xp.swapaxes(A, -1, -2), G), B.shape).reshape(b.shape)
        return da, db


class _Sum(Function):
    @staticmethod
    def forward(ctx, a, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return array_module(a).asarray(a.sum(axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        if ctx.dims is not None and not ctx.keepdim:
            g = xp.expand_dims(g, ctx.dims)
        elif ctx.dims is None and not ctx.keepdim:
            g = g.reshape((1,) * len(ctx.shape))
        return xp.broadcast_to(g, ctx.shape).copy()


class _MaxAll(Function):
    @staticmethod
    def forward(ctx, a):
        if a.size == 0:
            raise ValueError("max() of an empty tensor; pass dim= to reduce over a non-empty dim")
        xp = array_module(a)
        m = xp.asarray(a.max())
        if a.dtype.kind == "f":
            nan = xp.isnan(a)
            if nan.any():
                m = xp.asarray(np.nan, dtype=a.dtype)
        ctx.save_for_backward(a, m)
        return m

    @staticmethod
    def backward(ctx, g):
        # Like torch: the gradient is shared evenly by every element equal to the maximum.
        a, m = ctx.saved
        mask = (a == m)
        return mask * (g / mask.sum())


class _MaxDim(Function):
    differentiable_outputs = (0,)

    @staticmethod
    def forward(ctx, a, dim, keepdim):
        xp = array_module(a)
        if a.shape[dim] == 0:
            raise IndexError(f"max(): dimension {dim} has length 0 in shape {a.shape}")
        idx = xp.argmax(a, axis=dim)  # first maximum wins; NaN counts as the maximum
        values = xp.take_along_axis(a, xp.expand_dims(idx, dim), axis=dim)
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        ctx.save_for_backward(xp.expand_dims(idx, dim))
        if not keepdim:
            values = values.squeeze(dim)
        else:
            idx = xp.expand_dims(idx, dim)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, g, _g_idx):
        xp = array_module(g)
        (idx,) = ctx.saved
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.dim)
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.put_along_axis(out, idx, g, axis=ctx.dim)
        return out


class _Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class _Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return array_module(a).transpose(a, dims)

    @staticmethod
    def backward(ctx, g):
        return array_module(g).transpose(g, tuple(np.argsort(ctx.dims)))


class _GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            out = a[index]
        except IndexError as exc:
            raise IndexError(f"index {index!r} is out of range for a tensor of shape "
                             f"{a.shape}: {exc}") from None
        return array_module(a).asarray(out)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        if xp is np:
            np.add.at(out, ctx.index, g)  # repeated indices accumulate
        else:
            import cupyx
            cupyx.scatter_add(out, ctx.index, g)
        return out


class _Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        bounds = np.cumsum(ctx.sizes)[:-1].tolist()
        return tuple(xp.ascontiguousarray(p) for p in xp.split(g, bounds, axis=ctx.dim))


class _Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return array_module(a).ascontiguousarray(a).copy()

    @staticmethod
    def backward(ctx, g):
        return g


class _Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class _ToDevice(Function):
    """Move data between devices; the gradient moves back."""

    @staticmethod
    def forward(ctx, a, device):
        from .device import move_array
        ctx.source = "cuda" if array_module(a) is not np else "host"
        return move_array(a, device)

    @staticmethod
    def backward(ctx, g):
        from .device import move_array
        return move_array(g, "cuda" if ctx.source == "cuda" else "cpu")

    @classmethod
    def apply(cls, t, device):
        out = super().apply(t, device=device)
        out._device = device
        return out


__all__ = ["Tensor", "tensor", "cat", "stack", "no_grad", "MaxResult"]
