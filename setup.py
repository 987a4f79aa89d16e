"""Build the native modules of pyengine by running CMake (the pybind11 cmake_example pattern).

Metadata lives in pyproject.toml; this file only adds the CMake-built extension.

Environment knobs:
- ``CMAKE_ARGS``: extra arguments for the CMake configure step, e.g.
  ``CMAKE_ARGS="-DPYENGINE_CUDA=OFF -DPYENGINE_SANITIZE=address"``.
- ``CMAKE_BUILD_PARALLEL_LEVEL``: compile jobs (default 2: the project's machines have 2 cores).
- ``CMAKE_GENERATOR``: overrides the default (Ninja when it is installed).
- ``DEBUG=1``: a Debug build instead of Release.
- ``PYENGINE_NO_CCACHE=1``: do not put ccache in front of the compilers.
- ``PYENGINE_SKIP_NATIVE=1``: install the Python code only, for a machine without a C++
  compiler; pyengine then runs on its Python backends and says so once at import.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension whose sources CMake knows; setuptools only needs its dotted name.

    One CMake build makes every module; the first extension runs it, the others (``by_cmake``)
    only name a module that build leaves in the same directory, so that setuptools copies it
    too (editable installs copy the declared extensions only). ``optional``: a module CMake may
    skip (pyengine._cuda without nvcc).
    """

    def __init__(self, name: str, sourcedir: Path = ROOT, by_cmake: bool = False,
                 optional: bool = False):
        super().__init__(name, sources=[], optional=optional)
        self.sourcedir = os.fspath(Path(sourcedir).resolve())
        self.by_cmake = by_cmake


def _pybind11_cmake_dir() -> str:
    """Where pybind11's CMake config lives, from the pybind11 of the interpreter that builds."""
    try:
        import pybind11
        return pybind11.get_cmake_dir()
    except ImportError:  # pybind11 installed for another interpreter: ask that one's CLI
        out = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()


def _cmake_command() -> str:
    """The cmake of the pip `cmake` package when installed (build isolation), else the PATH's."""
    try:
        import cmake
        return os.path.join(cmake.CMAKE_BIN_DIR, "cmake")
    except ImportError:
        found = shutil.which("cmake")
        if found is None:
            raise RuntimeError("CMake is needed to build pyengine's native modules: "
                               "pip install cmake") from None
        return found


def _ninja_path() -> str | None:
    """A ninja executable, from the pip `ninja` package or the PATH; None when there is none."""
    try:
        import ninja
        path = os.path.join(ninja.BIN_DIR, "ninja")
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    return shutil.which("ninja")


class CMakeBuild(build_ext):
    """build_ext that configures and builds the CMake project and drops the module where
    setuptools expects it (inside pyengine/ for an editable install)."""

    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)
        if ext.by_cmake:  # made by the CMake build of the first extension
            return None
        # get_ext_fullpath gives build/lib.../pyengine/_cpu....so; setuptools copies it into the
        # source tree for editable installs (build_ext.inplace).
        ext_fullpath = Path.cwd() / self.get_ext_fullpath(ext.name)
        extdir = ext_fullpath.parent.resolve()

        debug = int(os.environ.get("DEBUG", 0)) if self.debug is None else self.debug
        cfg = "Debug" if debug else "Release"

        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-Dpybind11_DIR={_pybind11_cmake_dir()}",
        ]
        user_args = [a for a in os.environ.get("CMAKE_ARGS", "").split(" ") if a]

        if "CMAKE_GENERATOR" not in os.environ and not any(a.startswith("-G") for a in user_args):
            ninja = _ninja_path()
            if ninja is not None:
                cmake_args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM:FILEPATH={ninja}"]

        ccache = shutil.which("ccache")
        if ccache and not os.environ.get("PYENGINE_NO_CCACHE") and \
                not any("COMPILER_LAUNCHER" in a for a in user_args):
            cmake_args += [f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccache}",
                           f"-DCMAKE_CUDA_COMPILER_LAUNCHER={ccache}"]

        cmake_args += user_args  # last, so that the user's settings win

        level = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or (self.parallel or 2)
        build_args = ["--parallel", str(level)]

        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        cmake = _cmake_command()
        subprocess.run([cmake, ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run([cmake, "--build", ".", *build_args], cwd=build_temp, check=True)


SKIP_NATIVE = os.environ.get("PYENGINE_SKIP_NATIVE", "0") not in ("", "0")

setup(
    ext_modules=[] if SKIP_NATIVE else [
        CMakeExtension("pyengine._cpu"),
        CMakeExtension("pyengine._cuda_emu", by_cmake=True),   # CUDA kernels on the emulator
        CMakeExtension("pyengine._cuda", by_cmake=True, optional=True),  # nvcc: when found
    ],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
