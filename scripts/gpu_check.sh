#!/usr/bin/env bash
# The GPU run, in one command, on a machine with an NVIDIA GPU (driver for CUDA 13), nvcc and
# cupy-cuda13x (no network needed): build with pyengine._cuda for this GPU, run the GPU tests,
# run a short training under compute-sanitizer (memcheck), train simple_cnn for an epoch on
# the GPU, and write the GPU benchmark (each kernel version vs PyTorch/cuDNN, TF32 off and on).
#   CUDA_ARCHS=90 bash scripts/gpu_check.sh      # results in gpu-results/
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
export CMAKE_ARGS="${CMAKE_ARGS:-} -DPYENGINE_CUDA=ON -DPYENGINE_CUDA_ARCHS=${CUDA_ARCHS:-90}"
python3 -m pip install -q --no-build-isolation --no-deps -e .
python3 -m pyengine info | tee "$OUT/info.txt"
python3 -m pytest -q -m gpu | tee "$OUT/pytest-gpu.txt"
# memcheck on a few training steps (every kernel of a training step, forward and backward).
compute-sanitizer --tool memcheck --error-exitcode 1 \
    python3 -m pyengine train --device cuda --epochs 1 --limit-batches 3 --limit-test-batches 1 \
    --checkpoint "$OUT/memcheck.pe" \
    2>&1 | tee "$OUT/memcheck.txt"
python3 -m pyengine train --device cuda --epochs 1 --checkpoint "$OUT/simple_cnn.pe" | tee "$OUT/train.txt"
python3 -m pyengine bench --device cuda --no-progress --json "$OUT/bench.json" \
    --markdown "$OUT/bench.md" --plots "$OUT/plots" | tee "$OUT/bench.txt"
