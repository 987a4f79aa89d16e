"""Thread count of pyengine's kernels: ``pe.set_num_threads`` / ``PYENGINE_NUM_THREADS``.

One number for every backend that runs threads (the native module's OpenMP pool, numba's
threading layer, and the BLAS behind numpy's matmul, which the numba and numpy backends call for
their GEMMs), so that benchmarks give every implementation the same count and no two pools
oversubscribe the cores. BLAS follows through threadpoolctl (a dependency); it is limited on
the first ``set_num_threads`` call, or at import when PYENGINE_NUM_THREADS is set.
"""
from __future__ import annotations

import os

_threads: int | None = None


def env_threads() -> int | None:
    """PYENGINE_NUM_THREADS as an int, None when unset or empty; ValueError unless positive."""
    env = os.environ.get("PYENGINE_NUM_THREADS")
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"PYENGINE_NUM_THREADS must be a positive int, got {env!r}")
    return n


def _default() -> int:
    n = env_threads()
    if n is not None:
        return n
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
    limit_blas(n)


def limit_blas(n: int) -> None:
    """Limit the BLAS libraries loaded in this process (numpy's OpenBLAS, MKL...) to ``n``
    threads; nothing without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")   # applies now; not used as a context


def blas_num_threads() -> int | None:
    """Threads of the first BLAS loaded in this process, or None when none is (or threadpoolctl
    is missing)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return pools[0]["num_threads"] if pools else None
