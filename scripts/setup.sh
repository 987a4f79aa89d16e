#!/usr/bin/env bash
# Set up this machine for pyengine: Debian packages (ccache, Fashion-MNIST), the PyTorch oracle
# (test/benchmark only, from the local torch==2.13.0 file), and pyengine itself, editable, with
# its native module built through setup.py -> CMake -> pybind11. Idempotent.
#   EXTRAS=test,bench bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-test,bench}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need_apt=()
command -v ccache >/dev/null 2>&1 || need_apt+=(ccache)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
# qemu-user: the tests run the build under `qemu-x86_64 -cpu Haswell / Nehalem` (AVX2-only and
# SSE4.2-only CPUs).
command -v qemu-x86_64 >/dev/null 2>&1 || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PyTorch is only an oracle for tests and benchmarks. Install the pinned CPU build first so the
# extras' `torch>=2.1` is already satisfied and pip never fetches a multi-GB CUDA build.
if ! python3 -c "import torch" >/dev/null 2>&1; then
    python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -e ".[${EXTRAS}]"
python3 -c "import pyengine as pe; print('pyengine', pe.__version__, 'backends:', ', '.join(pe.backends.available()))"
