"""Thread count of pyengine's kernels: ``pe.set_num_threads`` / ``PYENGINE_NUM_THREADS``.

One number for every backend that runs threads (the native module's OpenMP pool, numba's
threading layer), so that benchmarks give every implementation the same count.
"""
from __future__ import annotations

import os

_threads: int | None = None


def _default() -> int:
    env = os.environ.get("PYENGINE_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"PYENGINE_NUM_THREADS must be a positive int, got {env!r}") from None
        if n >= 1:
            return n
        raise ValueError(f"PYENGINE_NUM_THREADS must be a positive int, got {env!r}")
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def get_num_threads() -> int:
    """Threads the kernels use (default: PYENGINE_NUM_THREADS, else the CPUs this process may use)."""
    return _threads if _threads is not None else _default()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in every threaded backend."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _threads = n
    apply_to_backends()


def apply_to_backends() -> None:
    """Push the current count into the backends that are loaded."""
    n = get_num_threads()
    try:
        from . import _cpu
        _cpu.set_num_threads(n)
    except (ImportError, AttributeError):
        pass
    import sys
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        except (ValueError, AttributeError):
            pass
