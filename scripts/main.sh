#!/usr/bin/env bash
# The main job: set up, train simple_cnn on Fashion-MNIST (progress bar, per-epoch accuracy),
# then print a short benchmark summary against PyTorch.
#   bash scripts/main.sh [extra `pyengine train` arguments, e.g. --epochs 1]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pyengine train --model simple_cnn --dataset fashion-mnist "$@"
python3 -m pyengine bench --quick
