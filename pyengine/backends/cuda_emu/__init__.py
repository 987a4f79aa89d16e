"""The ``cuda_emu`` backend: the CUDA kernels of csrc/cuda compiled for the host against the
CUDA emulator (csrc/emu) into ``pyengine._cuda_emu``, on numpy arrays.

It goes through the very glue of the ``cuda`` backend (the mixins of pyengine/backends/cuda),
so every CUDA kernel and version is checked against numpy_ref by the shared tests on machines
without a GPU. The emulator runs each block's threads in a seeded shuffled order between
barriers (``PYENGINE_EMU_SEED``, or :func:`set_seed`), so a missing ``__syncthreads`` shows up
as a wrong result.

Importing this package raises ImportError when the module is missing or stale; the registry
catches that and says so in ``pe.backends.unavailable()``.
"""
from __future__ import annotations

from ..cuda._backend import CudaKernelsBackend
from ._module import _cuda_emu


class CudaEmuBackend(CudaKernelsBackend):
    """Kernels of ``pyengine._cuda_emu`` on numpy arrays (float32)."""

    name = "cuda_emu"
    array_kind = "host"
    _native = _cuda_emu


def set_seed(seed: int) -> None:
    """Seed of the emulator's shuffled thread order (default: PYENGINE_EMU_SEED, else 0)."""
    _cuda_emu.set_seed(int(seed))


def get_seed() -> int:
    """Seed of the emulator's shuffled thread order."""
    return _cuda_emu.get_seed()


__all__ = ["CudaEmuBackend", "set_seed", "get_seed", "_cuda_emu"]
