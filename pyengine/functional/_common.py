"""Argument checks and kernel lookup shared by the functional ops.

``functional`` is the only layer that validates user arguments: each check raises a ValueError,
TypeError or IndexError whose message names the argument and the shapes involved, so kernels
only ever see valid input.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backends
from ..backends.base import KERNEL_TO_OP, array_module
from ..tensor import Tensor

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_tensor(x, name: str) -> Tensor:
    """``x`` as a Tensor: Tensors pass through, numpy/cupy arrays are wrapped without a copy."""
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array__") or \
            hasattr(x, "__cuda_array_interface__"):
        return Tensor(x)
    raise TypeError(f"{name} must be a pe.Tensor or an array, got {type(x).__name__}")


def check_float(t: Tensor, name: str) -> None:
    """TypeError unless ``t`` is float32 or float64."""
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {t.dtype} "
                        f"(shape {t.shape})")


def check_same_dtype(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """TypeError unless both tensors have the same dtype."""
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} ({a.dtype}) and {name_b} ({b.dtype}) must have the same dtype")


def check_same_device(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """ValueError unless both tensors live on the same device."""
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device!r} but {name_b} is on {b.device!r}")


def check_ndim(t: Tensor, name: str, allowed: tuple, what: str = "") -> None:
    """ValueError unless ``t.ndim`` is in ``allowed``."""
    if t.ndim not in allowed:
        dims = " or ".join(f"{n}-d" for n in allowed)
        raise ValueError(f"{name} must be {dims}{' ' + what if what else ''}, "
                         f"got shape {t.shape}")


def check_int(v, name: str, minimum: int | None = None) -> int:
    """``v`` as an int (bools refused), at least ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral,)):
        raise TypeError(f"{name} must be an int, got {v!r}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def ntuple(v, n: int, name: str, minimum: int | None = None) -> tuple:
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints, each at least ``minimum``."""
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{name} must be an int or {n} ints, got {tuple(v)}")
        return tuple(check_int(e, name, minimum) for e in v)
    return (check_int(v, name, minimum),) * n


def pair(v, name: str, minimum: int | None = None) -> tuple:
    """An int or a pair of ints as a pair (kernel_size, stride, padding, dilation)."""
    return ntuple(v, 2, name, minimum)


def normalize_dim(dim, ndim: int, name: str = "dim") -> int:
    """``dim`` in [-ndim, ndim) as a non-negative index (0-d tensors take dim 0 or -1)."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}={dim} out of range for a tensor of {ndim} dimensions "
                         f"(expected in [{-n}, {n - 1}])")
    return int(dim) % n


def contiguous(a):
    """``a`` as a C-contiguous array (no copy when it already is; 0-d stays 0-d)."""
    if a.flags.c_contiguous:
        return a
    return array_module(a).ascontiguousarray(a)


def kernel(name: str, dtype, device: str = "cpu"):
    """The kernel method ``name`` of the backend that dispatch picks for (op, dtype, device)."""
    op = KERNEL_TO_OP.get(name, name)  # a backend runs an op only if it has all its kernels
    return getattr(backends.resolve(op, dtype, device), name)


def check_reduction(reduction: str) -> str:
    """ValueError unless reduction is 'none', 'mean' or 'sum'."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return reduction
