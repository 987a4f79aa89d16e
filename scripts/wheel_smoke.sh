#!/usr/bin/env bash
# Install a built wheel into a fresh virtual environment away from the source tree and run the
# smoke check (scripts/wheel_smoke.py) there.
#   bash scripts/wheel_smoke.sh dist/pyengine-*.whl
set -euo pipefail
wheel="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
smoke="$(cd "$(dirname "$0")" && pwd)/wheel_smoke.py"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d /tmp/pyengine-smoke-XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
cp "$smoke" "$work/"
cd "$work"   # nothing of the source tree is importable from here
PYTHONPATH= "$work/venv/bin/python" wheel_smoke.py
