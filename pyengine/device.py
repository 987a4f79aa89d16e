"""Devices: where a tensor's array lives, and moving arrays between them.

'cpu': numpy arrays. 'cuda': cupy arrays on the current GPU. 'cuda_emu': numpy arrays that go
through the cuda device's Python glue and run the emulated CUDA kernels (see design.md).
"""
from __future__ import annotations

import numpy as np

from .backends.base import array_module

DEVICES = ("cpu", "cuda", "cuda_emu")


def check_device(device: str) -> str:
    """Return ``device`` if known, else raise ValueError naming the known devices."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a str, got {type(device).__name__}")
    base = device.split(":")[0]
    if base not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return base


def move_array(a, device: str):
    """``a`` as an array of ``device``: numpy for 'cpu'/'cuda_emu', cupy for 'cuda'."""
    device = check_device(device)
    on_gpu = array_module(a) is not np
    if device == "cuda":
        if on_gpu:
            return a
        try:
            import cupy
        except ImportError as exc:
            raise RuntimeError("device 'cuda' needs cupy (pip install 'pyengine[cuda13]') "
                               f"and an NVIDIA GPU: {exc}") from None
        return cupy.asarray(a)
    return a.get() if on_gpu else a
