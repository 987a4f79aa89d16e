#!/usr/bin/env bash
# Install a built wheel into a fresh virtual environment away from the source tree and run the
# smoke check (scripts/wheel_smoke.py) there.
#   bash scripts/wheel_smoke.sh dist/pyengine-*.whl
#   QEMU_CPU=Haswell bash scripts/wheel_smoke.sh dist/pyengine-*.whl   # under qemu-user, as an
#                                        # AVX2-only CPU (Debian's qemu-user; Nehalem: SSE4.2)
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
run=("$work/venv/bin/python")
if [ -n "${QEMU_CPU:-}" ]; then
    run=(qemu-x86_64 -cpu "$QEMU_CPU" "${run[@]}")
    # The ISA path the native module picked must be one this CPU has.
    PYTHONPATH= "${run[@]}" -c "import pyengine._cpu as c; print('qemu $QEMU_CPU: isa', c.build_info()['isa'])"
fi
PYTHONPATH= "${run[@]}" wheel_smoke.py
