"""Devices: where a tensor's array lives, and moving arrays between them.

'cpu': numpy arrays. 'cuda': cupy arrays on the current GPU. 'cuda_emu': numpy arrays that go
through the cuda device's Python glue and run the emulated CUDA kernels (see design.md).
This module is the only place that imports cupy for tensors; without cupy (or without a GPU)
everything but 'cuda' works, and asking for 'cuda' says why it cannot.
"""
from __future__ import annotations

import numpy as np

from .backends.base import array_module

DEVICES = ("cpu", "cuda", "cuda_emu")


def check_device(device) -> str:
    """The device name of ``device`` ('cpu', 'cuda', 'cuda_emu'; 'cuda:0' gives 'cuda').

    Raises ValueError for an unknown name and TypeError for a non-string.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu', got {type(device).__name__}")
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and not (base == "cuda" and index.isdigit())):
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES} "
                         "(or 'cuda:N')")
    return base


_cupy_module = None  # set once cupy and a GPU were found, so later moves skip the probe


def _cupy():
    """The cupy module, or a RuntimeError that says what is missing."""
    global _cupy_module
    if _cupy_module is not None:
        return _cupy_module
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError("device 'cuda' needs cupy (pip install cupy-cuda13x, the 'cuda13' "
                           f"extra) and an NVIDIA GPU; cupy cannot be imported: {exc}") from None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises its own CUDARuntimeError without a driver
        raise RuntimeError(f"device 'cuda' needs an NVIDIA GPU and driver: {exc}") from None
    if n == 0:
        raise RuntimeError("device 'cuda' needs an NVIDIA GPU; none was found")
    _cupy_module = cupy
    return cupy


def cuda_unavailable_reason() -> str | None:
    """None when device 'cuda' works, else a sentence saying why not."""
    try:
        _cupy()
    except RuntimeError as exc:
        return str(exc)
    return None


def is_cuda_available() -> bool:
    """True when cupy imports and sees at least one GPU."""
    return cuda_unavailable_reason() is None


def array_module_for(device: str):
    """numpy for 'cpu' and 'cuda_emu', cupy for 'cuda' (a RuntimeError if it is unusable)."""
    return _cupy() if check_device(device) == "cuda" else np


def device_of_array(a) -> str:
    """'cuda' for a cupy array, else 'cpu'."""
    return "cpu" if array_module(a) is np else "cuda"


def move_array(a, device: str, copy: bool = False):
    """``a`` as an array of ``device``: numpy for 'cpu'/'cuda_emu', cupy for 'cuda'.

    An array already of the right kind comes back as it is unless ``copy``; a move between
    host and GPU always copies.
    """
    device = check_device(device)
    on_gpu = array_module(a) is not np
    if device == "cuda":
        if on_gpu:
            return a.copy() if copy else a
        return _cupy().asarray(a)
    if on_gpu:
        return a.get()
    a = np.asarray(a)
    return a.copy() if copy else a
