#!/usr/bin/env bash
# Build pyengine._cuda_emu with AddressSanitizer in its own build tree (build/asan; the
# development modules stay as they are) and run the CUDA tests against it: the emulator's own
# tests and every cuda_emu row of the shared backend tests. Not part of CI (several times
# slower). Any extra arguments go to pytest.
#   bash scripts/emu_asan.sh
#   bash scripts/emu_asan.sh -k conv2d
# The module is loaded through PYENGINE_CUDA_EMU_LIBRARY, and the sanitizer runtime (with the
# C++ runtime) is preloaded into Python (which is not built with it). Leak detection is off: the interpreter
# itself leaks by design.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build/asan}"
PYTHON="${PYTHON:-python3}"

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYENGINE_SANITIZE=address -DPYENGINE_CUDA=OFF \
    -DPython_EXECUTABLE="$(command -v "$PYTHON")" \
    -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$BUILD" --target _cuda_emu --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

lib="$(ls "$BUILD"/pyengine/_cuda_emu*.so)"
asan="$(${CXX:-c++} -print-file-name=libasan.so)"
# libstdc++ preloaded too: the sanitizer resolves the C++ runtime's __cxa_throw when it starts,
# and Python itself does not link libstdc++, so without it every C++ exception aborts.
cxxrt="$(${CXX:-c++} -print-file-name=libstdc++.so)"
echo "emu_asan: $lib with $asan"
# Only the cuda_emu backend besides the reference: the other backends are not under test.
PYENGINE_CUDA_EMU_LIBRARY="$lib" PYENGINE_DISABLE_NATIVE=1 PYENGINE_DISABLE_NUMBA=1 \
LD_PRELOAD="$asan $cxxrt" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}" \
    "$PYTHON" -m pytest -q -p no:cacheprovider -W ignore::RuntimeWarning \
    tests/test_cuda_emu.py tests/test_conv2d.py tests/test_conv_transpose2d.py \
    tests/test_pool2d.py tests/test_softmax.py tests/test_loss.py tests/test_batch_norm.py \
    tests/test_activation.py tests/test_linear.py \
    -k "cuda_emu or backends_match or emu" "$@"
