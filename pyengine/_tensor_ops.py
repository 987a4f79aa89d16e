"""The differentiable tensor ops behind pe.Tensor's methods, and the rules they share.

- dtype rules: :func:`as_dtype` (what a ``dtype=`` argument may be) and :func:`result_type`
  (PyTorch's type promotion, which differs from numpy's: int64 + float32 is float32, and a
  Python scalar or a 0-d tensor does not widen the dtype of a tensor with dimensions).
- shape rules: :func:`normalize_dim`, :func:`normalize_dims`, :func:`infer_shape`,
  :func:`unbroadcast`.
- the Function subclasses (arithmetic with broadcasting, reductions, views, indexing, cat,
  casts). Each forward works on raw arrays through the array module of its input (numpy or
  cupy); each backward returns one gradient per positional input.
"""
from __future__ import annotations

import numpy as np

from .autograd import Function
from .backends.base import array_module

# -- dtypes ------------------------------------------------------------------------------------
DEFAULT_FLOAT = np.dtype(np.float32)
_DEFAULT_COMPLEX = np.dtype(np.complex64)
_KINDS = "biufc"


def as_dtype(dtype) -> np.dtype:
    """``dtype`` (``pe.float32``, ``np.float64``, ``'int64'``, ``float``...) as a numpy dtype.

    Only boolean, integer, floating and complex dtypes hold tensors.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a dtype such as pe.float32, got {dtype!r}") from None
    if dt.kind not in _KINDS:
        raise TypeError(f"tensors hold numbers; dtype {dt} is not supported")
    return dt


def _category(dt) -> int:
    return "biufc".index(dt.kind) - (dt.kind == "u")  # bool 0, int 1, float 2, complex 3


def promote_types(a, b) -> np.dtype:
    """The smallest dtype both ``a`` and ``b`` cast to, by PyTorch's rules (int + float ->
    the float, not float64 as numpy would have it)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca == cb or {a.kind, b.kind} == {"f", "c"}:
        return np.promote_types(a, b)
    return a if ca > cb else b


def _combine(higher, lower):
    """torch's combine_categories: a lower-priority operand only counts when its category
    (bool < int < float < complex) is above that of the higher-priority one."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "c":
        return higher
    if lower.kind == "c":
        return promote_types(higher, _DEFAULT_COMPLEX) if higher.kind == "f" else lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def scalar_dtype(value) -> np.dtype:
    """The dtype PyTorch gives a Python (or numpy) scalar taking part in an op."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(value, (float, np.floating)):
        return DEFAULT_FLOAT
    return _DEFAULT_COMPLEX


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (arrays, Tensors or Python scalars).

    PyTorch's rule: tensors with dimensions decide, then 0-d tensors, then scalars, and a lower
    tier only matters when it is of a higher category (``float32 tensor * 2.5`` stays float32,
    ``int64 tensor * 2.5`` is float32, ``float32 tensor + float64 0-d tensor`` is float32).
    """
    dim = zero = wrapped = None
    for op in operands:
        if hasattr(op, "dtype") and hasattr(op, "ndim") and not isinstance(op, np.generic):
            if op.ndim:
                dim = op.dtype if dim is None else promote_types(dim, op.dtype)
            else:
                zero = op.dtype if zero is None else promote_types(zero, op.dtype)
        else:
            dt = scalar_dtype(op)
            wrapped = dt if wrapped is None else promote_types(wrapped, dt)
    return _combine(dim, _combine(zero, wrapped))


def can_cast(src, dst) -> bool:
    """Whether an in-place op may store a ``src`` result in a ``dst`` tensor (torch's rule:
    never into a lower category, e.g. no float result into an int tensor)."""
    return _category(np.dtype(src)) <= _category(np.dtype(dst))


def cast(a, dtype):
    """``a`` in ``dtype``; Python scalars stay Python scalars (numpy casts them to the array's
    dtype, which is PyTorch's behaviour too)."""
    if hasattr(a, "astype"):
        return a.astype(dtype, copy=False)
    return a


# -- shapes ------------------------------------------------------------------------------------
def normalize_dim(dim, ndim: int, name: str = "dim") -> int:
    """``dim`` in [0, ndim) (negative dims count from the end); a 0-d tensor accepts 0 and -1."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(f"{name}={dim} is out of range for a tensor of {ndim} dimensions "
                         f"(expected in [{lo}, {hi}])")
    return int(dim) % max(ndim, 1)


def normalize_dims(dim, ndim: int):
    """A sorted tuple of dims, or None for all (``dim`` None or an empty tuple, as in torch)."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return None
    norm = [normalize_dim(d, ndim) for d in dims]
    if len(set(norm)) != len(norm):
        raise RuntimeError(f"dims {tuple(dims)} name a dimension twice")
    if ndim == 0:
        return None
    return tuple(sorted(norm))


def infer_shape(shape, numel: int, source_shape) -> tuple:
    """``shape`` with its one -1 filled in, checked to hold ``numel`` elements."""
    shape = tuple(shape)
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"shape entries must be ints, got {shape}")
        if n < -1:
            raise RuntimeError(f"invalid shape dimension {n} in {shape}")
    free = [i for i, n in enumerate(shape) if n == -1]
    if len(free) > 1:
        raise RuntimeError(f"only one dimension can be -1, got {shape}")
    known = 1
    for n in shape:
        if n != -1:
            known *= int(n)
    if free:
        if known == 0 or numel % known:
            raise RuntimeError(f"cannot view a tensor of shape {tuple(source_shape)} "
                               f"({numel} elements) as {shape}")
        shape = shape[:free[0]] + (numel // known,) + shape[free[0] + 1:]
    elif known != numel:
        raise RuntimeError(f"cannot view a tensor of shape {tuple(source_shape)} "
                           f"({numel} elements) as {shape}")
    return tuple(int(n) for n in shape)


def broadcast_shape(a, b) -> tuple:
    """The shape two broadcast operands produce; a RuntimeError naming both shapes if none."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"shapes {tuple(a)} and {tuple(b)} do not broadcast "
                               f"(size {x} vs {y} at dimension {-i})")
        out.append(max(x, y) if x != 1 and y != 1 else x * y)
    return tuple(reversed(out))


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape`` (undo broadcasting)."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _shape(a):
    return getattr(a, "shape", ())


# -- elementwise arithmetic --------------------------------------------------------------------
# Forward casts both operands to the promoted dtype; backward's gradients come out in that dtype
# and the engine casts each back to its input's dtype.
class Add(Function):
    """a + b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.shapes = (_shape(a), _shape(b))
        return cast(a, dtype) + cast(b, dtype)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(g, sb) if ctx.needs_input_grad[1] else None)


class Sub(Function):
    """a - b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b, dtype):
        ctx.shapes = (_shape(a), _shape(b))
        return cast(a, dtype) - cast(b, dtype)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g, sb) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """a * b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b, dtype):
        a, b = cast(a, dtype), cast(b, dtype)
        # each gradient needs only the other operand
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        ctx.shapes = (_shape(a), _shape(b))
        return a * b

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved
        sa, sb = ctx.shapes
        return (unbroadcast(g * b, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(g * a, sb) if ctx.needs_input_grad[1] else None)


class Div(Function):
    """a / b (true division) with broadcasting."""

    @staticmethod
    def forward(ctx, a, b, dtype):
        a, b = cast(a, dtype), cast(b, dtype)
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        ctx.shapes = (_shape(a), _shape(b))
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        sa, sb = ctx.shapes
        da = unbroadcast(g / b, sa) if ctx.needs_input_grad[0] else None
        # torch's formula: -g * ((a / b) / b), rounding like PyTorch in float32
        db = unbroadcast(-g * ((a / b) / b), sb) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    """-a."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** b for a tensor and a scalar exponent, a scalar base, or two tensors."""

    @staticmethod
    def forward(ctx, a, b, dtype):
        a, b = cast(a, dtype), cast(b, dtype)
        if np.dtype(dtype).kind in "iu" and bool((b < 0).any() if hasattr(b, "any") else b < 0):
            raise RuntimeError("integers to negative integer powers are not allowed")
        y = a ** b
        ctx.save_for_backward(a, b, y if ctx.needs_input_grad[1] else None)
        ctx.shapes = (_shape(a), _shape(b))
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved
        sa, sb = ctx.shapes
        xp = array_module(g)
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                # torch: the derivative is 0 where the exponent is 0 (even at a = 0)
                da = xp.where(b == 0, 0, g * b * a ** (b - 1)).astype(g.dtype, copy=False)
                da = unbroadcast(da, sa)
            if ctx.needs_input_grad[1]:
                # torch: 0 where a == 0 and b >= 0 (the limit), not 0 * log(0) = nan
                d = xp.where((a == 0) & (b >= 0), 0, y * xp.log(a)).astype(g.dtype, copy=False)
                db = unbroadcast(g * d, sb)
        return da, db


class Exp(Function):
    """e ** a; backward reuses the output."""

    @staticmethod
    def forward(ctx, a):
        y = array_module(a).exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Log(Function):
    """Natural logarithm."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


class Sqrt(Function):
    """Square root; backward reuses the output."""

    @staticmethod
    def forward(ctx, a):
        y = array_module(a).sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved[0])


class Abs(Function):
    """|a|; the gradient at 0 is 0, as in torch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * array_module(g).sign(ctx.saved[0])  # sign(0) = 0, as torch


class MatMul(Function):
    """torch.matmul: 1-d operands are vectors, leading dimensions broadcast as batches."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError(f"matmul: both operands need at least 1 dimension, got shapes "
                               f"{a.shape} and {b.shape}")
        if a.dtype != b.dtype:
            raise RuntimeError(f"matmul: operands of shapes {a.shape} and {b.shape} have "
                               f"dtypes {a.dtype} and {b.dtype}; cast one of them")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                               f"({ka} != {kb})")
        try:
            broadcast_shape(a.shape[:-2], b.shape[:-2])
        except RuntimeError:
            raise RuntimeError(f"matmul: the batch dimensions of shapes {a.shape} and "
                               f"{b.shape} do not broadcast") from None
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None,
                              b if ctx.needs_input_grad[0] else None)
        ctx.ndims = (a.ndim, b.ndim)
        ctx.shapes = (a.shape, b.shape)
        return array_module(a).matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        (na, nb), (sa, sb) = ctx.ndims, ctx.shapes
        xp = array_module(g)
        # 1-d operands are a row (left) or a column (right) vector whose dim matmul dropped
        G = g
        if na == 1:
            G = xp.expand_dims(G, -2 if nb > 1 else 0)
        if nb == 1:
            G = xp.expand_dims(G, -1)
        da = db = None
        if ctx.needs_input_grad[0]:
            B = b if nb > 1 else b[:, None]
            A_shape = sa if na > 1 else (1,) + sa
            da = unbroadcast(xp.matmul(G, xp.swapaxes(B, -1, -2)), A_shape).reshape(sa)
        if ctx.needs_input_grad[1]:
            A = a if na > 1 else a[None, :]
            B_shape = sb if nb > 1 else sb + (1,)
            db = unbroadcast(xp.matmul(xp.swapaxes(A, -1, -2), G), B_shape).reshape(sb)
        return da, db


# -- reductions --------------------------------------------------------------------------------
class Sum(Function):
    """Sum over dims (None: all), optionally keeping them as size 1."""

    @staticmethod
    def forward(ctx, a, dims, keepdim, dtype):
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return a.sum(axis=dims, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.dims) if ctx.dims is not None else \
                g.reshape((1,) * len(ctx.shape))
        return xp.broadcast_to(g, ctx.shape).copy()


class ExtremumAll(Function):
    """max() or min() of every element."""

    @staticmethod
    def forward(ctx, a, largest):
        if a.size == 0:
            name = "max" if largest else "min"
            raise RuntimeError(f"{name}() of an empty tensor (shape {a.shape}); pass dim= to "
                               "reduce over a non-empty dimension")
        xp = array_module(a)
        m = xp.asarray(a.max() if largest else a.min())  # numpy propagates NaN here
        ctx.save_for_backward(a, m)
        return m

    @staticmethod
    def backward(ctx, g):
        # torch: every element equal to the result shares the gradient evenly; when the result
        # is NaN, the NaNs share it.
        a, m = ctx.saved
        xp = array_module(g)
        mask = xp.isnan(a) if a.dtype.kind in "fc" and bool(xp.isnan(m)) else (a == m)
        count = int(mask.sum())
        return xp.where(mask, g / g.dtype.type(count), g.dtype.type(0)).astype(g.dtype)


class ExtremumDim(Function):
    """max(dim) or min(dim): values and int64 indices; the first extremum wins ties and a NaN
    counts as the extremum (torch's rules)."""

    differentiable_outputs = (0,)

    @staticmethod
    def forward(ctx, a, dim, keepdim, largest):
        xp = array_module(a)
        if a.shape[dim] == 0:
            raise IndexError(f"{'max' if largest else 'min'}(): dimension {dim} of shape "
                             f"{a.shape} is empty")
        idx = xp.expand_dims((xp.argmax if largest else xp.argmin)(a, axis=dim), dim)
        values = xp.take_along_axis(a, idx, axis=dim)
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        ctx.idx = idx  # integer bookkeeping, not an input: kept like a shape
        if not keepdim:
            values, idx = values.squeeze(dim), idx.squeeze(dim)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, g, _g_idx):
        xp = array_module(g)
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.dim)
        # scatter g to the chosen positions: compare each position along dim with the index
        # (put_along_axis would do, but not every cupy version has it)
        along = [1] * len(ctx.shape)
        along[ctx.dim] = ctx.shape[ctx.dim]
        hit = xp.arange(ctx.shape[ctx.dim]).reshape(along) == ctx.idx
        return xp.where(hit, g, g.dtype.type(0))


# -- views, indexing, joins ----------------------------------------------------------------
class Reshape(Function):
    """A new shape for the same elements (a view when numpy can make one)."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    """Reorder dimensions (a view)."""

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return array_module(a).transpose(a, dims)

    @staticmethod
    def backward(ctx, g):
        return array_module(g).transpose(g, tuple(np.argsort(ctx.dims)))


class Expand(Function):
    """Broadcast to a larger shape (a read-only view)."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


def _is_advanced(p) -> bool:
    return isinstance(p, (list, np.ndarray)) or hasattr(p, "__cuda_array_interface__")


def is_advanced_index(index) -> bool:
    """True if ``index`` holds an array or list (gather semantics: copies, may repeat)."""
    if isinstance(index, SplitIndex):
        return True
    return any(_is_advanced(p) for p in (index if isinstance(index, tuple) else (index,)))


class SplitIndex(tuple):
    """(basic part, advanced part) of an index that numpy and torch read differently."""


def _is_int(p) -> bool:
    return isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))


def torch_index(index):
    """``index`` as numpy must apply it to get PyTorch's result.

    The two differ when integers meet index arrays, as in ``x[1, :, [3, 0]]``: numpy counts the
    integer as an index array (and, the arrays not being adjacent, moves their dimension to the
    front); torch first selects with the integers, then indexes the rest. The returned
    :class:`SplitIndex` does exactly that in two steps; other indexes come back unchanged.
    """
    parts = index if isinstance(index, tuple) else (index,)
    if not any(_is_advanced(p) for p in parts) or not any(_is_int(p) for p in parts):
        return index
    basic = tuple(slice(None) if _is_advanced(p) else p for p in parts)
    rest = tuple(p if _is_advanced(p) or p is Ellipsis else slice(None)
                 for p in parts if not _is_int(p))
    return SplitIndex((basic, rest))


def _target(a, index):
    """(array to index, index into it): for a SplitIndex, the basic step's view of ``a``."""
    if isinstance(index, SplitIndex):
        return a[index[0]], index[1]
    return a, index


def gather(a, index):
    """``a[index]`` with PyTorch's semantics (see :func:`torch_index`)."""
    view, idx = _target(a, index)
    return view[idx]


def assign(a, index, v) -> None:
    """``a[index] = v`` in place, with PyTorch's semantics (see :func:`torch_index`)."""
    view, idx = _target(a, index)
    view[idx] = v


class GetItem(Function):
    """a[index] with torch's indexing rules; backward scatters, adding at repeated indices."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        try:
            return gather(a, index)
        except IndexError as exc:
            raise IndexError(f"index {index!r} is out of range for a tensor of shape "
                             f"{a.shape}: {exc}") from None

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        view, idx = _target(out, ctx.index)  # a view: writes land in out
        if not is_advanced_index(idx):
            view[idx] = g  # basic indexing picks each element at most once
        elif hasattr(xp.add, "at"):
            xp.add.at(view, idx, g)  # repeated indices accumulate
        else:  # cupy before 13
            import cupyx
            cupyx.scatter_add(view, idx, g)
        return out


class SetItem(Function):
    """``a`` with ``a[index] = v`` applied, out of place (Tensor.__setitem__ stores it back)."""

    @staticmethod
    def forward(ctx, a, v, index):
        ctx.index, ctx.v_shape = index, _shape(v)
        out = a.copy()
        assign(out, index, v)
        return out

    @staticmethod
    def backward(ctx, g):
        da = dv = None
        if ctx.needs_input_grad[0]:
            da = g.copy()
            assign(da, ctx.index, 0)  # overwritten elements do not reach a
        if ctx.needs_input_grad[1]:
            dv = unbroadcast(gather(g, ctx.index), ctx.v_shape)
        return da, dv


class Cat(Function):
    """Concatenate along dim, promoting dtypes."""

    @staticmethod
    def forward(ctx, *arrays, dim, dtype):
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return array_module(arrays[0]).concatenate([cast(a, dtype) for a in arrays], axis=dim)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        bounds = np.cumsum(ctx.sizes)[:-1].tolist()
        return tuple(xp.split(g, bounds, axis=ctx.dim))


class Clone(Function):
    """A contiguous copy."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    """astype; the gradient is cast back."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class ToDevice(Function):
    """Move data between devices; the gradient moves back."""

    @staticmethod
    def forward(ctx, a, device, source):
        from .device import move_array
        ctx.source = source
        return move_array(a, device, copy=True)

    @staticmethod
    def backward(ctx, g):
        from .device import move_array
        return move_array(g, ctx.source)
