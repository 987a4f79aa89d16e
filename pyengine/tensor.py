"""pe.Tensor: an array (numpy on the host, cupy on a GPU) with a gradient and the op that made it.

Array code goes through ``self._xp`` (numpy or cupy) and :mod:`pyengine.device`, never ``np.``
directly on data, so the GPU device plugs in without rewriting this file. The differentiable
ops behind the methods are the Functions of :mod:`pyengine._tensor_ops`; neural-network ops live
in :mod:`pyengine.functional`.

Semantics follow PyTorch: type promotion (``float32 * 2.5`` stays float32, ``int64 / int64`` is
float32), broadcasting, error types (RuntimeError for shape and autograd misuse, IndexError for
dims and indices out of range), in-place ops and their autograd checks. Where pyengine departs
from it, the method's docstring says so.
"""
from __future__ import annotations

import copy as _copy
from collections import namedtuple

import numpy as np

from . import _tensor_ops as ops
from .autograd import VersionCounter, _common_device, is_grad_enabled, no_grad, run_backward
from .backends.base import array_module
from .device import check_device, device_of_array, move_array

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MinResult = namedtuple("MinResult", ["values", "indices"])

_SCALARS = (bool, int, float, complex)

# Older names, kept for modules that imported them from here.
_unbroadcast = ops.unbroadcast
_normalize_dim = ops.normalize_dim
_normalize_dims = ops.normalize_dims


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy")


def _size_args(args):
    """``f(2, 3)`` or ``f((2, 3))`` as the tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def parse_to_args(args, device=None, dtype=None):
    """(device, dtype) from the positional arguments of ``Tensor.to`` / ``Module.to``:
    a device string, a dtype, both, or a tensor (its device and dtype); keywords as defaults."""
    if len(args) > 2:
        raise TypeError(f"to() takes at most 2 positional arguments, got {len(args)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, str):
            device = a
        elif a is not None:
            dtype = a
    return device, dtype


class Tensor:
    """A multi-dimensional array with reverse-mode autograd, shaped like ``torch.Tensor``.

    ``pe.Tensor(array)`` wraps an array without copying it (use :func:`pyengine.tensor` for a
    copy). Lists and Python numbers become arrays with PyTorch's dtypes (floats: float32).

    >>> import pyengine as pe
    >>> x = pe.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __array_priority__ = 1000  # numpy's binary operators defer to ours

    def __init__(self, data, requires_grad: bool = False, device: str | None = None):
        vc = None
        if isinstance(data, Tensor):
            device = device if device is not None else data.device
            data, vc = data.data, data._vc
        elif not _is_array(data):
            data = np.asarray(data, dtype=_infer_dtype(data))
        ops.as_dtype(data.dtype)  # numbers only: no object or string arrays
        if device is not None:
            device = check_device(device)
            moved = move_array(data, device)
            vc = vc if moved is data else None
            data = moved
        self._init(data, device or device_of_array(data))
        if vc is not None:
            self._vc = vc
        if requires_grad:
            self.requires_grad_(True)

    def _init(self, data, device):
        self._data = data
        self._device = device
        self.grad: Tensor | None = None
        self._node = None
        self._out_index = 0
        self._requires_grad = False
        self._vc = VersionCounter()

    @classmethod
    def _wrap(cls, array, device=None):
        t = cls.__new__(cls)
        t._init(array, device or device_of_array(array))
        return t

    # -- properties ----------------------------------------------------------------------------
    @property
    def data(self):
        """The array itself (numpy or cupy). Writing into it bypasses autograd, as in torch."""
        return self._data

    @data.setter
    def data(self, value):
        # torch code assigns tensors to .data; keep holding a bare array
        self._data = value.data if isinstance(value, Tensor) else value

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
    def is_cuda(self) -> bool:
        """True for tensors on the GPU ('cuda')."""
        return self._device == "cuda"

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (or through) this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        self.requires_grad_(value)

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self):
        """The recorded op that produced this tensor (None for leaves)."""
        return self._node

    @property
    def retains_grad(self) -> bool:
        """True if ``retain_grad()`` was called on this non-leaf tensor."""
        retained = self._node.retained if self._node is not None else None
        ref = retained.get(self._out_index) if retained else None
        return ref is not None and ref() is self

    @property
    def _version(self) -> int:
        """How many in-place ops modified this tensor's memory (PyTorch's ``_version``)."""
        return self._vc.value

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
        return self.shape[ops.normalize_dim(dim, self.ndim)]

    def numel(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    def element_size(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        extra = ""
        if self.device != "cpu":
            extra += f", device={self.device!r}"
        if self._node is not None:
            extra += f", grad_fn={self._node!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    # -- conversion ----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a numpy array: the very buffer on the host, a copy from the GPU.

        Unlike torch, allowed on tensors that require grad (writes to it bypass autograd).
        """
        return self.data if self._xp is np else self.data.get()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy and a is self.data else a

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        """The data as (nested) Python lists, or a number for a 0-d tensor."""
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing the data (and its in-place version count), cut from the graph."""
        t = Tensor._wrap(self.data, self._device)
        t._vc = self._vc
        return t

    def clone(self) -> "Tensor":
        """A differentiable, contiguous copy."""
        return ops.Clone.apply(self)

    def contiguous(self) -> "Tensor":
        """Self if C-contiguous, else a differentiable contiguous copy."""
        return self if self.is_contiguous() else ops.Clone.apply(self)

    def is_contiguous(self) -> bool:
        """True if the data is C-contiguous."""
        return bool(self.data.flags.c_contiguous)

    def to(self, *args, device=None, dtype=None, copy: bool = False,
           non_blocking: bool = False) -> "Tensor":
        """Move to a device and/or cast to a dtype; differentiable both ways.

        Accepts ``to('cuda_emu')``, ``to(pe.float64)``, ``to('cpu', pe.float64)``,
        ``to(other_tensor)`` (its device and dtype) and the keywords. Returns self when nothing
        changes and ``copy`` is false. A move between devices always copies.
        """
        device, dtype = parse_to_args(args, device, dtype)
        out = self
        if dtype is not None:
            dt = ops.as_dtype(dtype)
            if dt != out.dtype:
                out = ops.Cast.apply(out, dtype=dt)
        if device is not None:
            dev = check_device(device)
            if dev != out.device:
                src = out.device
                out = ops.ToDevice.apply(out, device=dev, source=src)
                out._device = dev
        if copy and out is self:
            out = self.clone()
        return out

    def float(self) -> "Tensor":
        """Cast to float32."""
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        """Cast to float64."""
        return self.to(dtype=np.float64)

    def half(self) -> "Tensor":
        """Cast to float16."""
        return self.to(dtype=np.float16)

    def long(self) -> "Tensor":
        """Cast to int64 (not differentiable)."""
        return self.to(dtype=np.int64)

    def int(self) -> "Tensor":
        """Cast to int32 (not differentiable)."""
        return self.to(dtype=np.int32)

    def bool(self) -> "Tensor":
        """Cast to bool (not differentiable)."""
        return self.to(dtype=np.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        """Cast to the dtype of ``other``."""
        return self.to(dtype=other.dtype)

    def cpu(self) -> "Tensor":
        """Move to the host."""
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        """Move to the GPU (needs cupy and a GPU)."""
        return self.to("cuda")

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export the data as a DLPack capsule (``torch.from_dlpack(t)``, ``np.from_dlpack``).

        Shares memory. Refused for tensors that require grad, as in PyTorch: detach() first.
        """
        if self.requires_grad:
            raise RuntimeError("cannot export a tensor that requires grad through DLPack; "
                               "export tensor.detach() instead")
        kwargs = {k: v for k, v in (("stream", stream), ("max_version", max_version),
                                    ("dl_device", dl_device), ("copy", copy)) if v is not None}
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        """(device type, device id) of the data: (1, 0) on the host (cpu and cuda_emu)."""
        return self.data.__dlpack_device__()

    def __getstate__(self):
        # The graph does not travel: a pickled tensor comes back as a leaf with host data
        # that __setstate__ moves back to its device.
        state = self.__dict__.copy()
        state["_data"] = self.numpy()
        state["_node"], state["_out_index"], state["_vc"] = None, 0, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._device == "cuda":
            self._data = move_array(self._data, "cuda")
        self._vc = VersionCounter()

    def __deepcopy__(self, memo):
        if self._node is not None:
            raise RuntimeError("only leaf tensors support deepcopy (this one was computed by "
                               f"{self._node!r}); detach() it first")
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        state = self.__getstate__()
        new.__setstate__(_copy.deepcopy(state, memo))
        return new

    # -- autograd ------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set requires_grad in place (floating-point leaves only, as in torch)."""
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(f"only floating-point tensors can require gradients; this one "
                               f"(shape {self.shape}) is {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; use detach() "
                               "to get a tensor that does not require grad")
        self._requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor during backward (a no-op on leaves)."""
        if self._node is None:
            if not self.requires_grad:
                raise RuntimeError("retain_grad() on a tensor that does not require grad")
            return
        self._node._retain(self._out_index, self)

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` (shaped like self) defaults to 1 for a one-element tensor and is required
        otherwise. The graph's saved arrays are freed afterwards unless ``retain_graph``.
        Higher-order gradients (``create_graph``) are not supported.
        """
        if create_graph:
            raise NotImplementedError("create_graph=True (higher-order gradients) is not "
                                      "supported by pyengine")
        if not self.requires_grad:
            raise RuntimeError(f"backward() on a tensor of shape {self.shape} that does not "
                               "require grad (no input of the ops that made it required grad)")
        xp = self._xp
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError("backward() without a gradient needs a one-element tensor "
                                   f"(a scalar loss), got shape {self.shape}; pass gradient=")
            g = xp.ones(self.shape, dtype=self.dtype)
        else:
            g = gradient.data if isinstance(gradient, Tensor) else gradient
            g = move_array(g, self._device) if _is_array(g) else xp.asarray(g)
            if tuple(g.shape) != self.shape:
                raise RuntimeError(f"gradient has shape {tuple(g.shape)} but the tensor has "
                                   f"shape {self.shape}")
            g = g.astype(self.dtype, copy=False)
        run_backward(self, g, retain_graph=bool(retain_graph))

    def _accumulate(self, g):
        g = g.astype(self.dtype, copy=False)
        if self.grad is None:
            self.grad = Tensor._wrap(g.copy(), self._device)
        else:
            self.grad.data = self.grad.data + g

    # -- in-place ops --------------------------------------------------------------------------
    # Without graph involvement they write into the buffer and bump the version count, which
    # makes a backward that saved this buffer refuse to run. With it (a non-leaf, or a value
    # that requires grad) the op is recorded on a copy of the old value and the result written
    # back, so this tensor's history continues through the op, as in PyTorch.
    def _tracks_inplace(self, *others) -> bool:
        if not is_grad_enabled():
            return False
        if self.requires_grad and self._node is None:
            raise RuntimeError(f"a leaf tensor of shape {self.shape} that requires grad is used "
                               "in an in-place operation; do it under pe.no_grad() or on a "
                               "clone()")
        return self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                         for o in others)

    def _inplace_recorded(self, compute) -> "Tensor":
        if self._vc.graph_views:
            raise RuntimeError(f"in-place operation on a tensor of shape {self.shape} that "
                               "shares its memory with a view recorded in the graph; use the "
                               "out-of-place op")
        old = Tensor._wrap(self.data.copy(), self._device)
        old._node, old._out_index, old._requires_grad = \
            self._node, self._out_index, self._requires_grad
        out = compute(old)
        if out.shape != self.shape:
            raise RuntimeError(f"in-place result of shape {out.shape} does not fit a tensor of "
                               f"shape {self.shape}")
        if out.dtype != self.dtype:
            out = out.to(dtype=self.dtype)
        retained = self.retains_grad
        self.data[...] = out.data
        self._vc.value += 1
        self._node, self._out_index, self._requires_grad = \
            out._node, out._out_index, out._requires_grad
        if retained:
            self.retain_grad()
        return self

    def _raw_on_device(self, other):
        """The array of ``other`` on this tensor's device; only a 0-d host tensor may move."""
        if not isinstance(other, Tensor):
            return other
        _common_device([self, other])  # raises for two devices
        return other.data if other.device == self._device else move_array(other.data,
                                                                          self._device)

    def _inplace_operand(self, value, alpha=1):
        other = self._operand(value)
        if other is NotImplemented:
            raise TypeError(f"unsupported operand type {type(value).__name__} for an in-place "
                            "op on a tensor")
        return other if alpha == 1 else other * alpha

    def _arith_(self, value, ufunc, op, true_divide=False) -> "Tensor":
        other = self._inplace_operand(value)
        if self._tracks_inplace(other):
            return self._inplace_recorded(lambda s: op(s, other))
        dtype = ops.result_type(self, other)
        if true_divide and dtype.kind in "biu":
            dtype = ops.DEFAULT_FLOAT
        if not ops.can_cast(dtype, self.dtype):
            raise RuntimeError(f"result type {dtype} can't be stored in place in a tensor of "
                               f"dtype {self.dtype}")
        if isinstance(other, Tensor) and \
                ops.broadcast_shape(self.shape, other.shape) != self.shape:
            raise RuntimeError(f"in-place op: an operand of shape {other.shape} does not "
                               f"broadcast to the tensor's shape {self.shape}")
        getattr(self._xp, ufunc)(self.data, self._raw_on_device(other), out=self.data,
                                 dtype=dtype, casting="unsafe")
        self._vc.value += 1
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        """self += alpha * other, in place."""
        return self._arith_(self._inplace_operand(other, alpha), "add", lambda a, b: a + b)

    def sub_(self, other, alpha=1) -> "Tensor":
        """self -= alpha * other, in place."""
        return self._arith_(self._inplace_operand(other, alpha), "subtract",
                            lambda a, b: a - b)

    def mul_(self, other) -> "Tensor":
        """self *= other, in place."""
        return self._arith_(other, "multiply", lambda a, b: a * b)

    def div_(self, other) -> "Tensor":
        """self /= other, in place."""
        return self._arith_(other, "true_divide", lambda a, b: a / b, true_divide=True)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, index, value):
        index = self._index(index)
        operand = self._operand(np.asarray(value) if isinstance(value, (list, tuple)) else value)
        if operand is NotImplemented:
            raise TypeError(f"cannot assign a {type(value).__name__} into a tensor")
        value = operand
        if self._tracks_inplace(value):
            self._inplace_recorded(lambda s: ops.SetItem.apply(s, value, index=index))
            return
        ops.assign(self.data, index, self._raw_on_device(value))
        self._vc.value += 1

    def fill_(self, value) -> "Tensor":
        """Fill with ``value`` (a number or a one-element tensor) in place."""
        self[...] = value
        return self

    def zero_(self) -> "Tensor":
        """Fill with zeros in place."""
        return self.fill_(0)

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (a Tensor or array broadcastable to self; any device) in place."""
        if isinstance(src, Tensor) and src.device != self._device:
            src = src.to(self._device)
        self[...] = src
        return self

    # -- arithmetic ----------------------------------------------------------------------------
    def _operand(self, other):
        """``other`` as an op operand: Tensors as they are, numbers as Python scalars (weak in
        type promotion), arrays as Tensors on this device; NotImplemented otherwise."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, _SCALARS):
            return other
        if isinstance(other, np.generic) and other.dtype.kind in "biufc":
            return other.item()  # torch treats numpy scalars like Python numbers
        if _is_array(other):
            return Tensor(other, device=self._device)
        return NotImplemented

    def _binary(self, fn, other, reflected=False, true_divide=False):
        other = self._operand(other)
        if other is NotImplemented:
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        if isinstance(other, Tensor):
            ops.broadcast_shape(a.shape, b.shape)
        dtype = ops.result_type(a, b)
        if true_divide and dtype.kind in "biu":
            dtype = ops.DEFAULT_FLOAT  # true division of integers gives the default float
        return fn.apply(a, b, dtype=dtype)

    def __add__(self, other):
        return self._binary(ops.Add, other)

    def __radd__(self, other):
        return self._binary(ops.Add, other, reflected=True)

    def __sub__(self, other):
        return self._binary(ops.Sub, other)

    def __rsub__(self, other):
        return self._binary(ops.Sub, other, reflected=True)

    def __mul__(self, other):
        return self._binary(ops.Mul, other)

    def __rmul__(self, other):
        return self._binary(ops.Mul, other, reflected=True)

    def __truediv__(self, other):
        return self._binary(ops.Div, other, true_divide=True)

    def __rtruediv__(self, other):
        return self._binary(ops.Div, other, reflected=True, true_divide=True)

    def __pow__(self, exponent):
        return self._binary(ops.Pow, exponent)

    def __rpow__(self, base):
        return self._binary(ops.Pow, base, reflected=True)

    def pow(self, exponent) -> "Tensor":
        """self ** exponent (a number or a tensor)."""
        return self ** exponent

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        other = self._operand(other)
        if other is NotImplemented:
            return NotImplemented
        if not isinstance(other, Tensor):
            raise RuntimeError(f"matmul: both operands need at least 1 dimension, got a tensor "
                               f"of shape {self.shape} and a scalar")
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        other = self._operand(other)
        if other is NotImplemented:
            return NotImplemented
        if not isinstance(other, Tensor):
            raise RuntimeError(f"matmul: both operands need at least 1 dimension, got a scalar "
                               f"and a tensor of shape {self.shape}")
        return ops.MatMul.apply(other, self)

    def matmul(self, other) -> "Tensor":
        """Matrix product with torch.matmul's rules for 1-d and batched operands."""
        return self @ other

    def _compare(self, other, ufunc):
        other = self._operand(other)
        if other is NotImplemented:
            return NotImplemented
        if isinstance(other, Tensor):
            ops.broadcast_shape(self.shape, other.shape)
        dtype = ops.result_type(self, other)
        a = ops.cast(self.data, dtype)
        b = ops.cast(self._raw_on_device(other), dtype)
        out = getattr(self._xp, ufunc)(a, b)
        return Tensor._wrap(self._xp.asarray(out), self._device)

    def __eq__(self, other):  # elementwise, like torch
        return self._compare(other, "equal")

    def __ne__(self, other):
        return self._compare(other, "not_equal")

    def __lt__(self, other):
        return self._compare(other, "less")

    def __le__(self, other):
        return self._compare(other, "less_equal")

    def __gt__(self, other):
        return self._compare(other, "greater")

    def __ge__(self, other):
        return self._compare(other, "greater_equal")

    __hash__ = object.__hash__  # identity, so tensors can key dicts as in torch

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
        return ops.Exp.apply(self._floating())

    def log(self) -> "Tensor":
        """Elementwise natural logarithm."""
        return ops.Log.apply(self._floating())

    def sqrt(self) -> "Tensor":
        """Elementwise square root."""
        return ops.Sqrt.apply(self._floating())

    def abs(self) -> "Tensor":
        """Elementwise absolute value (gradient sign(x), 0 at 0)."""
        return ops.Abs.apply(self)

    def _floating(self) -> "Tensor":
        # exp/log/sqrt of integers give the default float, as in torch
        return self if self.dtype.kind in "fc" else self.to(dtype=ops.DEFAULT_FLOAT)

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
    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        """Sum over ``dim`` (an int, a tuple, or None for all); bool and int sums are int64."""
        if dtype is None:
            dtype = np.dtype(np.int64) if self.dtype.kind in "biu" else self.dtype
        return ops.Sum.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=keepdim,
                             dtype=ops.as_dtype(dtype))

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        """Mean over ``dim`` (an int, a tuple, or None for all); NaN over no elements."""
        x = self if dtype is None else self.to(dtype=dtype)
        if x.dtype.kind not in "fc":
            raise RuntimeError(f"mean() needs a floating-point tensor, got {x.dtype}; "
                               "pass dtype=pe.float32")
        dims = ops.normalize_dims(dim, x.ndim)
        count = x.numel() if dims is None else int(np.prod([x.shape[d] for d in dims]))
        total = x.sum(dim=dims, keepdim=keepdim)
        return total / count if count else total * float("nan")

    def max(self, dim=None, keepdim: bool = False):
        """The maximum (NaN if any element is NaN); with ``dim``, a (values, indices) pair
        where the first maximum wins ties, like ``torch.max``.

        The gradient of the full max() is shared evenly by every element equal to it.
        """
        if dim is None:
            return ops.ExtremumAll.apply(self, largest=True)
        return MaxResult(*self._extremum_dim(dim, keepdim, largest=True))

    def min(self, dim=None, keepdim: bool = False):
        """The minimum; with ``dim``, a (values, indices) pair (see :meth:`max`)."""
        if dim is None:
            return ops.ExtremumAll.apply(self, largest=False)
        return MinResult(*self._extremum_dim(dim, keepdim, largest=False))

    def _extremum_dim(self, dim, keepdim, largest):
        d = ops.normalize_dim(dim, self.ndim)
        if self.ndim == 0:  # torch reduces a 0-d tensor over "dim 0" to itself
            v, i = ops.ExtremumDim.apply(self.reshape(1), dim=0, keepdim=False, largest=largest)
            return v, i
        return ops.ExtremumDim.apply(self, dim=d, keepdim=keepdim, largest=largest)

    def _arg_extremum(self, fn, dim, keepdim):
        xp = self._xp
        if self.numel() == 0:
            raise RuntimeError(f"argmax/argmin of an empty tensor (shape {self.shape})")
        if dim is None:
            idx = xp.asarray(fn(self.data), dtype=np.int64)
            return Tensor._wrap(idx.reshape((1,) * self.ndim) if keepdim else idx, self._device)
        d = ops.normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return Tensor._wrap(xp.zeros((), dtype=np.int64), self._device)
        idx = fn(self.data, axis=d).astype(np.int64)
        return Tensor._wrap(xp.expand_dims(idx, d) if keepdim else xp.asarray(idx), self._device)

    def any(self) -> "Tensor":
        """True if any element is nonzero (a 0-d bool tensor)."""
        return Tensor._wrap(self._xp.asarray(self._xp.any(self.data)), self._device)

    def all(self) -> "Tensor":
        """True if every element is nonzero (a 0-d bool tensor)."""
        return Tensor._wrap(self._xp.asarray(self._xp.all(self.data)), self._device)

    def __contains__(self, element):
        return bool((self == element).any())

    def argmax(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Index of the first maximum (NaN counts as the maximum); of the flattened tensor when
        ``dim`` is None. int64, not differentiable."""
        return self._arg_extremum(self._xp.argmax, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Index of the first minimum (NaN counts as the minimum); see :meth:`argmax`."""
        return self._arg_extremum(self._xp.argmin, dim, keepdim)

    # -- views ---------------------------------------------------------------------------------
    def reshape(self, *shape) -> "Tensor":
        """Same data in a new shape (one entry may be -1); a view when the layout allows."""
        shape = ops.infer_shape(_size_args(shape), self.numel(), self.shape)
        return ops.Reshape.apply(self, shape=shape)

    def view(self, *shape) -> "Tensor":
        """Like :meth:`reshape`. Unlike torch, copies instead of failing when a non-contiguous
        layout cannot be viewed in the new shape."""
        return self.reshape(*shape)

    def view_as(self, other: "Tensor") -> "Tensor":
        """Reshape to ``other``'s shape."""
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge dimensions start_dim..end_dim into one."""
        if self.ndim == 0:
            return self.reshape(1)
        s = ops.normalize_dim(start_dim, self.ndim, "start_dim")
        e = ops.normalize_dim(end_dim, self.ndim, "end_dim")
        if s > e:
            raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                               f"for shape {self.shape}")
        merged = 1
        for n in self.shape[s:e + 1]:
            merged *= n
        return self.reshape(self.shape[:s] + (merged,) + self.shape[e + 1:])

    def unsqueeze(self, dim: int) -> "Tensor":
        """Insert a dimension of length 1 at ``dim``."""
        d = ops.normalize_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None) -> "Tensor":
        """Remove dimensions of length 1 (only those in ``dim``, an int or tuple, if given)."""
        if dim is None:
            dims = set(range(self.ndim))
        else:
            dims = {ops.normalize_dim(d, self.ndim)
                    for d in ((dim,) if isinstance(dim, (int, np.integer)) else dim)}
        return self.reshape(tuple(n for i, n in enumerate(self.shape)
                                  if not (i in dims and n == 1)))

    def permute(self, *dims) -> "Tensor":
        """Reorder the dimensions."""
        dims = _size_args(dims)
        if len(dims) != self.ndim:
            raise RuntimeError(f"permute: {len(dims)} dims {dims} for a tensor of shape "
                               f"{self.shape}")
        norm = tuple(ops.normalize_dim(d, self.ndim) for d in dims)
        if len(set(norm)) != len(norm):
            raise RuntimeError(f"permute: dims {dims} repeat a dimension")
        return ops.Permute.apply(self, dims=norm)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        """Swap two dimensions."""
        order = list(range(self.ndim))
        a, b = ops.normalize_dim(dim0, self.ndim), ops.normalize_dim(dim1, self.ndim)
        order[a], order[b] = order[b], order[a]
        return ops.Permute.apply(self, dims=tuple(order))

    def t(self) -> "Tensor":
        """Transpose a tensor of at most 2 dimensions."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects at most 2 dimensions, got shape {self.shape}")
        return self.T

    def expand(self, *sizes) -> "Tensor":
        """A broadcast (read-only) view with the given sizes; -1 keeps a size."""
        sizes = _size_args(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"expand: {len(sizes)} sizes {sizes} for a tensor of shape "
                               f"{self.shape}")
        own = (None,) * (len(sizes) - self.ndim) + self.shape
        target = []
        for n, have in zip(sizes, own):
            if n == -1:
                if have is None:
                    raise RuntimeError(f"expand: -1 is not allowed in a new leading dimension "
                                       f"({sizes})")
                n = have
            if have is not None and have != 1 and have != n:
                raise RuntimeError(f"expand: shape {self.shape} cannot expand to {sizes}")
            target.append(int(n))
        return ops.Expand.apply(self, shape=tuple(target))

    def expand_as(self, other: "Tensor") -> "Tensor":
        """Expand to ``other``'s shape."""
        return self.expand(other.shape)

    def _index(self, index):
        """An index with Tensors unwrapped and index arrays on this tensor's device."""
        def raw(i):
            if isinstance(i, Tensor):
                i = i.data
            if self._xp is not np and (isinstance(i, list) or isinstance(i, np.ndarray)):
                i = self._xp.asarray(i)
            return i
        index = tuple(raw(i) for i in index) if isinstance(index, tuple) else raw(index)
        return ops.torch_index(index)

    def __getitem__(self, index) -> "Tensor":
        return ops.GetItem.apply(self, index=self._index(index))


def _infer_dtype(data):
    """PyTorch's dtype for ``data`` without one: Python floats float32, ints int64."""
    if hasattr(data, "dtype"):
        return data.dtype
    kind = np.asarray(data).dtype.kind
    return {"f": ops.DEFAULT_FLOAT, "c": np.dtype(np.complex64), "i": np.dtype(np.int64),
            "u": np.dtype(np.int64)}.get(kind)


# -- construction and joins ----------------------------------------------------------------
def tensor(data, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, numbers, arrays, Tensors).

    Python floats give float32 and ints int64 (as ``torch.tensor``); arrays keep their dtype.
    ``device`` defaults to where ``data`` is ('cuda' for a cupy array, else 'cpu').

    >>> import pyengine as pe
    >>> pe.tensor([1, 2]).dtype, pe.tensor([1.0, 2]).dtype
    (dtype('int64'), dtype('float32'))
    """
    if isinstance(data, Tensor):
        src_device, data = data.device, data.data
    else:
        src_device = device_of_array(data) if _is_array(data) else "cpu"
    dev = check_device(device) if device is not None else src_device
    dt = ops.as_dtype(dtype) if dtype is not None else _infer_dtype(data)
    if _is_array(data) and array_module(data) is not np:
        arr = move_array(data.astype(dt, copy=True), dev)
    else:
        arr = move_array(np.array(data, dtype=dt, copy=True), dev)
    t = Tensor._wrap(arr, dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _as_tensors(tensors, name):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}: expected a sequence of tensors, got a single tensor")
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError(f"{name}: expected a non-empty sequence of tensors")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along ``dim`` (differentiable; dtypes promote as in torch)."""
    tensors = _as_tensors(tensors, "cat")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"cat: tensor {i} is 0-d and cannot be concatenated")
    ref = tensors[0].shape
    d = ops.normalize_dim(dim, len(ref))
    for i, t in enumerate(tensors):
        if t.ndim != len(ref) or t.shape[:d] + t.shape[d + 1:] != ref[:d] + ref[d + 1:]:
            raise RuntimeError(f"cat: tensor {i} has shape {t.shape}, which does not match "
                               f"tensor 0's shape {ref} outside dim {dim}")
    return ops.Cat.apply(*tensors, dim=d, dtype=ops.result_type(*tensors))


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack tensors of equal shape along a new dimension ``dim``."""
    tensors = _as_tensors(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: tensors must have equal shapes, got {tensors[0].shape} "
                               f"at entry 0 and {t.shape} at entry {i}")
    d = ops.normalize_dim(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], dim=d)


__all__ = ["Tensor", "tensor", "cat", "stack", "no_grad", "MaxResult", "MinResult"]
