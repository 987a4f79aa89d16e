"""The ISA paths of pyengine._cpu: each one this machine can run, forced with PYENGINE_ISA in its
own process, computes a small conv (forward and backward, every native algorithm) and a GEMM
like the numpy reference; a path that is unknown, or that the CPU lacks, fails the import with a
message naming it; and under Debian's qemu-user the module runs on an AVX2-only CPU (Haswell)
and an SSE4.2-only one (Nehalem), choosing the right path by itself.

The qemu tests need `qemu-x86_64` (apt-get install qemu-user); without it they skip.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import pyengine._cpu as _cpu
except ImportError:  # test_native_build reports it
    _cpu = None

ROOT = Path(__file__).resolve().parents[1]
ISAS = ("baseline", "avx2", "avx512")
# The CPU features each path needs (isa.cpp checks the full lists; these decide the skips).
NEEDS = {"baseline": ("sse4.2",), "avx2": ("avx2", "fma"),
         "avx512": ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl")}

needs_native = pytest.mark.skipif(_cpu is None, reason="pyengine._cpu is not built")

# Runs in a child process: a small conv (odd sizes, stride, padding, groups) forward and backward
# on every native algorithm, a GEMM with a fused epilogue, and linear, all compared with the
# reference; prints a JSON line with the ISA path that ran.
CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import pyengine as pe
    import pyengine._cpu as c
    from pyengine.params import Conv2dParams
    from pyengine.backends.numpy_ref import conv2d as ref

    rng = np.random.default_rng(0)
    cpu = pe.backends.get("cpu")
    worst = 0.0

    def check(got, want, scale, what):
        global worst
        err = float(np.max(np.abs(got.astype(np.float64) - want) / (1e-5 + 1e-4 * scale)))
        worst = max(worst, err)
        assert err <= 1.0, f"{what}: error {err:.3g} times the tolerance"

    cases = [((2, 6, 11, 9), (8, 3, 3, 3), Conv2dParams(2, 1, 1, 0, 2, 1, 1, 2, 2)),
             ((3, 5, 8, 7), (7, 5, 1, 1), Conv2dParams()),
             ((1, 4, 12, 10), (9, 4, 3, 2), Conv2dParams(1, 1, 1, 1, 0, 0, 2, 1, 1)),
             # 3x3 stride 1 (the Winograd kernels): channels that fill no whole vector, a
             # dilation, groups, asymmetric padding.
             ((2, 18, 9, 10), (20, 18, 3, 3), Conv2dParams(1, 1, 1, 1, 1, 1, 1, 1, 1)),
             ((2, 36, 11, 9), (20, 18, 3, 3), Conv2dParams(1, 1, 2, 1, 1, 2, 2, 1, 2)),
             # stride 2 along w (im2col's even/odd split): C R S past a K block of every path;
             # enough output channels for the weight gradient's GEMM form, rows longer than NR.
             ((2, 20, 13, 12), (9, 20, 5, 5), Conv2dParams(2, 2, 2, 2, 2, 2, 1, 1, 1)),
             ((1, 6, 7, 110), (96, 6, 5, 5), Conv2dParams(2, 2, 2, 2, 2, 2, 1, 1, 1))]
    for x_shape, w_shape, p in cases:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        b = rng.standard_normal(w_shape[0]).astype(np.float32)
        y_ref = ref.conv2d_forward(x, w, b, p)
        dy = rng.standard_normal(y_ref.shape).astype(np.float32)
        ax, aw, ab, ady = (np.abs(a).astype(np.float64) for a in (x, w, b, dy))
        y_scale = ref.conv2d_forward(ax, aw, ab, p)
        dx_ref = ref.conv2d_backward_data(dy, w, x.shape, p)
        dx_scale = ref.conv2d_backward_data(ady, aw, x.shape, p)
        dw_ref = ref.conv2d_backward_weight(dy, x, w.shape, p)
        dw_scale = ref.conv2d_backward_weight(ady, ax, w.shape, p)
        for algo in ("auto",) + tuple(cpu.algorithms("conv2d")):
            what = f"{algo} {x_shape} {w_shape}"
            check(cpu.conv2d_forward(x, w, b, p, algo), y_ref, y_scale, what + " forward")
            check(cpu.conv2d_backward_data(dy, w, x.shape, p, algo), dx_ref, dx_scale,
                  what + " backward-data")
            check(cpu.conv2d_backward_weight(dy, x, w.shape, p, algo), dw_ref, dw_scale,
                  what + " backward-weight")

    for m, n, k in ((37, 53, 29), (8, 48, 384), (1, 1, 1), (70, 130, 400)):
        a = rng.standard_normal((k, m)).astype(np.float32)  # used transposed
        bm = rng.standard_normal((k, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        out = np.full((m, n), np.nan, np.float32)
        c.sgemm(a, bm, out, trans_a=True, col_bias=bias, relu=True)
        want = np.maximum(a.T.astype(np.float64) @ bm + bias, 0.0)
        scale = np.abs(a.T).astype(np.float64) @ np.abs(bm) + np.abs(bias)
        check(out, want, scale, f"sgemm {m}x{n}x{k}")

    x = rng.standard_normal((5, 33)).astype(np.float32)
    w = rng.standard_normal((7, 33)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    check(cpu.linear_forward(x, w, b), x.astype(np.float64) @ w.T + b,
          np.abs(x).astype(np.float64) @ np.abs(w).T + np.abs(b), "linear")
    print(json.dumps({"isa": c.isa(), "build_isa": c.build_info()["isa"], "worst": worst}))
""")


def child_env(**extra):
    """This process's environment without PYENGINE_ISA, plus `extra`, importing this checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYENGINE_ISA"}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_child(prefix=(), code=CHILD, timeout=600, **env):
    return subprocess.run([*prefix, sys.executable, "-c", code], env=child_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def result_of(proc):
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def runnable(isa):
    """(True, '') when this build compiled the path and this CPU runs it, else (False, why)."""
    info = _cpu.build_info()
    if isa not in info["isa_paths"]:
        return False, f"this build did not compile the {isa} path ({info['isa_paths']})"
    features = info["cpu_features"]
    missing = [f for f in NEEDS[isa] if not features.get(f, False)]
    if missing:
        return False, f"this CPU lacks {', '.join(missing)} (needed by {isa})"
    return True, ""


@needs_native
@pytest.mark.parametrize("isa", ISAS)
def test_each_isa_path_matches_reference(isa):
    ok, why = runnable(isa)
    if not ok:
        pytest.skip(why)
    got = result_of(run_child(PYENGINE_ISA=isa))
    assert got["isa"] == isa and got["build_isa"] == isa, got


@needs_native
def test_default_is_the_widest_runnable_path():
    best = [isa for isa in ISAS if runnable(isa)[0]][-1]
    proc = run_child(code="import pyengine._cpu as c; print(c.isa())", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == best
    assert _cpu.isa() in ISAS


@needs_native
@pytest.mark.parametrize("value,match", [
    ("avx1024", r"PYENGINE_ISA='avx1024' is not an ISA path; use one of baseline, avx2, avx512"),
    ("AVX2", r"PYENGINE_ISA='AVX2' is not an ISA path"),
])
def test_unknown_isa_fails_the_import(value, match):
    proc = run_child(code="import pyengine._cpu", PYENGINE_ISA=value)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert re.search(match, proc.stderr), proc.stderr[-2000:]


# -- qemu-user: other CPUs -----------------------------------------------------------------------
QEMU = shutil.which("qemu-x86_64")
needs_qemu = pytest.mark.skipif(
    QEMU is None, reason="qemu-x86_64 is not installed (apt-get install qemu-user)")


def qemu_child(cpu, code=CHILD, **env):
    # Warnings about host features TCG does not emulate go to stderr; they are harmless.
    return run_child(prefix=(QEMU, "-cpu", cpu), code=code, timeout=900, **env)


@needs_native
@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("cpu,isa", [("Haswell", "avx2"), ("Nehalem", "baseline")])
def test_runs_under_qemu(cpu, isa):
    """The build runs on an AVX2-only CPU and on an SSE4.2-only one, picking its path alone."""
    if isa not in _cpu.build_info()["isa_paths"]:
        pytest.skip(f"this build did not compile the {isa} path")
    got = result_of(qemu_child(cpu))
    assert got["isa"] == isa, got


@needs_native
@needs_qemu
@pytest.mark.slow
def test_forcing_a_path_the_cpu_lacks_names_it():
    if "avx512" not in _cpu.build_info()["isa_paths"]:
        pytest.skip("this build did not compile the avx512 path")
    proc = qemu_child("Haswell", code="import pyengine._cpu", PYENGINE_ISA="avx512")
    assert proc.returncode != 0
    assert "PYENGINE_ISA=avx512: this CPU lacks avx512f" in proc.stderr, proc.stderr[-2000:]
