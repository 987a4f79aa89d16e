"""The ``numba`` backend: every kernel of the interface as numba-compiled CPU code, float32 and
float64.

One module per op family, with the same base names as numpy_ref (conv2d, pool2d, softmax, loss,
activation, linear, batch_norm, pad); shared machinery (jit options, a vectorisable exp, thread
count) in ``_common``. Importing this package imports numba (ImportError without it) but
compiles nothing: each kernel compiles on its first call for a dtype, or loads from numba's
on-disk cache, which :meth:`NumbaBackend.cache_status` describes for ``pyengine info``.

numba checks a cached kernel against its own source file only: after editing ``_common.py``
(whose helpers are compiled into the kernels of the other modules), delete this package's
``__pycache__/*.nbi`` and ``*.nbc`` files, or the kernels keep the old helpers.

Threads: every entry point sets numba's thread count to ``pyengine.threads.get_num_threads()``
(clamped to NUMBA_NUM_THREADS), or to 1 for calls on fewer than ``_common.SMALL_WORK`` elements.
No kernel's result depends on the thread count. The GEMMs of conv2d and linear run in numpy's
BLAS, never inside a numba parallel region, and the numba passes around them run on the
calling thread (``_common.beside_blas``: OpenBLAS's workers spin after a GEMM and would share
the cores with numba's); ``pe.set_num_threads`` limits BLAS to the same count
(``pyengine.threads.limit_blas``).
"""
from __future__ import annotations

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from ..base import Backend, kernels_from
from . import activation, batch_norm, conv2d, linear, loss, pad, pool2d, softmax
from ._common import sync_threads

KERNEL_MODULES = (activation, batch_norm, conv2d, linear, loss, pad, pool2d, softmax)


def dispatchers() -> dict[str, CPUDispatcher]:
    """Every numba function of the backend that compiles on its own, by 'module.function'."""
    out = {}
    for mod in KERNEL_MODULES:
        short = mod.__name__.rsplit(".", 1)[1]
        for name, obj in vars(mod).items():
            # inline='always' helpers are compiled into their callers, never on their own
            if (isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__
                    and obj.targetoptions.get("inline", "never") != "always"):
                out[f"{short}.{name}"] = obj
    return out


def cached_signatures(disp) -> int:
    """How many compiled signatures of ``disp`` numba's on-disk cache holds, fresh for the
    current source and numba version (numba's cache index is internal: unreadable counts 0)."""
    try:
        return len(disp._cache._cache_file._load_index())
    except Exception:  # internals moved, unreadable or missing file: nothing usable
        return 0


@kernels_from(conv2d, pool2d, softmax, loss, activation, linear, batch_norm, pad)
class NumbaBackend(Backend):
    """Every kernel of the interface compiled with numba (float32 and float64)."""

    name = "numba"
    dtypes = (np.dtype(np.float32), np.dtype(np.float64))

    def algorithms(self, op):
        """conv2d: ('im2col_gemm', 'direct_depthwise'); one algorithm for every other op."""
        return conv2d.ALGORITHMS if op == "conv2d" else super().algorithms(op)

    @staticmethod
    def get_num_threads() -> int:
        """Threads numba's kernels use (after syncing with ``pe.set_num_threads``)."""
        sync_threads()
        return numba.get_num_threads()

    @staticmethod
    def cache_status() -> dict:
        """What numba's on-disk cache holds, for ``pyengine info``.

        {'warm': every kernel has at least one cached signature (a first call loads instead of
        compiling), 'kernels': numba functions in the backend, 'kernels_cached': those with a
        cached signature, 'signatures_cached': cached signatures in all, 'cache_dirs': where the
        cache lives, 'compiled_here' / 'loaded_here': signatures compiled / loaded from the cache
        in this process, 'numba': version, 'threading_layer': the layer in use or 'not started'}.
        """
        disps = dispatchers()
        per_kernel = [cached_signatures(d) for d in disps.values()]
        dirs = sorted({d._cache._cache_path for d in disps.values()
                       if getattr(d, "_cache", None) is not None
                       and hasattr(d._cache, "_cache_path")})
        compiled = sum(sum(d.stats.cache_misses.values()) for d in disps.values())
        loaded = sum(sum(d.stats.cache_hits.values()) for d in disps.values())
        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet
            layer = "not started"
        return {"warm": all(n > 0 for n in per_kernel), "kernels": len(disps),
                "kernels_cached": sum(n > 0 for n in per_kernel),
                "signatures_cached": sum(per_kernel), "cache_dirs": dirs,
                "compiled_here": compiled, "loaded_here": loaded, "numba": numba.__version__,
                "threading_layer": layer}


__all__ = ["NumbaBackend", "dispatchers"]
