"""pyengine: a CNN engine for Python whose hot paths are hand-written kernels.

    import pyengine as pe
    import pyengine.functional as F

    x = pe.randn(8, 3, 32, 32, requires_grad=True)
    w = pe.randn(16, 3, 3, 3, requires_grad=True)
    F.relu(F.conv2d(x, w, padding=1)).sum().backward()

Backends (``pe.backends.available()``), chosen with ``pe.set_backend`` / ``pe.use_backend``;
the default 'auto' picks the fastest that implements each op.
"""
from __future__ import annotations

import numpy as np

from . import backends
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backends import get_backend, set_backend, use_backend
from .random import manual_seed
from .threads import get_num_threads, set_num_threads
from .tensor import Tensor, cat, stack, tensor
from .creation import (arange, as_tensor, empty, empty_like, eye, from_dlpack,  # noqa: E402
                       from_numpy, full, full_like, ones, ones_like, rand, rand_like,
                       randint, randn, randn_like, zeros, zeros_like)
from .device import is_cuda_available  # noqa: E402
from . import functional  # noqa: E402  (needs Tensor)
from . import data  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import nn, optim, models  # noqa: E402  (built on functional)
from . import threads as _threads  # noqa: E402

if _threads.env_threads() is not None:   # PYENGINE_NUM_THREADS: BLAS follows it too
    _threads.apply_to_backends()

__version__ = "0.1.0"

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
float = float32  # noqa: A001  (torch's alias)
double = float64
long = int64
float16 = half = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int = int32  # noqa: A001  (torch's alias)
int16 = short = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)  # noqa: A001  (torch's name)
complex64 = np.dtype(np.complex64)
complex128 = np.dtype(np.complex128)

__all__ = [
    "Tensor", "tensor", "cat", "stack", "no_grad", "enable_grad", "is_grad_enabled",
    "backends", "set_backend", "get_backend", "use_backend", "manual_seed", "functional",
    "set_num_threads", "get_num_threads",
    "float32", "float64", "int64",
    "set_grad_enabled", "is_cuda_available", "zeros", "ones", "full", "empty", "zeros_like",
    "ones_like", "full_like", "empty_like", "rand", "randn", "randint", "rand_like",
    "randn_like", "arange", "eye", "from_numpy", "as_tensor", "from_dlpack",
    "float16", "half", "int32", "int16", "short", "int8", "uint8", "complex64", "complex128",
]
