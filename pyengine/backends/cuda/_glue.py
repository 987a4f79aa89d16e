"""What every kernel mixin of the CUDA backends needs: the native module, the stream, outputs.

The same mixins serve ``cuda`` (``pyengine._cuda``, cupy arrays, the current cupy stream) and
``cuda_emu`` (``pyengine._cuda_emu``, numpy arrays, no stream): a backend class sets
``_native`` and overrides :meth:`CudaGlue._stream`. Outputs are allocated with
:func:`~pyengine.backends.base.new_output` like an input, so numpy or cupy as the input is, and
``PYENGINE_POISON=1`` applies to both.
"""
from __future__ import annotations

import numpy as np

from ..base import new_output


class CudaGlue:
    """Base of the kernel mixins: ``_native`` (the extension module) and ``_stream()``."""

    _native = None

    def _stream(self) -> int:
        """The cudaStream_t (an int) the kernels run on; 0 is the default stream."""
        return 0

    @staticmethod
    def _out(shape, dtype, like):
        """A fresh output array of ``like``'s kind (numpy or cupy)."""
        return new_output(tuple(int(d) for d in shape), dtype, like=like)

    @staticmethod
    def _int64(a):
        """Class-index targets as int64 (the kernels read 8-byte indices)."""
        return a if a.dtype == np.int64 else a.astype(np.int64)
