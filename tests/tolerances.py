"""Tolerances of every comparison, in one table: (op, dtype) -> (atol, rtol).

Against PyTorch and against numpy_ref alike. Convolutions scale rtol by |x|.|w| (the sum of
magnitudes) rather than |result|, since cancellation makes |result| a poor scale; see
tests/test_conv2d.py. Tighten an entry only with evidence, never loosen one to make a test pass
without saying why here.
"""
from __future__ import annotations

import numpy as np

_DEFAULT = {np.dtype(np.float32): (1e-5, 1e-4), np.dtype(np.float64): (1e-10, 1e-8)}

TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # op, dtype: (atol, rtol)
    ("conv2d", "float32"): (1e-5, 1e-4),
    ("conv_transpose2d", "float32"): (1e-5, 1e-4),
    ("softmax", "float32"): (1e-6, 1e-5),
    ("log_softmax", "float32"): (1e-5, 1e-5),
    ("cross_entropy", "float32"): (1e-5, 1e-5),
    ("batch_norm", "float32"): (1e-4, 1e-4),
}


def tolerance(op: str, dtype) -> tuple[float, float]:
    """(atol, rtol) for ``op`` in ``dtype``."""
    dt = np.dtype(dtype)
    return TOLERANCES.get((op, dt.name), _DEFAULT.get(dt, (1e-5, 1e-4)))
