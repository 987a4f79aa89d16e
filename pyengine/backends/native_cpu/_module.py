"""The import of ``pyengine._cpu``: a clear ImportError when it is missing, was built for another
Python, or is older than these files (a stale in-place build lacking a function); the registry
catches that and warns once. Also the module-level helpers (build info, threads, params).
"""
from __future__ import annotations

import importlib

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
