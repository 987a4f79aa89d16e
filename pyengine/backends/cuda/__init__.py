"""The ``cuda`` backend: pyengine's CUDA kernels (``pyengine._cuda``, built by nvcc from
csrc/cuda) on cupy arrays, on the current cupy stream.

One mixin per op family (same base names as numpy_ref's modules), shared with the ``cuda_emu``
backend (pyengine/backends/cuda_emu), which runs the very same kernel sources on the CUDA
emulator. :func:`probe` decides at registration whether this backend can run here and, if
not, says exactly why: no module built, no cupy, no driver or a driver too old, no GPU, or no
kernel image for this GPU's architecture. Importing ``pyengine._cuda`` makes no CUDA call;
probe() makes the first (device count, driver version, compute capability), and only once
cupy imports.
"""
from __future__ import annotations

import importlib
import re

from ._backend import CudaKernelsBackend

# Kernels this file's mixins call: a module lacking one is a stale build.
NATIVE_FUNCTIONS = ("conv2d_forward", "max_pool2d_forward", "softmax_forward",
                    "cross_entropy_forward", "batch_norm_forward_train", "activation_forward",
                    "linear_forward", "sgd_update", "adam_update", "probe", "build_info",
                    "CONV2D_ALGORITHMS", "SOFTMAX_ALGORITHMS")

# The driver that CUDA 13 (what the GPU wheel targets) needs.
MIN_DRIVER = "580"


class CudaBackend(CudaKernelsBackend):
    """Kernels of ``pyengine._cuda`` on cupy arrays (float32), on cupy's current stream."""

    name = "cuda"
    array_kind = "device"

    def __init__(self, native, cupy):
        self._native = native
        self._cupy = cupy

    def _stream(self) -> int:
        return self._cupy.cuda.get_current_stream().ptr


def _version(v: int) -> str:
    """13000 -> '13.0' (CUDA's encoding: 1000 * major + 10 * minor)."""
    return f"{v // 1000}.{v % 1000 // 10}"


def runs_on(archs: str, major: int, minor: int) -> bool:
    """Whether a build for CMake CUDA architectures ``archs`` ('90', '80-real,90', ...) has a
    kernel image for a GPU of compute capability major.minor.

    SASS for sm_XY (an entry 'XY' or 'XY-real') runs on major X, minor >= Y; PTX for
    compute_XY (an entry 'XY' or 'XY-virtual') is compiled by the driver for any capability
    >= X.Y. Arch-specific entries ('90a') run on exactly their capability. Entries CMake
    expands itself ('native', 'all') are taken to fit.
    """
    cc = 10 * major + minor
    for entry in (e.strip() for e in re.split(r"[;,]", archs) if e.strip()):
        m = re.fullmatch(r"(\d+)([af]?)(-real|-virtual)?", entry)
        if m is None:
            return True
        num, specific, kind = int(m.group(1)), m.group(2), m.group(3)
        if specific:
            if num == cc and kind != "-virtual":
                return True
            continue
        if kind != "-virtual" and num // 10 == major and num % 10 <= minor:
            return True
        if kind != "-real" and num <= cc:
            return True
    return False


def _device_problem(native) -> str | None:
    """Why the GPU side cannot run pyengine._cuda, from its probe(); None when it can."""
    r = native.probe()
    archs = native.build_info()["archs"]
    runtime = _version(r["runtime_version"])
    if r["error_name"]:
        if r["driver_version"] == 0:
            return (f"no NVIDIA driver was found ({r['error_name']}: {r['error_string']}); "
                    f"pyengine._cuda needs a GPU and a driver >= {MIN_DRIVER} (CUDA {runtime})")
        if r["error_name"] == "cudaErrorInsufficientDriver":
            return (f"the NVIDIA driver is too old: it supports CUDA "
                    f"{_version(r['driver_version'])}, pyengine._cuda was built with CUDA "
                    f"{runtime} and needs a driver >= {MIN_DRIVER} ({r['error_name']})")
        if r["error_name"] == "cudaErrorNoDevice":
            return f"no CUDA GPU was found ({r['error_name']}: {r['error_string']})"
        return f"CUDA cannot start: {r['error_name']}: {r['error_string']}"
    if r["device_count"] == 0:
        return "no CUDA GPU was found (the driver reports 0 devices)"
    major, minor = r["capability"]
    if not runs_on(archs, major, minor):
        return (f"no kernel image for this GPU's architecture: device {r['device']} has compute "
                f"capability {major}.{minor} but pyengine._cuda holds kernels for CUDA "
                f"architectures {archs} only; rebuild with "
                f"CMAKE_ARGS=-DPYENGINE_CUDA_ARCHS={major}{minor}")
    return None


def probe():
    """(CudaBackend, None) when the ``cuda`` backend can run here, else (None, reason)."""
    try:
        native = importlib.import_module("pyengine._cuda")
    except ImportError as exc:
        return None, ("pyengine._cuda was not built (pyengine was built without nvcc, or with "
                      f"PYENGINE_CUDA=OFF): {exc}")
    missing = [f for f in NATIVE_FUNCTIONS if not hasattr(native, f)]
    if missing:
        return None, (f"pyengine._cuda at {getattr(native, '__file__', '?')} is stale (lacks "
                      f"{', '.join(missing)}); rebuild it with `pip install -e .`")
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # absent (ImportError) or a broken install
        reason = (f"cupy cannot be imported ({type(exc).__name__}: {exc}); install it with "
                  "pip install cupy-cuda13x, the 'cuda13' extra")
        try:
            problem = _device_problem(native)
        except Exception as probe_exc:  # a probe failure must not break `import pyengine`
            problem = f"the device probe failed: {probe_exc}"
        return None, reason + (f"; besides, {problem}" if problem else "")
    try:
        problem = _device_problem(native)
    except Exception as exc:
        problem = f"the device probe failed: {exc}"
    if problem:
        return None, problem
    return CudaBackend(native, cupy), None


__all__ = ["CudaBackend", "CudaKernelsBackend", "probe", "runs_on"]
