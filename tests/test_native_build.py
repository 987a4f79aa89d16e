"""The native CPU module pyengine._cpu: it builds and imports, says how it was built, agrees with
the Python params helpers, checks its arguments instead of crashing, computes softmax like the
reference (edge cases included), honours PYENGINE_POISON, and when it is absent or disabled
pyengine degrades to the Python backends with one warning."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import platform
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import pyengine as pe
from pyengine import backends, params
from pyengine.backends.numpy_ref import softmax as ref

from .helpers import assert_close
from .tolerances import tolerance

try:
    import pyengine._cpu as _cpu
except ImportError:  # test_module_imports reports it; the rest skips
    _cpu = None

ROOT = Path(__file__).resolve().parents[1]
needs_native = pytest.mark.skipif(_cpu is None, reason="pyengine._cpu is not built")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with extra environment variables; check it exits 0."""
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# -- the build ---------------------------------------------------------------------------------

def test_module_imports():
    assert _cpu is not None, ("pyengine._cpu is missing: build it with `pip install -e .` "
                              "(or `pip install --no-build-isolation --no-deps -e .`)")
    assert "cpu" in backends.available()
    cpu = backends.get("cpu")
    assert type(cpu).__name__ == "NativeCpuBackend"
    assert cpu.dtypes == (np.dtype(np.float32),)


@needs_native
def test_build_info_keys():
    info = _cpu.build_info()
    for key in ("compiler", "compiler_path", "cxx_flags", "build_type", "openmp",
                "openmp_version", "pybind11_version", "isa_paths", "isa", "cpu_features",
                "sanitize", "cuda", "num_threads"):
        assert key in info, f"build_info() lacks {key!r}"
    assert info["compiler"].strip()
    assert "baseline" in info["isa_paths"]
    assert len(info["pybind11_version"].split(".")) == 3
    assert isinstance(info["openmp"], bool)
    assert (info["openmp_version"] is not None) == info["openmp"]
    # The module must run on SSE4.2-only CPUs: never -march=native, and the x86-64-v2 baseline.
    assert "native" not in info["cxx_flags"]
    if platform.machine() in ("x86_64", "AMD64") and "GNU" in info["compiler"]:
        assert "-march=x86-64-v2" in info["cxx_flags"] or "-msse4.2" in info["cxx_flags"]
    if info["build_type"] == "Release":
        assert "-O3" in info["cxx_flags"]


# -- params: one definition in Python, one in C++, the same answers ---------------------------

@needs_native
@pytest.mark.parametrize("name", ["Conv2dParams", "Pool2dParams"])
def test_params_fields_match(name):
    py_cls, native_cls = getattr(params, name), getattr(_cpu, name)
    fields = dataclasses.fields(py_cls)
    assert native_cls.fields == tuple(f.name for f in fields)
    native_default = native_cls()
    for f in fields:
        if f.default is not dataclasses.MISSING:
            assert getattr(native_default, f.name) == f.default, f.name
            assert type(getattr(native_default, f.name)) is type(f.default), f.name


@needs_native
def test_params_from_python_and_output_hw():
    rng = np.random.default_rng(1)
    for _ in range(300):
        c = params.Conv2dParams(*(int(v) for v in rng.integers(1, 4, 2)),
                                *(int(v) for v in rng.integers(0, 4, 4)),
                                *(int(v) for v in rng.integers(1, 4, 2)), int(rng.integers(1, 4)))
        nc = _cpu.Conv2dParams.from_python(c)
        assert all(getattr(nc, f) == getattr(c, f) for f in nc.fields)
        h, w, r, s = (int(v) for v in rng.integers(1, 20, 4))
        assert nc.output_hw(h, w, r, s) == c.output_hw(h, w, r, s)

        k = [int(v) for v in rng.integers(1, 5, 2)]
        p = params.Pool2dParams(*k, *(int(v) for v in rng.integers(1, 4, 2)),
                                int(rng.integers(0, k[0] // 2 + 1)),
                                int(rng.integers(0, k[1] // 2 + 1)),
                                *(int(v) for v in rng.integers(1, 3, 2)),
                                bool(rng.integers(2)), bool(rng.integers(2)), int(rng.integers(3)))
        np_ = _cpu.Pool2dParams.from_python(p)
        assert all(getattr(np_, f) == getattr(p, f) for f in np_.fields)
        assert np_.output_hw(h, w) == p.output_hw(h, w)
    assert "stride_h=" in repr(_cpu.Conv2dParams())


def _size_cases(rng):
    """Every combination of a small grid (where the edge cases live), then random larger ones."""
    grid = itertools.product(range(1, 9), range(1, 5), range(1, 5), range(0, 3), range(1, 4))
    yield from grid
    for _ in range(3000):
        yield (int(rng.integers(1, 300)), int(rng.integers(1, 12)), int(rng.integers(1, 7)),
               int(rng.integers(0, 6)), int(rng.integers(1, 5)))


@needs_native
def test_output_size_helpers_agree():
    rng = np.random.default_rng(0)
    dropped = 0  # ceil_mode cases whose last window would start in the right padding
    for size, kernel, stride, pad, dilation in _size_cases(rng):
        pad_after = pad + int(rng.integers(0, 2))  # 'same' padding: one more at the end
        assert _cpu.conv_output_size(size, kernel, stride, pad, pad_after, dilation) == \
            params.conv_output_size(size, kernel, stride, pad, pad_after, dilation), \
            (size, kernel, stride, pad, pad_after, dilation)
        for ceil_mode in (False, True):
            got = _cpu.pool_output_size(size, kernel, stride, pad, dilation, ceil_mode)
            want = params.pool_output_size(size, kernel, stride, pad, dilation, ceil_mode)
            assert got == want, (size, kernel, stride, pad, dilation, ceil_mode)
        plain = params.pool_output_size(size, kernel, stride, pad, dilation, False)
        num = size + 2 * pad - dilation * (kernel - 1) - 1
        if num >= 0 and num % stride and \
                params.pool_output_size(size, kernel, stride, pad, dilation, True) == plain:
            dropped += 1
        for output_padding in range(0, min(stride, dilation)):
            assert _cpu.conv_transpose_output_size(size, kernel, stride, pad, dilation,
                                                   output_padding) == \
                params.conv_transpose_output_size(size, kernel, stride, pad, dilation,
                                                  output_padding)
    assert dropped > 0, "the sweep never hit a ceil_mode window dropped for starting in padding"


@needs_native
def test_output_size_edge_cases():
    # Windows larger than the padded input: Python's floor division on a negative numerator.
    for args in [(1, 5, 1, 0, 0, 1), (2, 3, 2, 0, 0, 2), (3, 7, 3, 1, 0, 1), (1, 2, 4, 0, 0, 3)]:
        assert _cpu.conv_output_size(*args) == params.conv_output_size(*args), args
    # ceil_mode: the last window would start in the right padding, so it is dropped.
    assert params.pool_output_size(5, 2, 2, 1, 1, True) == 3
    assert _cpu.pool_output_size(5, 2, 2, 1, 1, True) == 3
    assert _cpu.pool_output_size(6, 3, 2, 1, 1, True) == params.pool_output_size(6, 3, 2, 1, 1, True)
    for stride in (0, -1):
        with pytest.raises(ValueError, match="stride"):
            _cpu.conv_output_size(5, 3, stride, 0, 0, 1)
        with pytest.raises(ValueError, match="stride"):
            _cpu.pool_output_size(5, 3, stride, 0, 1, False)


# -- the softmax kernels -----------------------------------------------------------------------

def _native(name, *arrays, dim):
    """Run ``name`` (e.g. 'softmax_forward') of the cpu backend."""
    return getattr(backends.get("cpu"), name)(*arrays, dim)


EDGE_SHAPES = [((1,), 0), ((5, 1), 1), ((1, 7), 1), ((3, 4, 1), 1), ((2, 1, 6), 1),
               ((17, 1000), 1), ((64, 10), 1), ((3, 33), 1), ((2, 21, 13, 11), 1),
               ((5, 3, 7), 0), ((4, 3000, 2), 1), ((2, 5, 1100), 1), ((3, 2, 17), -1)]


@needs_native
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", EDGE_SHAPES)
def test_softmax_kernels_match_reference(name, shape, dim):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x.reshape(-1)[::11] = 1e4    # outliers
    x.reshape(-1)[5::13] = -1e4
    dy = rng.standard_normal(shape).astype(np.float32)
    d = dim % len(shape)
    atol, rtol = tolerance(name, np.float32)
    y = _native(f"{name}_forward", x, dim=d)
    assert_close(y, getattr(ref, f"{name}_forward")(x.astype(np.float64), d), atol, rtol,
                 name=f"{name} forward")
    dx = _native(f"{name}_backward", y, dy, dim=d)
    dx_ref = getattr(ref, f"{name}_backward")(y.astype(np.float64), dy.astype(np.float64), d)
    assert_close(dx, dx_ref, atol, rtol, name=f"{name} backward")
    if name == "softmax":
        np.testing.assert_allclose(y.sum(axis=d), 1.0, rtol=1e-5)


@needs_native
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_special_values_like_numpy(name, dim):
    rows = [[1.0, 2.0, np.nan, 3.0], [np.inf, 1.0, 2.0, 3.0], [-np.inf] * 4,
            [-np.inf, 0.0, 1.0, 2.0], [1e4, -1e4, 0.0, 1e4], [88.0, -88.0, 0.0, 100.0],
            [np.nan] * 4, [0.0, 0.0, 0.0, 0.0]]
    x = np.array(rows, np.float32)
    if dim == 0:
        x = np.ascontiguousarray(x.T)  # the same rows, now as columns (the I > 1 kernels)
    got = _native(f"{name}_forward", x, dim=dim)
    with np.errstate(invalid="ignore"):  # inf - inf, in the reference and in the comparison
        want = getattr(ref, f"{name}_forward")(x.astype(np.float64), dim)
        assert_close(got, want, *tolerance(name, np.float32), name=name)


@needs_native
def test_exp_accuracy():
    # log_softmax_backward with dy = (1, 0, 0, ...) gives dx[j] = -exp(y[j]) for j > 0: the
    # kernels' exp, seen from Python. Within 2 ulp over the range where exp is a normal float.
    y = np.concatenate([[0.0], np.linspace(-86.5, 88.5, 400_001)]).astype(np.float32)
    dy = np.zeros_like(y)
    dy[0] = 1.0
    e = -_native("log_softmax_backward", y, dy, dim=0)[1:].astype(np.float64)
    exact = np.exp(y[1:].astype(np.float64))
    ulps = np.abs(e - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 2.0, f"exp off by {ulps.max():.2f} ulp at y={y[1:][ulps.argmax()]}"


@needs_native
def test_dispatch_float32_native_float64_numpy():
    assert backends.resolve("softmax", np.float32).name == "cpu"
    assert backends.resolve("log_softmax", np.float32).name == "cpu"
    # float64 goes down the auto order to the first Python backend that computes in float64.
    python_order = [n for n in ("numba", "numpy") if n in backends.available()]
    assert backends.resolve("softmax", np.float64).name == python_order[0]
    with pe.use_backend("cpu"):
        x = np.random.standard_normal((3, 5))
        y = pe.functional.softmax(pe.tensor(x), dim=1)
    assert y.dtype == np.float64  # never a silent downcast
    np.testing.assert_allclose(y.numpy(), ref.softmax_forward(x, 1), rtol=1e-12)


# -- the bindings refuse what they cannot run, with an exception ------------------------------

@needs_native
def test_bindings_reject_bad_arguments():
    x = np.random.standard_normal((4, 6)).astype(np.float32)
    out = np.empty_like(x)
    with pytest.raises(TypeError, match="float32"):
        _cpu.softmax_forward(x.astype(np.float64), out, 1)
    with pytest.raises(TypeError, match="float32"):
        _cpu.softmax_forward(x, out.astype(np.int32), 1)
    with pytest.raises(TypeError, match="float32"):
        _cpu.softmax_forward(x.astype(">f4"), out, 1)
    with pytest.raises(TypeError):
        _cpu.softmax_forward(x.tolist(), out, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu.softmax_forward(x.T, out.T.copy(), 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu.softmax_forward(x, np.empty((6, 4), np.float32).T, 1)
    with pytest.raises(ValueError, match="same shape"):
        _cpu.softmax_forward(x, np.empty((4, 5), np.float32), 1)
    with pytest.raises(ValueError, match="dim"):
        _cpu.softmax_forward(x, out, 2)
    with pytest.raises(ValueError, match="dimension"):
        _cpu.softmax_forward(np.ones((), np.float32), np.empty((), np.float32), 0)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _cpu.log_softmax_forward(x, readonly, 1)
    with pytest.raises(ValueError, match="overlap"):
        _cpu.softmax_forward(x, x, 1)
    y, dy = _native("softmax_forward", x, dim=1), np.ones_like(x)
    with pytest.raises(ValueError, match="same shape"):
        _cpu.softmax_backward(y, dy[:, :5].copy(), np.empty_like(x), 1)
    with pytest.raises(ValueError, match="overlap"):
        _cpu.log_softmax_backward(y, dy, dy, 1)
    # Empty arrays and negative dims are fine.
    _cpu.softmax_forward(np.empty((0, 3), np.float32), np.empty((0, 3), np.float32), 1)
    out2 = np.empty_like(x)
    _cpu.softmax_forward(x, out2, -1)
    np.testing.assert_allclose(out2, ref.softmax_forward(x, 1), rtol=1e-5, atol=1e-6)


# -- threads -----------------------------------------------------------------------------------

@needs_native
def test_threads_setting_and_determinism():
    before = _cpu.get_num_threads()
    assert before >= 1
    x = np.random.standard_normal((257, 515)).astype(np.float32)
    xc = np.random.standard_normal((8, 129, 200)).astype(np.float32)
    try:
        results = []
        for n in (1, 2, 3):
            _cpu.set_num_threads(n)
            expected = n if _cpu.build_info()["openmp"] else 1
            assert _cpu.get_num_threads() == expected
            results.append((_native("softmax_forward", x, dim=1),
                            _native("log_softmax_forward", xc, dim=1)))
        for r in results[1:]:  # each row/column block is one thread's work: identical bits
            assert np.array_equal(r[0], results[0][0]) and np.array_equal(r[1], results[0][1])
        with pytest.raises(ValueError):
            _cpu.set_num_threads(0)
    finally:
        _cpu.set_num_threads(before)


@needs_native
def test_kernels_from_several_python_threads():
    arrays = [np.random.default_rng(i).standard_normal((300, 301)).astype(np.float32)
              for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda a: _native("softmax_forward", a, dim=1), arrays))
    for a, y in zip(arrays, outs):
        assert_close(y, ref.softmax_forward(a.astype(np.float64), 1),
                     *tolerance("softmax", np.float32))


# -- poison and degradation (fresh interpreters) -----------------------------------------------

@needs_native
def test_poison_mode_outputs_fully_written():
    proc = run_python("""
        import json, numpy as np
        import pyengine as pe, pyengine.functional as F
        from pyengine.backends import get, new_output
        assert np.isnan(new_output((4,), np.float32)).all()      # poison is on
        rng = np.random.default_rng(0)
        bad = 0
        for shape, dim in [((33, 1000), 1), ((2, 21, 13, 11), 1), ((5, 3, 7), 0), ((7,), 0),
                           ((2, 5, 1100), 1), ((3, 700, 70), 1), ((4, 1), 1)]:
            x = rng.standard_normal(shape).astype(np.float32)
            cpu = get("cpu")
            for name in ("softmax", "log_softmax"):
                y = getattr(cpu, name + "_forward")(x, dim)
                dx = getattr(cpu, name + "_backward")(y, np.ones_like(x), dim)
                bad += int(not np.isfinite(y).all()) + int(not np.isfinite(dx).all())
            with pe.use_backend("cpu"):
                t = pe.tensor(x, requires_grad=True)
                F.log_softmax(t, dim=dim).sum().backward()
                bad += int(not np.isfinite(t.grad.numpy()).all())
        print(json.dumps({"bad": bad}))
    """, PYENGINE_POISON="1")
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"bad": 0}


_DEGRADED = """
    import json, sys, warnings
    {setup}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numpy as np
        import pyengine as pe, pyengine.functional as F
        from pyengine import backends
        x = np.array([[1.0, 2.0, 3.0]], np.float32)
        y = F.softmax(pe.tensor(x), dim=1).numpy()
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    print(json.dumps({{"warnings": runtime, "available": backends.available(),
                      "resolved": backends.resolve("softmax", np.float32).name,
                      "next_in_auto_order": [n for n in ("numba", "numpy")
                                             if n in backends.available()][0],
                      "y": y.tolist()}}))
"""


def _degraded(setup="", **env):
    proc = run_python(_DEGRADED.format(setup=setup), **env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_degraded(result, reason):
    assert len(result["warnings"]) == 1, result["warnings"]
    assert reason in result["warnings"][0] and "native CPU backend" in result["warnings"][0]
    assert "cpu" not in result["available"]
    assert result["resolved"] == result["next_in_auto_order"]
    np.testing.assert_allclose(result["y"], [[0.09003057, 0.24472847, 0.66524096]], rtol=1e-6)


def test_disable_native_warns_once_and_falls_back():
    _check_degraded(_degraded(PYENGINE_DISABLE_NATIVE="1"), "PYENGINE_DISABLE_NATIVE")


def test_missing_native_module_warns_once_and_falls_back():
    # None in sys.modules makes `import pyengine._cpu` fail as an absent file would.
    _check_degraded(_degraded(setup="sys.modules['pyengine._cpu'] = None"), "pyengine._cpu")


def test_stale_native_module_warns_once_and_falls_back():
    setup = ("import types; stale = types.ModuleType('pyengine._cpu'); "
             "stale.softmax_forward = print; sys.modules['pyengine._cpu'] = stale")
    _check_degraded(_degraded(setup=setup), "stale")
