"""Tolerances of every comparison, in one table: (op, dtype) -> (atol, rtol).

Against PyTorch and against numpy_ref alike. Convolutions scale rtol by |x|.|w| (the sum of
magnitudes) rather than |result|, since cancellation makes |result| a poor scale; see
tests/test_conv2d.py. Tighten an entry only with evidence, never loosen one to make a test pass
without saying why here.
"""
from __future__ import annotations

import numpy as np

_DEFAULT = {np.dtype(np.float32): (1e-6, 1e-5), np.dtype(np.float64): (1e-10, 1e-8)}

TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # op, dtype: (atol, rtol). Products summed over many terms (conv, linear) cancel, so their
    # float32 errors are a few ulp of the sum of |terms|, not of |result|: conv scales rtol by
    # |x|.|w| in its tests; linear uses the conv's values on the plain scale.
    ("conv2d", "float32"): (1e-5, 1e-4),
    ("conv_transpose2d", "float32"): (1e-5, 1e-4),
    ("linear", "float32"): (1e-5, 1e-4),
}


def tolerance(op: str, dtype) -> tuple[float, float]:
    """(atol, rtol) for ``op`` in ``dtype``."""
    dt = np.dtype(dtype)
    return TOLERANCES.get((op, dt.name), _DEFAULT.get(dt, (1e-5, 1e-4)))
