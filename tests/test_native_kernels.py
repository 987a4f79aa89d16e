"""The memory-bound native CPU kernels (pooling, softmax, losses, batch norm, activations) beyond
what the shared ``test_backends_match_reference`` tests check: the bindings refuse bad arrays and
out-of-range indices with TypeError / ValueError instead of crashing, results are bitwise
reproducible (across runs with 2 threads, and across thread counts where the kernels promise
it), every output element is written (PYENGINE_POISON), edge cases of the reference semantics
(all-padding max windows, NaN, ties, logits of 1e4) hold, the kernels' exp is within an ulp, and
every compiled ISA path agrees with the reference.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pyengine import backends
from pyengine.backends.numpy_ref import NumpyBackend
from pyengine.params import ActivationParams, LossParams, Pool2dParams

from .helpers import assert_close
from .tolerances import tolerance

try:
    import pyengine._cpu as _cpu
    from pyengine.backends.native_cpu import get_num_threads, set_num_threads, to_native
except ImportError:
    _cpu = None

pytestmark = pytest.mark.skipif(_cpu is None, reason="pyengine._cpu is not built")

ROOT = Path(__file__).resolve().parents[1]
REF = NumpyBackend()


def _cpu_backend():
    return backends.get("cpu")


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def threads():
    """Run with the given thread count, then restore the previous one."""
    before = get_num_threads()
    yield set_num_threads
    set_num_threads(before)


# -- the bindings refuse bad arguments ---------------------------------------------------------

P22 = Pool2dParams(2, 2, 2, 2)


def _pool_arrays():
    x = _rand((2, 3, 8, 8))
    y = np.empty((2, 3, 4, 4), np.float32)
    idx = np.empty((2, 3, 4, 4), np.int64)
    return x, y, idx


def test_pool_bindings_reject_bad_arrays():
    x, y, idx = _pool_arrays()
    p = to_native(P22)
    with pytest.raises(TypeError, match="float32"):
        _cpu.max_pool2d_forward(x.astype(np.float64), y, idx, p)
    with pytest.raises(TypeError, match="int64"):
        _cpu.max_pool2d_forward(x, y, idx.astype(np.int32), p)
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu.max_pool2d_forward(np.asfortranarray(x), y, idx, p)
    with pytest.raises(ValueError, match="shape"):
        _cpu.max_pool2d_forward(x, y[:, :, :3], idx, p)
    with pytest.raises(ValueError, match="4-d"):
        _cpu.avg_pool2d_forward(x[0], y[0], p)
    with pytest.raises(ValueError, match="overlap"):
        _cpu.avg_pool2d_forward(x, x.reshape(-1)[:y.size].reshape(y.shape), p)
    ro = np.empty_like(y)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _cpu.avg_pool2d_forward(x, ro, p)
    with pytest.raises(ValueError, match="dilation"):
        _cpu.avg_pool2d_forward(x, y, to_native(Pool2dParams(2, 2, 2, 2, dilation_h=2)))
    with pytest.raises(ValueError, match="params"):
        _cpu.max_pool2d_forward(x, y, idx, to_native(Pool2dParams(2, 2, 0, 2)))
    with pytest.raises(ValueError, match="shape"):
        _cpu.max_pool2d_backward(y, idx, np.empty((2, 3, 10, 10), np.float32), p)
    with pytest.raises(ValueError):
        _cpu.adaptive_avg_pool2d_forward(x, np.empty((2, 4, 1, 1), np.float32))


@pytest.mark.parametrize("bad", [-1, 64, 2**40, -(2**62)])
def test_unpool_bindings_refuse_out_of_range_indices(bad):
    x = _rand((1, 2, 4, 4))
    idx = np.arange(16, dtype=np.int64).reshape(1, 1, 4, 4).repeat(2, axis=1) * 3
    idx[0, 1, 2, 3] = bad
    y = np.zeros((1, 2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="outside the unpooled plane"):
        _cpu.max_unpool2d_forward(x, idx, y)
    assert not y.any(), "nothing may be written before the check"
    dx = np.zeros_like(x)
    with pytest.raises(ValueError, match="outside the unpooled plane"):
        _cpu.max_unpool2d_backward(y, idx, dx)


def test_max_pool_backward_ignores_garbage_indices():
    """The backward gathers: an index pointing anywhere decides only whether a dy is added, so
    garbage indices cannot make it write out of bounds."""
    dy = _rand((1, 2, 4, 4))
    idx = np.random.default_rng(0).integers(-2**62, 2**62, size=dy.shape).astype(np.int64)
    dx = np.full((1, 2, 8, 8), np.nan, np.float32)
    _cpu.max_pool2d_backward(dy, idx, dx, to_native(P22))
    assert np.array_equal(dx, np.zeros_like(dx))


def test_loss_bindings_reject_bad_arrays():
    logits = _rand((5, 7))
    t = np.array([0, 6, 3, -100, 2], np.int64)
    loss, lse = np.empty((), np.float32), np.empty(5, np.float64)
    _cpu.cross_entropy_forward(logits, t, None, loss, lse, "mean", -100, 0.0)
    for bad in (7, -1, 2**40):
        tb = t.copy()
        tb[1] = bad
        with pytest.raises(ValueError, match="class index"):
            _cpu.cross_entropy_forward(logits, tb, None, loss, lse, "mean", -100, 0.0)
        with pytest.raises(ValueError, match="class index"):
            _cpu.cross_entropy_backward(np.ones((), np.float32), logits, tb, None, lse,
                                        np.empty_like(logits), "mean", -100, 0.0)
        with pytest.raises(ValueError, match="class index"):
            _cpu.nll_loss_forward(logits, tb, None, loss, "mean", -100)
    with pytest.raises(TypeError, match="float64"):
        _cpu.cross_entropy_forward(logits, t, None, loss, lse.astype(np.float32), "mean", -100,
                                   0.0)
    with pytest.raises(TypeError, match="int64"):
        _cpu.cross_entropy_forward(logits, t.astype(np.int32), None, loss, lse, "mean", -100,
                                   0.0)
    with pytest.raises(ValueError, match="weight"):
        _cpu.cross_entropy_forward(logits, t, np.ones(6, np.float32), loss, lse, "mean", -100,
                                   0.0)
    with pytest.raises(ValueError, match="reduction"):
        _cpu.cross_entropy_forward(logits, t, None, loss, lse, "avg", -100, 0.0)
    with pytest.raises(ValueError, match="loss"):
        _cpu.cross_entropy_forward(logits, t, None, np.empty(4, np.float32), lse, "none", -100,
                                   0.0)
    with pytest.raises(ValueError, match="shape"):
        _cpu.cross_entropy_backward(np.ones((), np.float32), logits, t, None, lse,
                                    np.empty((5, 6), np.float32), "mean", -100, 0.0)
    with pytest.raises(ValueError, match="overlap"):
        _cpu.cross_entropy_backward(np.ones((), np.float32), logits, t, None, lse, logits,
                                    "mean", -100, 0.0)
    with pytest.raises(ValueError, match="shape"):
        _cpu.elementwise_loss_forward("mse", logits, logits[:4], loss, "mean")
    with pytest.raises(ValueError, match="kind"):
        _cpu.elementwise_loss_forward("huber", logits, logits.copy(), loss, "mean")


def test_batch_norm_and_activation_bindings_reject_bad_arrays():
    x = _rand((2, 3, 5))
    c = np.ones(3, np.float32)
    y, m, s = np.empty_like(x), np.empty(3, np.float32), np.empty(3, np.float32)
    with pytest.raises(ValueError, match="3-d"):
        _cpu.batch_norm_forward_train(x[0], None, None, 1e-5, y[0], m, s)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        _cpu.batch_norm_forward_train(x, np.ones(4, np.float32), None, 1e-5, y, m, s)
    with pytest.raises(TypeError, match="float32"):
        _cpu.batch_norm_forward_eval(x, c.astype(np.float64), c, None, None, 1e-5, y)
    with pytest.raises(ValueError, match="overlap"):
        _cpu.batch_norm_forward_train(x, None, None, 1e-5, x, m, s)
    with pytest.raises(ValueError, match="kind"):
        _cpu.activation_forward(x, y, "gelu", 0.01)
    with pytest.raises(ValueError, match="shape"):
        _cpu.activation_backward(x, x, x, y[:1], "relu", 0.01)


# -- semantics at the edges --------------------------------------------------------------------

def test_max_pool_all_padding_windows():
    """Dilation can make windows whose taps all fall in the padding (here along a width of 1:
    taps at -1 and 1): -inf and index -1, and no gradient."""
    x = _rand((1, 2, 5, 1))
    x[0, 1, 2, 0] = np.nan
    p = Pool2dParams(2, 2, 2, 1, pad_h=1, pad_w=1, dilation_h=1, dilation_w=2)
    cpu = _cpu_backend()
    y, idx = cpu.max_pool2d_forward(x, p)
    ry, ridx = REF.max_pool2d_forward(x, p)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(y, ry)
    assert (idx == -1).all() and (y == -np.inf).all()
    dy = _rand(y.shape, 1)
    dx = cpu.max_pool2d_backward(dy, idx, x.shape, p)
    np.testing.assert_array_equal(dx, np.zeros_like(x))


@pytest.mark.parametrize("k,s,pad,ceil", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True),
                                          (3, 1, 1, False), (2, 1, 0, True), (4, 3, 2, True),
                                          (1, 2, 0, False)])
def test_pooling_fast_paths_on_odd_planes(k, s, pad, ceil):
    """The specialised 2x2 / 3x3 kernels next to the general edges: odd sizes, ties, NaN."""
    x = np.round(_rand((2, 3, 13, 17), 3) * 2).astype(np.float32)  # many ties
    x[1, 2, 5, 6] = np.nan
    p = Pool2dParams(k, k, s, s, pad, pad, ceil_mode=ceil)
    cpu = _cpu_backend()
    y, idx = cpu.max_pool2d_forward(x, p)
    ry, ridx = REF.max_pool2d_forward(x, p)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(y, ry)
    dy = _rand(y.shape, 4)
    atol, rtol = tolerance("avg_pool2d", np.float32)
    assert_close(cpu.max_pool2d_backward(dy, idx, x.shape, p),
                 REF.max_pool2d_backward(dy, ridx, x.shape, p), atol, rtol)
    for cip in (True, False):
        pa = Pool2dParams(k, k, s, s, pad, pad, ceil_mode=ceil, count_include_pad=cip)
        assert_close(cpu.avg_pool2d_forward(x, pa), REF.avg_pool2d_forward(x, pa), atol, rtol)
        assert_close(cpu.avg_pool2d_backward(dy, x.shape, pa),
                     REF.avg_pool2d_backward(dy, x.shape, pa), atol, rtol)


@pytest.mark.parametrize("shape", [(1, 4, 1024, 1025), (2, 1, 1500, 1500)])
def test_max_pool_backward_large_planes(shape):
    """Large planes; few planes split into row blocks, each task gathering into its own rows."""
    x = _rand(shape, 6)
    p = Pool2dParams(3, 3, 2, 2, 1, 1)
    cpu = _cpu_backend()
    y, idx = cpu.max_pool2d_forward(x, p)
    dy = _rand(y.shape, 7)
    np.testing.assert_array_equal(cpu.max_pool2d_backward(dy, idx, x.shape, p),
                                  REF.max_pool2d_backward(dy, idx, x.shape, p))


@pytest.mark.parametrize("p", [
    Pool2dParams(2, 2, 2, 2, ceil_mode=True),  # 2x2 fast path, a last window half outside
    Pool2dParams(3, 3, 3, 3, 1, 1),  # 3x3 fast path next to padded edges
    Pool2dParams(2, 3, 3, 3, 1, 0, ceil_mode=True),  # stride > kernel: rows no window reaches
    Pool2dParams(2, 2, 3, 4, 1, 1, dilation_h=2, dilation_w=2),  # columns between taps
    Pool2dParams(1, 1, 2, 2),
])
@pytest.mark.parametrize("shape", [(2, 3, 13, 17), (1, 1, 301, 203)])
def test_max_pool_backward_disjoint_windows(p, shape):
    """Windows that do not overlap: dx is gathered in one pass, every element written once (the
    NaN fill would show one left out), in whole planes and in row blocks (a single plane)."""
    x = np.round(_rand(shape, 8) * 2).astype(np.float32)  # ties
    y, idx = _cpu_backend().max_pool2d_forward(x, p)
    dy = _rand(y.shape, 9)
    dx = np.full(x.shape, np.nan, np.float32)
    _cpu.max_pool2d_backward(dy, idx, dx, to_native(p))
    np.testing.assert_array_equal(dx, REF.max_pool2d_backward(dy, idx, x.shape, p))


@pytest.mark.parametrize("p", [P22, Pool2dParams(3, 3, 2, 2, 1, 1)])
def test_max_pool_backward_ignores_indices_outside_their_window(p):
    """An index that names an element outside its window's rows (or, for windows that do not
    overlap, its columns) contributes nothing, however the planes are split into tasks."""
    dy = np.ones((1, 1, 4, 4), np.float32)
    idx = np.zeros(dy.shape, np.int64)  # every window names element (0, 0)
    dx = np.full((1, 1, 8, 8), np.nan, np.float32)
    _cpu.max_pool2d_backward(dy, idx, dx, to_native(p))
    expected = np.zeros_like(dx)
    # Only windows whose rows hold row 0 may add there: the first row of windows (and, without
    # overlap, only its first window, whose columns hold column 0).
    expected[0, 0, 0, 0] = 1.0 if p == P22 else 4.0
    np.testing.assert_array_equal(dx, expected)


def test_global_average_pool_path():
    x = _rand((3, 5, 7, 7))
    cpu = _cpu_backend()
    atol, rtol = tolerance("adaptive_avg_pool2d", np.float32)
    assert_close(cpu.adaptive_avg_pool2d_forward(x, (1, 1)),
                 REF.adaptive_avg_pool2d_forward(x, (1, 1)), atol, rtol)
    dy = _rand((3, 5, 1, 1), 1)
    np.testing.assert_array_equal(cpu.adaptive_avg_pool2d_backward(dy, x.shape),
                                  REF.adaptive_avg_pool2d_backward(dy, x.shape))


def kernel_exp(cpu, v, columns):
    """exp(v) as log_softmax's backward computes it: dx = dy - exp(y) * sum(dy), with a first
    element y = -inf, dy = -1 and every other dy = 0, is exactly exp(y) after the first. The
    values run along a row (columns=False) or down the columns of a (1, D, I) tensor."""
    v = np.asarray(v, np.float32)
    y = np.concatenate([[-np.inf], v]).astype(np.float32)
    dy = np.zeros_like(y)
    dy[0] = -1.0
    if not columns:
        return cpu.log_softmax_backward(y[None], dy[None], 1)[0, 1:]
    split = lambda a: np.ascontiguousarray(a.reshape(-1, 1).repeat(3, 1)[None])  # noqa: E731
    return cpu.log_softmax_backward(split(y), split(dy), 1)[0, 1:, 0]


def exp_ulps(v, e):
    """(ulps from float64 exp where that is a normal float, over 2^-125; the results below)."""
    ref = np.exp(v.astype(np.float64))
    normal = (ref >= 2.0 ** -125) & (ref <= np.finfo(np.float32).max)
    ulp = np.ldexp(1.0, np.frexp(ref[normal])[1] - 24)
    return np.abs(e[normal] - ref[normal]) / ulp, e[ref < 2.0 ** -125]


@pytest.mark.parametrize("columns", [False, True])
def test_exp_within_one_ulp(columns):
    """The kernels' exp (vec_math.h; the AVX-512 and AVX2 paths fuse multiply-adds, the
    baseline's 1.18 ulp is checked in its own process below): both its general form and the
    cheaper form for arguments up to 88, which log_softmax's backward takes unless its y holds
    a larger value, on every float32 step of a dense sweep."""
    cpu = _cpu_backend()
    rng = np.random.default_rng(0)
    nonpositive = np.concatenate([-rng.uniform(0, 90, 200_000), -rng.uniform(0, 1, 20_000),
                                  [0.0, -0.0, -86.9, -86.89, -87.0, -1000.0, -3e38, -np.inf]])
    general = np.concatenate([rng.uniform(-90, 88.72, 200_000), [88.0, 88.3, 88.7, 88.72]])
    bound = 1.0 if _cpu.isa() != "baseline" else 1.25
    for v in (nonpositive, general):
        ulps, flushed = exp_ulps(v.astype(np.float32), kernel_exp(cpu, v, columns))
        assert ulps.max() <= bound, ulps.max()
        assert ((flushed >= 0) & (flushed < 2.0 ** -125)).all()
    overflow = kernel_exp(cpu, [88.73, 89.0, 100.0, 1e30, np.inf, np.nan], columns)
    np.testing.assert_array_equal(overflow[:5], np.inf)
    assert np.isnan(overflow[5])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_stable_for_large_logits(reduction, smoothing):
    """Logits near 1e4: the float64 log-sum-exp keeps the gradient at float precision, and a
    float32 lse (from another backend's forward) makes the backward recompute it."""
    rng = np.random.default_rng(5)
    logits = (1e4 + rng.standard_normal((33, 50)) * 3).astype(np.float32)
    logits[::4] -= 2e4
    t = rng.integers(0, 50, 33).astype(np.int64)
    t[3] = -100
    w = rng.uniform(0.5, 2.0, 50).astype(np.float32)
    p = LossParams(reduction=reduction, label_smoothing=smoothing)
    cpu = _cpu_backend()
    atol, rtol = tolerance("cross_entropy", np.float32)
    loss, lse = cpu.cross_entropy_forward(logits, t, w, p)
    rloss, rlse = REF.cross_entropy_forward(logits, t, w, p)
    assert lse.dtype == np.float64
    assert_close(loss, rloss, atol, rtol)
    dloss = (_rand(33, 2) if reduction == "none" else np.asarray(0.7, np.float32))
    ref = REF.cross_entropy_backward(dloss, logits, t, w, rlse, p)
    assert_close(cpu.cross_entropy_backward(dloss, logits, t, w, lse, p), ref, atol, rtol)
    assert_close(cpu.cross_entropy_backward(dloss, logits, t, w, rlse, p), ref, atol, rtol)
    probs = rng.dirichlet(np.ones(50), 33).astype(np.float32)
    loss, lse = cpu.cross_entropy_forward(logits, probs, w, p)
    rloss, rlse = REF.cross_entropy_forward(logits, probs, w, p)
    assert_close(loss, rloss, atol, rtol)
    ref = REF.cross_entropy_backward(dloss, logits, probs, w, rlse, p)
    assert_close(cpu.cross_entropy_backward(dloss, logits, probs, w, lse, p), ref, atol, rtol)
    assert_close(cpu.cross_entropy_backward(dloss, logits, probs, w, None, p), ref, atol, rtol)


def test_cross_entropy_all_rows_ignored_is_nan():
    logits = _rand((4, 3))
    t = np.full(4, -100, np.int64)
    loss, _ = _cpu_backend().cross_entropy_forward(logits, t, None, LossParams())
    assert np.isnan(loss)


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activations_on_special_values(kind):
    x = np.array([0.0, -0.0, 1e-6, -1e-6, 0.29, 0.31, -0.3, 5.0, -20.0, 44.0, -90.0, 1e30,
                  np.inf, -np.inf, np.nan], np.float32)
    x = np.concatenate([x, _rand(1000) * 4])
    p = ActivationParams(kind, 0.2)
    cpu = _cpu_backend()
    atol, rtol = tolerance("activation", np.float32)
    y = cpu.activation_forward(x, p)
    assert_close(y, REF.activation_forward(x, p), atol, rtol)
    dy = _rand(x.shape, 1)
    assert_close(cpu.activation_backward(dy, x, y, p), REF.activation_backward(dy, x, y, p),
                 atol, rtol)


def test_batch_norm_statistics_far_from_zero():
    """A channel whose mean is large next to its spread: the per-block two-pass variance."""
    x = (1e3 + _rand((16, 3, 700))).astype(np.float32)
    x[:, 1] *= 1e-3
    cpu = _cpu_backend()
    atol, rtol = tolerance("batch_norm", np.float32)
    for got, ref in zip(cpu.batch_norm_forward_train(x, None, None, 1e-5),
                        REF.batch_norm_forward_train(x, None, None, 1e-5)):
        assert_close(got, ref, atol, rtol)


# -- determinism and poison --------------------------------------------------------------------

def _all_kernels():
    """name -> zero-argument callable returning the outputs of one native kernel call."""
    cpu = _cpu_backend()
    x = _rand((3, 8, 29, 31))
    pm = Pool2dParams(3, 3, 2, 2, 1, 1, ceil_mode=True)
    y, idx = cpu.max_pool2d_forward(x, pm)
    dy = _rand(y.shape, 1)
    pa = Pool2dParams(2, 2, 2, 2, count_include_pad=False)
    ya = cpu.avg_pool2d_forward(x, pa)
    logits = _rand((300, 97), 2) * 4
    t = np.random.default_rng(3).integers(0, 97, 300).astype(np.int64)
    w = np.abs(_rand(97, 4)) + 0.5
    lp = LossParams(label_smoothing=0.1)
    _, lse = cpu.cross_entropy_forward(logits, t, w, lp)
    bn = _rand((4, 16, 1000), 5)
    g = np.abs(_rand(16, 6))
    _, mean, invstd = cpu.batch_norm_forward_train(bn, g, g, 1e-5)
    act = _rand(100000, 7)
    ap = ActivationParams("tanh")
    one = np.ones((), np.float32)
    return {
        "max_pool2d_forward": lambda: cpu.max_pool2d_forward(x, pm),
        "max_pool2d_backward": lambda: (cpu.max_pool2d_backward(dy, idx, x.shape, pm),),
        "avg_pool2d_forward": lambda: (cpu.avg_pool2d_forward(x, pa),),
        "avg_pool2d_backward": lambda: (cpu.avg_pool2d_backward(ya, x.shape, pa),),
        "adaptive_forward": lambda: (cpu.adaptive_avg_pool2d_forward(x, (5, 7)),),
        "adaptive_backward": lambda: (cpu.adaptive_avg_pool2d_backward(_rand((3, 8, 5, 7)),
                                                                       x.shape),),
        "global_forward": lambda: (cpu.adaptive_avg_pool2d_forward(x, (1, 1)),),
        "unpool_forward": lambda: (cpu.max_unpool2d_forward(y, idx, x.shape[2:]),),
        "unpool_backward": lambda: (cpu.max_unpool2d_backward(x, idx),),
        "cross_entropy_forward": lambda: cpu.cross_entropy_forward(logits, t, w, lp),
        "cross_entropy_backward": lambda: (cpu.cross_entropy_backward(one, logits, t, w, lse,
                                                                      lp),),
        "nll_loss_forward": lambda: (cpu.nll_loss_forward(logits, t, w, LossParams()),),
        "mse_loss_forward": lambda: (cpu.mse_loss_forward(act, act[::-1].copy(),
                                                          LossParams()),),
        "batch_norm_forward_train": lambda: cpu.batch_norm_forward_train(bn, g, g, 1e-5),
        "batch_norm_backward": lambda: cpu.batch_norm_backward(bn, bn[::-1].copy(), g, mean,
                                                               invstd, True),
        "activation_forward": lambda: (cpu.activation_forward(act, ap),),
    }


def test_bitwise_reproducible_and_independent_of_thread_count(threads):
    """Same inputs, same bits: twice with 2 threads, and once with 1 thread (these kernels fix
    their summation order by the shape alone)."""
    kernels = _all_kernels()
    threads(2)
    first = {name: [np.array(o) for o in fn()] for name, fn in kernels.items()}
    again = {name: [np.array(o) for o in fn()] for name, fn in kernels.items()}
    threads(1)
    single = {name: [np.array(o) for o in fn()] for name, fn in kernels.items()}
    for name in kernels:
        for a, b, c in zip(first[name], again[name], single[name]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: rerun with 2 threads")
            np.testing.assert_array_equal(a, c, err_msg=f"{name}: 1 thread vs 2")


def test_every_output_element_written(monkeypatch):
    """Under PYENGINE_POISON outputs start as NaN (indices -1); no NaN may survive where the
    inputs hold none."""
    monkeypatch.setenv("PYENGINE_POISON", "1")
    for name, fn in _all_kernels().items():
        for out in fn():
            out = np.asarray(out)
            if out.dtype.kind == "f":
                assert not np.isnan(out).any(), f"{name} left elements unwritten"


# -- every compiled ISA path -------------------------------------------------------------------

def _isa_paths():
    info = _cpu.build_info() if _cpu is not None else {"isa_paths": []}
    feats = info.get("cpu_features", {})
    paths = []
    for isa in info["isa_paths"]:
        need = {"avx2": ("avx2", "fma"), "avx512": ("avx512f", "avx512bw", "avx512vl")}.get(isa, ())
        if all(feats.get(f, False) for f in need):
            paths.append(isa)
    return paths


@pytest.mark.parametrize("isa", _isa_paths())
def test_isa_path_matches_reference(isa):
    """Each path in its own process (PYENGINE_ISA is read at import)."""
    code = textwrap.dedent("""
        import numpy as np
        from pyengine import backends
        from pyengine.backends.numpy_ref import NumpyBackend
        from pyengine.params import ActivationParams, LossParams, Pool2dParams
        import pyengine._cpu as _cpu
        assert _cpu.isa() == ISA, _cpu.isa()
        cpu, ref = backends.get("cpu"), NumpyBackend()
        rng = np.random.default_rng(0)
        def close(a, b, tol=1e-4):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            assert np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True), np.abs(a - b).max()
        x = rng.standard_normal((2, 5, 15, 13)).astype(np.float32)
        for p in (Pool2dParams(2, 2, 2, 2), Pool2dParams(3, 3, 2, 2, 1, 1, ceil_mode=True),
                  Pool2dParams(3, 3, 1, 1, 1, 1), Pool2dParams(3, 2, 2, 1, 1, 1, 2, 1)):
            y, i = cpu.max_pool2d_forward(x, p)
            ry, ri = ref.max_pool2d_forward(x, p)
            assert np.array_equal(i, ri) and np.array_equal(y, ry)
            close(cpu.max_pool2d_backward(y, i, x.shape, p), ref.max_pool2d_backward(y, i, x.shape, p))
            if p.dilation_h == 1:
                close(cpu.avg_pool2d_forward(x, p), ref.avg_pool2d_forward(x, p))
                close(cpu.avg_pool2d_backward(y, x.shape, p), ref.avg_pool2d_backward(y, x.shape, p))
        for o in ((1, 1), (4, 6)):
            close(cpu.adaptive_avg_pool2d_forward(x, o), ref.adaptive_avg_pool2d_forward(x, o))
        logits = (rng.standard_normal((64, 130)) * 5).astype(np.float32)
        t = rng.integers(0, 130, 64).astype(np.int64)
        w = rng.uniform(0.5, 2, 130).astype(np.float32)
        for lp in (LossParams(), LossParams(reduction="none", label_smoothing=0.2)):
            loss, lse = cpu.cross_entropy_forward(logits, t, w, lp)
            rloss, rlse = ref.cross_entropy_forward(logits, t, w, lp)
            close(loss, rloss, 1e-5)
            d = np.ones(loss.shape, np.float32)
            close(cpu.cross_entropy_backward(d, logits, t, w, lse, lp),
                  ref.cross_entropy_backward(d, logits, t, w, rlse, lp), 1e-5)
        a = rng.standard_normal(5000).astype(np.float32) * 5
        for k in ("relu", "leaky_relu", "sigmoid", "tanh"):
            ap = ActivationParams(k)
            y = cpu.activation_forward(a, ap)
            close(y, ref.activation_forward(a, ap), 1e-5)
            close(cpu.activation_backward(a, a, y, ap), ref.activation_backward(a, a, y, ap), 1e-5)
        for name in ("softmax", "log_softmax"):
            for shape in ((5, 1003), (2, 21, 37)):
                sx = (rng.standard_normal(shape) * 4).astype(np.float32)
                sdy = rng.standard_normal(shape).astype(np.float32)
                sy = getattr(cpu, name + "_forward")(sx, 1)
                close(sy, getattr(ref, name + "_forward")(sx, 1), 1e-5)
                close(getattr(cpu, name + "_backward")(sy, sdy, 1),
                      getattr(ref, name + "_backward")(sy, sdy, 1), 1e-5)
        from tests.test_native_kernels import exp_ulps, kernel_exp
        v = rng.uniform(-90, 88.72, 100_000).astype(np.float32)
        for v in (v, -np.abs(v)):
            for columns in (False, True):
                ulps, flushed = exp_ulps(v, kernel_exp(cpu, v, columns))
                assert ulps.max() <= (1.25 if ISA == "baseline" else 1.0), ulps.max()
                assert ((flushed >= 0) & (flushed < 2.0 ** -125)).all()
        bn = rng.standard_normal((3, 4, 77)).astype(np.float32)
        for g, r in zip(cpu.batch_norm_forward_train(bn, None, None, 1e-5),
                        ref.batch_norm_forward_train(bn, None, None, 1e-5)):
            close(g, r)
        print("ok")
    """).replace("ISA", repr(isa))
    env = dict(os.environ, PYENGINE_ISA=isa)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
