#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/setup.sh
python3 -m pytest -q "$@"
