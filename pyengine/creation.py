"""Tensor creation and interop, shaped like PyTorch's factory functions.

Every factory takes ``dtype=``, ``device=`` and ``requires_grad=``, and sizes either as
``f(2, 3)`` or ``f((2, 3))``. The default floating dtype is float32, as in torch. Random tensors
draw from ``pyengine.random.default_generator()`` (so ``pe.manual_seed`` makes them
reproducible) on the host and then move to the device, so a seed gives the same numbers on
every device.

Interop without copies: :func:`from_numpy`, :func:`as_tensor`, and DLPack both ways
(:func:`from_dlpack` here, ``Tensor.__dlpack__`` for the other direction).
"""
from __future__ import annotations

import math

import numpy as np

from . import random as _random
from ._tensor_ops import DEFAULT_FLOAT, as_dtype, scalar_dtype
from .device import array_module_for, check_device, device_of_array, move_array
from .tensor import Tensor, tensor

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
           "empty_like", "rand", "randn", "randint", "rand_like", "randn_like", "arange", "eye",
           "from_numpy", "as_tensor", "from_dlpack"]


def _size(size, name) -> tuple:
    """``(2, 3)`` from ``(2, 3)`` or ``((2, 3),)``; non-negative ints only."""
    if not size:
        raise TypeError(f"{name}() missing the size (pass () for a 0-d tensor)")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{name}(): sizes must be ints, got {size!r}")
        if n < 0:
            raise RuntimeError(f"{name}(): negative dimension {n} in size {tuple(size)}")
    return tuple(int(n) for n in size)


def _finish(array, device, requires_grad) -> Tensor:
    t = Tensor._wrap(array, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype, name) -> np.dtype:
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    if dt.kind not in "fc":
        raise RuntimeError(f"{name}(): needs a floating-point dtype, got {dt}")
    return dt


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype``)."""
    dev = check_device(device)
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _finish(array_module_for(dev).zeros(_size(size, "zeros"), dtype=dt), dev,
                   requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype``)."""
    dev = check_device(device)
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _finish(array_module_for(dev).ones(_size(size, "ones"), dtype=dt), dev, requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """An uninitialised tensor (float32 unless ``dtype``)."""
    dev = check_device(device)
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _finish(array_module_for(dev).empty(_size(size, "empty"), dtype=dt), dev,
                   requires_grad)


def _fill_dtype(value) -> np.dtype:
    """torch.full's dtype for a fill value: the dtype torch gives that scalar."""
    if isinstance(value, Tensor):
        value = value.item()
    if not isinstance(value, (bool, int, float, complex, np.generic)):
        raise TypeError(f"full(): fill_value must be a number, got {type(value).__name__}")
    return scalar_dtype(value)


def full(size, fill_value, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``; the dtype follows the value
    (bool, int64, float32) unless given."""
    dev = check_device(device)
    size = _size((size,) if isinstance(size, (tuple, list)) else (size,), "full")
    dt = _fill_dtype(fill_value) if dtype is None else as_dtype(dtype)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _finish(array_module_for(dev).full(size, fill_value, dtype=dt), dev, requires_grad)


def _like(t):
    if isinstance(t, Tensor):
        return t.shape, t.dtype, t.device
    if hasattr(t, "shape") and hasattr(t, "dtype"):
        return tuple(t.shape), np.dtype(t.dtype), device_of_array(t)
    raise TypeError(f"expected a Tensor or an array, got {type(t).__name__}")


def zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """Zeros shaped like ``input``, with its dtype and device unless given."""
    shape, dt, dev = _like(input)
    return zeros(shape, dtype=dtype or dt, device=device or dev, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """Ones shaped like ``input``, with its dtype and device unless given."""
    shape, dt, dev = _like(input)
    return ones(shape, dtype=dtype or dt, device=device or dev, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """An uninitialised tensor shaped like ``input``."""
    shape, dt, dev = _like(input)
    return empty(shape, dtype=dtype or dt, device=device or dev, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None,  # noqa: A002
              requires_grad=False) -> Tensor:
    """``fill_value`` everywhere, shaped like ``input``, with its dtype and device unless given."""
    shape, dt, dev = _like(input)
    return full(shape, fill_value, dtype=dtype or dt, device=device or dev,
                requires_grad=requires_grad)


# -- random ------------------------------------------------------------------------------------
def _host_random(draw, size, dt, generator):
    """Draw on the host in float32/float64 (what numpy's Generator offers), then cast."""
    gen = generator if generator is not None else _random.default_generator()
    work = dt if dt in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    return draw(gen, size, work).astype(dt, copy=False)


def rand(*size, generator=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Uniform samples from [0, 1)."""
    dev = check_device(device)
    dt = _float_dtype(dtype, "rand")
    a = _host_random(lambda g, s, w: g.random(s, dtype=w), _size(size, "rand"), dt, generator)
    return _finish(move_array(a, dev), dev, requires_grad)


def randn(*size, generator=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Standard normal samples."""
    dev = check_device(device)
    dt = _float_dtype(dtype, "randn")
    a = _host_random(lambda g, s, w: g.standard_normal(s, dtype=w), _size(size, "randn"), dt,
                     generator)
    return _finish(move_array(a, dev), dev, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device="cpu",
            requires_grad=False) -> Tensor:
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``;
    int64 unless ``dtype``."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() needs a size tuple: randint(high, size) or "
                            "randint(low, high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint(): size must be a tuple, got {size!r}")
    size = _size((size,), "randint")
    if high <= low:
        raise RuntimeError(f"randint(): empty range [{low}, {high})")
    dev = check_device(device)
    dt = np.dtype(np.int64) if dtype is None else as_dtype(dtype)
    gen = generator if generator is not None else _random.default_generator()
    a = gen.integers(int(low), int(high), size=size, dtype=np.int64).astype(dt, copy=False)
    return _finish(move_array(a, dev), dev, requires_grad)


def rand_like(input, *, generator=None, dtype=None, device=None,  # noqa: A002
              requires_grad=False) -> Tensor:
    """Uniform [0, 1) samples shaped like ``input``."""
    shape, dt, dev = _like(input)
    return rand(shape, generator=generator, dtype=dtype or dt, device=device or dev,
                requires_grad=requires_grad)


def randn_like(input, *, generator=None, dtype=None, device=None,  # noqa: A002
               requires_grad=False) -> Tensor:
    """Standard normal samples shaped like ``input``."""
    shape, dt, dev = _like(input)
    return randn(shape, generator=generator, dtype=dtype or dt, device=device or dev,
                 requires_grad=requires_grad)


# -- ranges ------------------------------------------------------------------------------------
def _number(x, name):
    if isinstance(x, Tensor):
        x = x.item()
    if isinstance(x, np.generic):
        x = x.item()
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        raise TypeError(f"arange(): {name} must be a number, got {type(x).__name__}")
    return x


def arange(start, end=None, step=1, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Values from ``start`` (default 0) up to, not including, ``end`` in steps of ``step``.

    As torch: int64 when every argument is an integer, else float32; the length is
    ceil((end - start) / step) and value i is start + i * step computed in float64.
    """
    if end is None:
        start, end = 0, start
    start, end, step = _number(start, "start"), _number(end, "end"), _number(step, "step")
    if step == 0:
        raise RuntimeError("arange(): step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange(): the range [{start}, {end}) is inconsistent with "
                           f"step {step}")
    integral = all(isinstance(v, int) for v in (start, end, step))
    dt = (np.dtype(np.int64) if integral else DEFAULT_FLOAT) if dtype is None else as_dtype(dtype)
    n = math.ceil((end - start) / step) if not integral else -((start - end) // step)
    dev = check_device(device)
    if integral and dt.kind in "iu":
        a = start + step * np.arange(n, dtype=np.int64)  # exact for every int64 range
    else:
        a = start + step * np.arange(n, dtype=np.float64)
    return _finish(move_array(a.astype(dt, copy=False), dev), dev, requires_grad)


def eye(n, m=None, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """An n x m (default n x n) matrix with ones on the diagonal."""
    m = n if m is None else m
    _size((n, m), "eye")
    dev = check_device(device)
    dt = DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _finish(array_module_for(dev).eye(n, m, dtype=dt), dev, requires_grad)


# -- interop -----------------------------------------------------------------------------------
def from_numpy(array) -> Tensor:
    """A CPU tensor sharing ``array``'s memory (writes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy() expects a numpy.ndarray, got {type(array).__name__}")
    as_dtype(array.dtype)  # rejects object and string arrays
    return Tensor._wrap(array, "cpu")


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory when dtype and device already match (else a copy).

    A Tensor comes back as it is when nothing changes, as in torch.
    """
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (device or dtype) else data
    if hasattr(data, "shape") and hasattr(data, "dtype") and not isinstance(data, np.generic):
        dev = check_device(device) if device is not None else device_of_array(data)
        arr = data if dtype is None else data.astype(as_dtype(dtype), copy=False)
        return Tensor._wrap(move_array(arr, dev), dev)
    return tensor(data, dtype=dtype, device=device)


_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST, _DLPACK_CUDA_MANAGED = 1, 2, 3, 13


def from_dlpack(obj) -> Tensor:
    """A tensor sharing the memory of any DLPack producer (a torch tensor, a numpy or cupy
    array, a pe.Tensor): host memory becomes a 'cpu' tensor, CUDA memory a 'cuda' tensor.

    Objects, not bare capsules: pass the tensor itself (``pe.from_dlpack(t)``), as the DLPack
    protocol asks, so its device can be read.
    """
    if isinstance(obj, Tensor):
        return obj.detach()
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack() needs an object with __dlpack__ and __dlpack_device__ "
                        f"(a tensor or array), got {type(obj).__name__}")
    kind, _ = obj.__dlpack_device__()
    if kind in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
        return Tensor._wrap(np.from_dlpack(obj), "cpu")
    if kind in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
        cupy = array_module_for("cuda")
        return Tensor._wrap(cupy.from_dlpack(obj), "cuda")
    raise RuntimeError(f"from_dlpack(): DLPack device type {kind} is neither host memory nor "
                       "CUDA memory")

