"""The import of ``pyengine._cuda_emu``, with a clear ImportError when it is missing or stale.

``PYENGINE_CUDA_EMU_LIBRARY=/path/to/_cuda_emu....so`` loads that file instead of the module
next to this package: scripts/emu_asan.sh uses it to run the tests on an AddressSanitizer
build without replacing the development build.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from ..cuda import NATIVE_FUNCTIONS


def _load():
    path = os.environ.get("PYENGINE_CUDA_EMU_LIBRARY")
    if not path:
        return importlib.import_module("pyengine._cuda_emu")
    spec = importlib.util.spec_from_file_location("pyengine._cuda_emu", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"PYENGINE_CUDA_EMU_LIBRARY={path!r} is not a loadable module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["pyengine._cuda_emu"] = module
    return module


try:
    _cuda_emu = _load()
except ImportError as exc:
    raise ImportError(f"{exc}; rebuild it with `pip install -e .` "
                      "(or `pip install --no-build-isolation --no-deps -e .`)") from exc

_missing = [f for f in NATIVE_FUNCTIONS + ("set_seed", "testing") if not hasattr(_cuda_emu, f)]
if _missing:
    raise ImportError(f"pyengine._cuda_emu at {getattr(_cuda_emu, '__file__', '?')} is stale "
                      f"(lacks {', '.join(_missing)}); rebuild it with `pip install -e .`")
