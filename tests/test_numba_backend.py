"""What only the numba backend has: its place in the fallback chain, its on-disk kernel cache,
its thread count, compiling each kernel signature once, its exp, and its conv algorithm
choice. Its numerics against numpy_ref are checked by the shared ``test_backends_match_reference``
tests of every op file, which enumerate all backends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F
from pyengine import backends, threads
from pyengine.backends.base import OPS
from pyengine.params import Conv2dParams

numba = pytest.importorskip("numba")
if "numba" not in backends.available():
    pytest.skip(f"numba backend unavailable: {backends.unavailable().get('numba')}",
                allow_module_level=True)

from pyengine.backends import numba_cpu  # noqa: E402
from pyengine.backends.numba_cpu import _common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter with extra environment variables; return the JSON
    object it prints last."""
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the fallback chain ------------------------------------------------------------------------
_CHAIN = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numpy as np
        import pyengine as pe, pyengine.functional as F
        from pyengine import backends
        ran = {}
        for dt in (np.float32, np.float64):
            x = pe.tensor(np.ones((1, 2, 5, 5), dt))
            w = pe.tensor(np.ones((3, 2, 3, 3), dt))
            y = F.conv2d(x, w, padding=1)
            ran[np.dtype(dt).name] = [backends.resolve("conv2d", dt).name, str(y.dtype),
                                      float(y.numpy()[0, 0, 2, 2])]
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    print(json.dumps({"warnings": runtime, "ran": ran, "available": backends.available(),
                      "unavailable": backends.unavailable()}))
"""


def test_without_native_auto_runs_numba_with_one_warning():
    result = run_python(_CHAIN, PYENGINE_DISABLE_NATIVE="1", PYENGINE_DISABLE_NUMBA="0")
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "PYENGINE_DISABLE_NATIVE" in result["warnings"][0]
    assert "auto runs the numba backend" in result["warnings"][0]
    assert result["available"][:2] == ["numba", "numpy"]
    # float64 stays float64 on numba (no silent downcast)
    assert result["ran"] == {"float32": ["numba", "float32", 18.0],
                             "float64": ["numba", "float64", 18.0]}


def test_without_native_and_numba_auto_runs_numpy():
    result = run_python(_CHAIN, PYENGINE_DISABLE_NATIVE="1", PYENGINE_DISABLE_NUMBA="1")
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "numpy reference" in result["warnings"][0]
    assert "PYENGINE_DISABLE_NUMBA" in result["warnings"][0]
    assert "numba" not in result["available"]
    assert "PYENGINE_DISABLE_NUMBA" in result["unavailable"]["numba"]
    assert result["ran"] == {"float32": ["numpy", "float32", 18.0],
                             "float64": ["numpy", "float64", 18.0]}


def test_coverage_every_op_both_dtypes():
    cov = backends.coverage()["numba"]
    assert set(cov) == set(OPS)
    assert all(cov[op] == ["float32", "float64"] for op in OPS), cov


def test_conv_algorithms_and_fallback_within_backend():
    nb = backends.get("numba")
    assert nb.algorithms("conv2d") == ("im2col_gemm", "direct_depthwise")
    assert nb.algorithms("max_pool2d") == ("direct",)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)   # groups=2: not depthwise
    p = Conv2dParams(pad_top=1, pad_bottom=1, pad_left=1, pad_right=1, groups=2)
    # direct_depthwise cannot sum over input channels: it runs im2col_gemm, bit for bit.
    np.testing.assert_array_equal(nb.conv2d_forward(x, w, None, p, "direct_depthwise"),
                                  nb.conv2d_forward(x, w, None, p, "im2col_gemm"))
    with pytest.raises(ValueError, match="unknown algo 'winograd'.*im2col_gemm"):
        nb.conv2d_forward(x, w, None, p, "winograd")


# -- threads -----------------------------------------------------------------------------------
@pytest.fixture
def restore_threads(monkeypatch):
    monkeypatch.setattr(threads, "_threads", threads._threads)
    yield
    threads.apply_to_backends()                # push the restored count back (BLAS included)
    numba_cpu.NumbaBackend.get_num_threads()   # and into numba's calling thread


def _run_softmax_kernel(rows=256):
    backends.get("numba").softmax_forward(np.ones((rows, 512), np.float32), 1)
    return numba.get_num_threads()


def test_thread_count_follows_pyengine(restore_threads):
    threads.set_num_threads(1)
    assert numba_cpu.NumbaBackend.get_num_threads() == 1
    assert _run_softmax_kernel() == 1
    most = numba.config.NUMBA_NUM_THREADS
    threads.set_num_threads(most + 5)                 # clamped to numba's pool
    assert _run_softmax_kernel() == most
    if most >= 2:
        threads.set_num_threads(2)
        assert _run_softmax_kernel() == 2


def test_blas_follows_pyengine(restore_threads):
    # The numba and numpy backends run their GEMMs in numpy's BLAS: its pool must follow
    # pe.set_num_threads, or it and numba's pool oversubscribe the cores.
    np.ones((64, 64)) @ np.ones((64, 64))      # BLAS is loaded with numpy; make sure it ran
    if threads.blas_num_threads() is None:
        pytest.skip("numpy links no BLAS that threadpoolctl knows")
    pe.set_num_threads(1)
    assert threads.blas_num_threads() == 1 and pe.get_num_threads() == 1
    pe.set_num_threads(2)
    assert threads.blas_num_threads() == 2


def test_small_work_runs_on_the_calling_thread(restore_threads):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba's pool has one thread")
    threads.set_num_threads(2)
    assert _run_softmax_kernel(rows=1) == 1          # 512 elements: not worth a launch
    assert _run_softmax_kernel(rows=256) == 2


def test_thread_count_applies_in_other_python_threads(restore_threads):
    # numba's count is per calling thread: a kernel entered from a new thread must sync too.
    threads.set_num_threads(1)
    seen = []
    t = threading.Thread(target=lambda: seen.append(_run_softmax_kernel()))
    t.start()
    t.join()
    assert seen == [1]


# -- JIT cost: compiled once, cached on disk ---------------------------------------------------
def _workload(n, dtype):
    """Forward and backward of a small CNN step touching most kernel families."""
    rng = np.random.default_rng(n)
    x = pe.Tensor(rng.standard_normal((n, 3, 9 + n, 8)).astype(dtype), requires_grad=True)
    w = pe.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(dtype), requires_grad=True)
    dw = pe.Tensor(rng.standard_normal((4, 1, 3, 3)).astype(dtype), requires_grad=True)
    y = F.relu(F.conv2d(x, w, padding=1))
    y = F.conv2d(y, dw, groups=4, padding=1)
    y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
    y = F.adaptive_avg_pool2d(y, 1).reshape(n, 4)
    loss = F.cross_entropy(y, pe.tensor(np.arange(n) % 4)) + F.log_softmax(y, dim=1).sum()
    loss.backward()


def test_each_signature_compiles_once():
    disps = numba_cpu.dispatchers()
    with pe.use_backend("numba"):
        _workload(2, np.float32)
        before = {name: len(d.signatures) for name, d in disps.items()}
        # other shapes, a non-contiguous input upstream: no new signature anywhere
        _workload(3, np.float32)
        _workload(5, np.float32)
    after = {name: len(d.signatures) for name, d in disps.items()}
    assert after == before
    for name, d in disps.items():
        sigs = [str(s) for s in d.signatures]
        assert len(sigs) == len(set(sigs)), name


def test_every_kernel_is_disk_cached():
    for name, d in numba_cpu.dispatchers().items():
        assert d._cache.__class__.__name__ == "FunctionCache", name


_SECOND_PROCESS = """
    import json
    import numpy as np
    import pyengine as pe
    nb = pe.backends.get("numba")
    nb.softmax_forward(np.ones((3, 5), np.float64), 1)
    status = nb.cache_status()
    print(json.dumps({k: status[k] for k in ("compiled_here", "loaded_here", "kernels")}))
"""


def test_second_process_loads_from_the_cache():
    run_python(_SECOND_PROCESS)                   # compiles if the cache is cold
    second = run_python(_SECOND_PROCESS)
    assert second["compiled_here"] == 0 and second["loaded_here"] >= 1, second


def test_cache_status_for_info():
    status = backends.get("numba").cache_status()
    assert {"warm", "kernels", "kernels_cached", "signatures_cached", "cache_dirs",
            "compiled_here", "loaded_here", "numba", "threading_layer"} <= set(status)
    assert status["kernels"] == len(numba_cpu.dispatchers()) > 0
    assert 0 <= status["kernels_cached"] <= status["kernels"]
    assert status["warm"] == (status["kernels_cached"] == status["kernels"])


# -- the vectorisable exp --------------------------------------------------------------------
@_common.jit
def _exp_all(x, y):
    for i in range(x.shape[0]):
        y[i] = _common.fast_exp(x[i])


@pytest.mark.parametrize("dtype,max_ulp", [(np.float32, 2.0), (np.float64, 2.0)])
def test_fast_exp_accuracy_and_special_values(dtype, max_ulp):
    info = np.finfo(dtype)
    lo, hi = np.log(info.tiny), np.log(info.max)
    x = np.linspace(lo + 0.01, hi - 0.01, 200001).astype(dtype)
    y = np.empty_like(x)
    _exp_all(x, y)
    exact = np.exp(x.astype(np.longdouble))
    ulps = np.abs(y - exact) / np.spacing(exact.astype(dtype))
    assert float(ulps.max()) <= max_ulp
    special = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, lo - 30, hi + 1], dtype=dtype)
    ys = np.empty_like(special)
    _exp_all(special, ys)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(special)
    np.testing.assert_array_equal(ys[:5], expected[:5])
    assert ys[5] < info.tiny and ys[6] == np.inf


@_common.jit
def _log_all(x, y):
    for i in range(x.shape[0]):
        y[i] = _common.fast_log64(x[i])


def test_fast_log64_accuracy_and_special_values():
    x = np.concatenate([np.geomspace(1e-320, 1e308, 200001), np.linspace(0.5, 2.0, 20001)])
    y = np.empty_like(x)
    _log_all(x, y)
    exact = np.log(x.astype(np.longdouble))
    ok = np.abs(exact) > 1e-300
    ulps = np.abs(y[ok] - exact[ok]) / np.spacing(np.abs(exact[ok]).astype(np.float64))
    assert float(ulps.max()) <= 2.0
    special = np.array([0.0, -0.0, np.inf, -1.0, np.nan, 1.0])
    ys = np.empty_like(special)
    _log_all(special, ys)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(ys, np.log(special))


@_common.jit
def _tanh_all(x, y):
    for i in range(x.shape[0]):
        y[i] = _common.fast_tanh(x[i])


def test_fast_tanh_float32_accuracy():
    x = np.concatenate([np.linspace(-12, 12, 400001), np.geomspace(1e-30, 1, 10001),
                        [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    y = np.empty_like(x)
    _tanh_all(x, y)
    exact = np.tanh(x.astype(np.float64))
    finite = np.isfinite(x)
    ulps = np.abs(y[finite] - exact[finite]) / np.spacing(np.abs(exact[finite]).astype(np.float32))
    assert float(ulps.max()) <= 2.0
    np.testing.assert_array_equal(y[~finite], np.tanh(x[~finite]))
    assert np.signbit(y[-4]) and y[-4] == 0     # tanh(-0.0) = -0.0
