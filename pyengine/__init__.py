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
from .autograd import enable_grad, is_grad_enabled, no_grad
from .backends import get_backend, set_backend, use_backend
from .random import manual_seed
from .tensor import Tensor, cat, stack, tensor
from . import functional  # noqa: E402  (needs Tensor)

__version__ = "0.1.0"

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
float = float32  # noqa: A001  (torch's alias)
double = float64
long = int64

__all__ = [
    "Tensor", "tensor", "cat", "stack", "no_grad", "enable_grad", "is_grad_enabled",
    "backends", "set_backend", "get_backend", "use_backend", "manual_seed", "functional",
    "float32", "float64", "int64",
]
