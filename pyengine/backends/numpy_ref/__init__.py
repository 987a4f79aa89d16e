"""The numpy reference backend: the specification every other backend is checked against.

Plain numpy, float32 and float64, written to be read: no tricks, accumulation in the input's
dtype except where a comment says otherwise. One module per op family, with the same base name
as the op's file in every other backend.
"""
from __future__ import annotations

import numpy as np

from ..base import Backend, kernels_from
from . import activation, batch_norm, conv2d, linear, loss, pad, pool2d, softmax


@kernels_from(conv2d, pool2d, softmax, loss, activation, linear, batch_norm, pad)
class NumpyBackend(Backend):
    """Every kernel of the interface, in numpy; one algorithm per op ('direct')."""

    name = "numpy"
    dtypes = (np.dtype(np.float32), np.dtype(np.float64))
