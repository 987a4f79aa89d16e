"""The ``cpu`` backend: pyengine's own C++ kernels (``pyengine._cpu``, built from csrc/cpu).

One mixin per op family (same base names as numpy_ref's modules); each kernel method allocates
its outputs with :func:`~pyengine.backends.base.new_output` (so ``PYENGINE_POISON=1`` applies)
and lets the native function fill them with the GIL released. Inputs arrive C-contiguous (the
functional layer sees to it); the bindings refuse anything else rather than copy. float32 only:
dispatch sends float64 to the next backend, since :meth:`Backend.supports` checks ``dtypes``.

Importing this package raises ImportError when the native module is missing, was built for
another Python, or is stale; the registry catches that and warns once.
"""
from __future__ import annotations

import numpy as np

from ..base import Backend
from ._module import _cpu, build_info, get_num_threads, set_num_threads, to_native
from .activation import ActivationKernels
from .batch_norm import BatchNormKernels
from .conv2d import Conv2dKernels
from .linear import LinearKernels
from .loss import LossKernels
from .pool2d import Pool2dKernels
from .softmax import SoftmaxKernels


class NativeCpuBackend(Conv2dKernels, LinearKernels, Pool2dKernels, SoftmaxKernels, LossKernels,
                       BatchNormKernels, ActivationKernels, Backend):
    """Kernels of ``pyengine._cpu`` on numpy arrays, float32."""

    name = "cpu"
    dtypes = (np.dtype(np.float32),)
    array_kind = "host"


__all__ = ["NativeCpuBackend", "build_info", "get_num_threads", "set_num_threads", "to_native",
           "_cpu"]
