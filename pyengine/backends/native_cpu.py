"""The ``cpu`` backend: pyengine's own C++ kernels (``pyengine._cpu``, built from csrc/cpu).

Outputs are allocated here with :func:`~pyengine.backends.base.new_output` (so
``PYENGINE_POISON=1`` applies) and filled by the native functions, which release the GIL while
they run. Inputs arrive C-contiguous (the functional layer sees to it); the bindings refuse
anything else rather than copy. float32 only for now: dispatch sends float64 to the next
backend, since :meth:`Backend.supports` checks ``dtypes``.

Importing this module raises ImportError when the native module is missing, was built for
another Python, or is older than this file (a stale in-place build lacking a function); the
registry catches that and warns once.
"""
from __future__ import annotations

import importlib

import numpy as np

from .base import Backend, new_output

try:
    # import_module rather than `from .. import _cpu`: when the file is absent, the latter
    # blames a circular import, which would send the reader the wrong way.
    _cpu = importlib.import_module("pyengine._cpu")
except ImportError as exc:
    raise ImportError(f"{exc}; rebuild it with `pip install -e .` "
                      "(or `pip install --no-build-isolation --no-deps -e .`)") from exc

# What this file calls: a module lacking any of these is a stale build.
_NATIVE_FUNCTIONS = ("softmax_forward", "softmax_backward", "log_softmax_forward",
                     "log_softmax_backward", "build_info", "set_num_threads", "get_num_threads",
                     "conv_output_size", "pool_output_size", "conv_transpose_output_size",
                     "Conv2dParams", "Pool2dParams")
_missing = [f for f in _NATIVE_FUNCTIONS if not hasattr(_cpu, f)]
if _missing:
    raise ImportError(f"pyengine._cpu at {getattr(_cpu, '__file__', '?')} is stale (lacks "
                      f"{', '.join(_missing)}); rebuild it with `pip install -e .`")


def build_info() -> dict:
    """How ``pyengine._cpu`` was built: compiler, flags, OpenMP, pybind11, ISA paths, CPU."""
    return _cpu.build_info()


def get_num_threads() -> int:
    """Threads the native kernels use."""
    return _cpu.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the threads the native kernels use (n >= 1; no effect without OpenMP)."""
    _cpu.set_num_threads(int(n))


def to_native(params):
    """The C++ twin (``_cpu.Conv2dParams`` / ``_cpu.Pool2dParams``) of a params dataclass."""
    native_type = getattr(_cpu, type(params).__name__)
    return native_type.from_python(params)


class NativeCpuBackend(Backend):
    """Kernels of ``pyengine._cpu`` on numpy arrays, float32."""

    name = "cpu"
    dtypes = (np.dtype(np.float32),)
    array_kind = "host"

    # -- softmax family ----------------------------------------------------------------------
    def softmax_forward(self, x, dim):
        """exp(x - max) / sum(exp(x - max)) along ``dim``."""
        y = new_output(x.shape, x.dtype)
        _cpu.softmax_forward(x, y, dim)
        return y

    def softmax_backward(self, y, dy, dim):
        """dx = y * (dy - sum(dy * y, dim))."""
        dx = new_output(y.shape, y.dtype)
        _cpu.softmax_backward(y, dy, dx, dim)
        return dx

    def log_softmax_forward(self, x, dim):
        """x - max - log(sum(exp(x - max))) along ``dim``."""
        y = new_output(x.shape, x.dtype)
        _cpu.log_softmax_forward(x, y, dim)
        return y

    def log_softmax_backward(self, y, dy, dim):
        """dx = dy - exp(y) * sum(dy, dim)."""
        dx = new_output(y.shape, y.dtype)
        _cpu.log_softmax_backward(y, dy, dx, dim)
        return dx


__all__ = ["NativeCpuBackend", "build_info", "get_num_threads", "set_num_threads", "to_native"]
