"""The kernel set shared by the ``cuda`` and ``cuda_emu`` backends: every mixin of this package
on :class:`~pyengine.backends.base.Backend`, and the algorithm lists the modules declare.

``pad`` has no CUDA kernel yet: ``supports('pad', ...)`` is False, so dispatch falls through
(to numpy for the cuda_emu device).
"""
from __future__ import annotations

import numpy as np

from ..base import Backend
from .activation import ActivationKernels
from .batch_norm import BatchNormKernels
from .conv2d import Conv2dKernels
from .linear import LinearKernels
from .loss import LossKernels
from .pool2d import Pool2dKernels
from .softmax import SoftmaxKernels


class CudaKernelsBackend(Conv2dKernels, LinearKernels, Pool2dKernels, SoftmaxKernels,
                         LossKernels, BatchNormKernels, ActivationKernels, Backend):
    """The CUDA kernels on the arrays of ``_native`` (set by the subclass), float32."""

    dtypes = (np.dtype(np.float32),)

    def algorithms(self, op):
        """conv2d: the module's CONV2D_ALGORITHMS; softmax and log_softmax: its
        SOFTMAX_ALGORITHMS; one algorithm for every other op."""
        if op == "conv2d":
            return tuple(self._native.CONV2D_ALGORITHMS)
        if op in ("softmax", "log_softmax"):
            return tuple(self._native.SOFTMAX_ALGORITHMS)
        return super().algorithms(op)
