"""Backends: the registry, the choice of backend, and dispatch with fall-through.

Backends sit in a plain dict, filled once here. ``auto`` (the default) runs, for host tensors,
``cpu`` (the native module), then ``numba``, then ``numpy`` -- the first that supports the
(op, dtype) pair. A backend chosen by name runs what it supports and falls through to the auto
order for the rest; ``numpy`` supports everything, so dispatch always finds a kernel. Never a
silent downcast: a float64 op runs on a backend that computes in float64.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import warnings

import numpy as np

from .base import OPS, Backend, new_output, poison_enabled  # noqa: F401  (re-exported)
from .numpy_ref import NumpyBackend

AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu", "numba", "numpy"),
    "cuda_emu": ("cuda_emu", "numpy"),
    "cuda": ("cuda",),
}

_registry: dict[str, Backend] = {}
_unavailable: dict[str, str] = {}
_current = contextvars.ContextVar("pyengine_backend", default="auto")


def _register_all() -> None:
    _registry["numpy"] = NumpyBackend()
    if os.environ.get("PYENGINE_DISABLE_NATIVE", "0") not in ("", "0"):
        _unavailable["cpu"] = "disabled by PYENGINE_DISABLE_NATIVE=1"
    else:
        try:
            from .native_cpu import NativeCpuBackend
            _registry["cpu"] = NativeCpuBackend()
        except ImportError as exc:  # absent or broken build: degrade, say why once
            _unavailable["cpu"] = f"pyengine._cpu could not be imported ({exc})"
    if os.environ.get("PYENGINE_DISABLE_NUMBA", "0") not in ("", "0"):
        _unavailable["numba"] = "disabled by PYENGINE_DISABLE_NUMBA=1"
    else:
        try:
            from .numba_cpu import NumbaBackend
            _registry["numba"] = NumbaBackend()
        except Exception as exc:  # absent (ImportError) or broken numba install: degrade
            _unavailable["numba"] = f"numba could not be imported ({type(exc).__name__}: {exc})"
    if "cpu" in _unavailable:
        fallback = ("auto runs the numba backend instead (slower)" if "numba" in _registry else
                    f"numba is unavailable too ({_unavailable['numba']}), so auto runs the "
                    "numpy reference (much slower)")
        warnings.warn(f"pyengine: native CPU backend unavailable: {_unavailable['cpu']}; "
                      f"{fallback}.", RuntimeWarning, stacklevel=3)
    try:
        from .cuda_emu import CudaEmuBackend
        _registry["cuda_emu"] = CudaEmuBackend()
    except ImportError as exc:  # absent or stale build: say why, run everything else
        _unavailable["cuda_emu"] = f"pyengine._cuda_emu could not be imported ({exc})"
    from .cuda import probe as probe_cuda
    cuda_backend, reason = probe_cuda()  # never raises: a reason when CUDA cannot run here
    if cuda_backend is not None:
        _registry["cuda"] = cuda_backend
    else:
        _unavailable["cuda"] = reason


def available() -> list[str]:
    """Names of the backends that can run here, in auto order, plus 'auto'."""
    order = [n for n in ("cpu", "numba", "numpy", "cuda_emu", "cuda") if n in _registry]
    return order + ["auto"]


def unavailable() -> dict[str, str]:
    """Backends that cannot run here, with the reason for each."""
    return dict(_unavailable)


def get(name: str) -> Backend:
    """The backend object called ``name`` (ValueError if unknown or unavailable)."""
    if name in _registry:
        return _registry[name]
    if name in _unavailable:
        raise ValueError(f"backend {name!r} is unavailable: {_unavailable[name]}")
    raise ValueError(f"unknown backend {name!r}; available: {available()}")


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str, got {type(name).__name__}")
    if name != "auto":
        get(name)
    return name


def set_backend(name: str) -> None:
    """Choose the backend for subsequent ops ('auto', 'numpy', 'cpu', ...)."""
    _current.set(_check_name(name))


def get_backend() -> str:
    """The name of the chosen backend ('auto' by default)."""
    return _current.get()


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run the ops inside the block on backend ``name``."""
    token = _current.set(_check_name(name))
    try:
        yield get(name) if name != "auto" else None
    finally:
        _current.reset(token)


def resolve(op: str, dtype, device: str = "cpu") -> Backend:
    """The backend that runs ``op`` (an OPS key or a kernel name) for ``dtype`` on ``device``."""
    order = AUTO_ORDER.get(device, ("numpy",))
    chosen = _current.get()
    if chosen != "auto":
        # A backend chosen by name runs first wherever its arrays live with this device's:
        # host backends (numpy, numba, cpu, cuda_emu) serve host devices, cuda serves cuda.
        host_device = device != "cuda"
        backend = _registry.get(chosen)
        if backend is not None and (backend.array_kind == "host") == host_device:
            order = (chosen,) + tuple(n for n in order if n != chosen)
    for name in order:
        backend = _registry.get(name)
        if backend is not None and backend.supports(op, dtype):
            return backend
    raise RuntimeError(f"no backend runs {op} for dtype {np.dtype(dtype)} on device {device!r}")


def implementations(op: str, dtype=np.float32) -> list[tuple[str, str]]:
    """Every (backend, algorithm) pair that implements ``op`` itself for ``dtype``.

    Tests and benchmarks enumerate this, so a new backend or algorithm needs no change there.
    """
    out = []
    for name, backend in _registry.items():
        if backend.supports(op, dtype):
            for algo in backend.algorithms(op) or ("auto",):
                out.append((name, algo))
    return out


def coverage() -> dict[str, dict[str, list[str]]]:
    """For each available backend: op -> dtypes it implements itself (empty: falls through)."""
    table = {}
    for name, backend in _registry.items():
        table[name] = {op: [str(dt) for dt in backend.dtypes if backend.supports(op, dt)]
                       for op in OPS}
    return table


_register_all()
