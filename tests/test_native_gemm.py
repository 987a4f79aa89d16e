"""pyengine._cpu's GEMM and the convolutions built on it, beyond the shared backend tests:
every edge of the register tiles and cache blocks, the fused epilogue (alpha, beta, biases,
relu with NaN), the threaded paths of sgemm and of each conv algorithm on shapes big enough to
be split, determinism, the algorithm list and the `auto` choice, and the argument checks of the
bindings.

Shape letters: sgemm C (M x N) = op(A) (M x K) op(B) (K x N); conv N C H W / K R S / P Q.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F
from pyengine.backends.numpy_ref import conv2d as ref
from pyengine.params import Conv2dParams

from .helpers import assert_close

_cpu = pytest.importorskip("pyengine._cpu", reason="pyengine._cpu is not built")
from pyengine.backends.native_cpu import to_native  # noqa: E402
from pyengine.backends.native_cpu.conv2d import CONV2D_ALGORITHMS  # noqa: E402

MR, NR = _cpu.gemm_register_tile()


@pytest.fixture
def threads():
    """Set the native thread count for one test, restoring it afterwards."""
    before = _cpu.get_num_threads()
    yield _cpu.set_num_threads
    _cpu.set_num_threads(before)


def gemm_ref(a, b, trans_a, trans_b):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    return (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)


def check_gemm(m, n, k, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, row_bias=False,
               col_bias=False, relu=False, parallel=True, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy() if beta != 0.0 else np.full((m, n), np.nan, np.float32)  # beta 0: never read
    rb = rng.standard_normal(m).astype(np.float32) if row_bias else None
    cb = rng.standard_normal(n).astype(np.float32) if col_bias else None
    _cpu.sgemm(a, b, c, trans_a, trans_b, alpha, beta, rb, cb, relu, parallel)
    want = alpha * gemm_ref(a, b, trans_a, trans_b)
    scale = abs(alpha) * gemm_ref(np.abs(a), np.abs(b), trans_a, trans_b)
    if beta != 0.0:
        want += beta * c0.astype(np.float64)
        scale += abs(beta) * np.abs(c0)
    for bias, shape in ((rb, (m, 1)), (cb, (1, n))):
        if bias is not None:
            want += bias.reshape(shape)
            scale += np.abs(bias).reshape(shape)
    if relu:
        want = np.maximum(want, 0.0)
    assert_close(c, want, 1e-6, 1e-5, name=f"sgemm {m}x{n}x{k}", scale=scale)
    return c


# -- the GEMM ------------------------------------------------------------------------------------
EDGE_SIZES = sorted({1, 2, MR - 1, MR, MR + 1, NR - 1, NR, NR + 1, 2 * NR + 3})


@pytest.mark.parametrize("m", EDGE_SIZES)
@pytest.mark.parametrize("n", EDGE_SIZES)
def test_sgemm_tile_edges(m, n):
    check_gemm(m, n, 7 + m % 5)


@pytest.mark.parametrize("k", [1, 2, 3, 17, 383, 384, 385, 800, 1300])
def test_sgemm_k_blocks(k):
    check_gemm(19, 61, k)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_sgemm_transposes(trans_a, trans_b):
    check_gemm(45, 83, 97, trans_a, trans_b)
    check_gemm(3, 200, 33, trans_a, trans_b)


@pytest.mark.parametrize("kwargs", [
    dict(alpha=0.5), dict(beta=1.0), dict(alpha=-2.0, beta=0.25), dict(row_bias=True),
    dict(col_bias=True), dict(relu=True), dict(row_bias=True, col_bias=True, relu=True, beta=1.5),
])
def test_sgemm_epilogue(kwargs):
    check_gemm(37, 101, 450, **kwargs)  # two K blocks: the epilogue runs on the last only
    check_gemm(9, 50, 5, **kwargs)


def test_sgemm_k_zero_applies_the_epilogue():
    c = np.full((3, 4), 2.0, np.float32)
    rb = np.arange(3, dtype=np.float32)
    _cpu.sgemm(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), c, beta=0.5,
               row_bias=rb, relu=True)
    np.testing.assert_array_equal(c, np.maximum(1.0 + rb[:, None], 0) * np.ones((1, 4)))
    c = np.full((2, 2), np.nan, np.float32)
    _cpu.sgemm(np.zeros((2, 0), np.float32), np.zeros((0, 2), np.float32), c)  # beta 0
    np.testing.assert_array_equal(c, 0.0)


def test_sgemm_relu_keeps_nan():
    a = np.ones((MR + 1, 3), np.float32)
    a[1, 0] = np.nan
    b = -np.ones((3, NR + 2), np.float32)
    c = np.empty((MR + 1, NR + 2), np.float32)
    _cpu.sgemm(a, b, c, relu=True)
    assert np.isnan(c[1]).all()  # NaN propagates through relu, as in PyTorch
    assert (c[np.arange(MR + 1) != 1] == 0).all()


@pytest.mark.parametrize("shape", [(256, 1500, 300), (1500, 40, 300), (600, 700, 900)])
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_sgemm_threads_give_the_same_bits(shape, nthreads, threads):
    """Columns or rows split between threads, each element summed in one fixed order: the
    result is bitwise the same for any thread count and for the serial entry point."""
    m, n, k = shape
    threads(1)
    serial = check_gemm(m, n, k, parallel=False)
    threads(nthreads)
    par = check_gemm(m, n, k)
    np.testing.assert_array_equal(par, serial)
    np.testing.assert_array_equal(check_gemm(m, n, k), par)


# -- linear --------------------------------------------------------------------------------------
def test_linear_kernels_on_the_gemm():
    rng = np.random.default_rng(3)
    cpu = pe.backends.get("cpu")
    x = rng.standard_normal((70, 130)).astype(np.float32)
    w = rng.standard_normal((45, 130)).astype(np.float32)
    b = rng.standard_normal(45).astype(np.float32)
    dy = rng.standard_normal((70, 45)).astype(np.float32)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    ax, aw, ady = (np.abs(a) for a in (x64, w64, dy64))
    assert_close(cpu.linear_forward(x, w, b), x64 @ w64.T + b, 1e-6, 1e-5,
                 scale=ax @ aw.T + np.abs(b))
    assert_close(cpu.linear_forward(x, w, None), x64 @ w64.T, 1e-6, 1e-5, scale=ax @ aw.T)
    assert_close(cpu.linear_backward_data(dy, w), dy64 @ w64, 1e-6, 1e-5, scale=ady @ aw)
    assert_close(cpu.linear_backward_weight(dy, x), dy64.T @ x64, 1e-6, 1e-5, scale=ady.T @ ax)
    assert_close(cpu.linear_backward_bias(dy), dy64.sum(0), 1e-6, 1e-5, scale=ady.sum(0))


# -- conv2d: the algorithm list, auto, errors ----------------------------------------------------
def test_algorithm_lists_agree():
    assert tuple(_cpu.conv2d_algorithms()) == CONV2D_ALGORITHMS
    assert pe.backends.get("cpu").algorithms("conv2d") == CONV2D_ALGORITHMS
    assert ("cpu", "im2col_gemm") in pe.backends.implementations("conv2d")


@pytest.mark.parametrize("direction", ["forward", "backward_data", "backward_weight"])
@pytest.mark.parametrize("x_shape,w_shape,p", [
    ((8, 256, 56, 56), (64, 256, 1, 1), Conv2dParams()),
    ((8, 64, 56, 56), (64, 64, 3, 3), Conv2dParams(1, 1, 1, 1, 1, 1)),
    ((8, 3, 224, 224), (64, 3, 7, 7), Conv2dParams(2, 2, 3, 3, 3, 3)),
])
def test_auto_picks_a_listed_algorithm(direction, x_shape, w_shape, p):
    assert _cpu.conv2d_auto_choice(direction, x_shape, w_shape, to_native(p)) in CONV2D_ALGORITHMS


def test_unknown_algorithm_names_the_valid_ones():
    x = pe.tensor(np.zeros((1, 2, 5, 5), np.float32))
    w = pe.tensor(np.zeros((3, 2, 3, 3), np.float32))
    with pe.use_backend("cpu"):
        with pytest.raises(ValueError, match=r"unknown conv2d algorithm 'nope'; valid: 'auto', "
                                             r"'im2col_gemm', 'implicit_gemm'"):
            F.conv2d(x, w, algo="nope")


@pytest.mark.parametrize("bad,exc,match", [
    (dict(x=np.zeros((1, 2, 5, 5), np.float64)), TypeError, "x must be a float32 array"),
    (dict(x=np.zeros((1, 2, 5, 10), np.float32)[..., ::2]), ValueError, "C-contiguous"),
    (dict(x=np.zeros((1, 3, 5, 5), np.float32)), ValueError, "do not match groups=1"),
    (dict(out=np.zeros((1, 3, 4, 3), np.float32)), ValueError, r"needs shape \(1, 3, 3, 3\)"),
    (dict(b=np.zeros(4, np.float32)), ValueError, r"b must have shape \(3,\)"),
    (dict(x=np.zeros((2, 5, 5), np.float32)), ValueError, "x must be 4-d"),
    (dict(w=np.zeros((3, 2, 7, 7), np.float32)), ValueError, "does not fit the padded input"),
])
def test_conv_binding_checks(bad, exc, match):
    args = dict(x=np.zeros((1, 2, 5, 5), np.float32), w=np.zeros((3, 2, 3, 3), np.float32),
                b=None, out=np.zeros((1, 3, 3, 3), np.float32))
    args.update(bad)
    with pytest.raises(exc, match=match):
        _cpu.conv2d_forward(args["x"], args["w"], args["b"], args["out"],
                            to_native(Conv2dParams()), "auto")


def test_conv_binding_refuses_overlap():
    buf = np.zeros(200, np.float32)
    x = buf[:50].reshape(1, 2, 5, 5)
    out = buf[40:67].reshape(1, 3, 3, 3)
    with pytest.raises(ValueError, match="out must not overlap x"):
        _cpu.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), None, out,
                            to_native(Conv2dParams()), "auto")
    with pytest.raises(ValueError, match="must not overlap"):
        _cpu.linear_forward(buf[:20].reshape(4, 5), np.zeros((3, 5), np.float32), None,
                            buf[10:22].reshape(4, 3))


def test_gemm_binding_checks():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="op\\(a\\)'s column count K is 4"):
        _cpu.sgemm(a, np.zeros((5, 2), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="float32"):
        _cpu.sgemm(a.astype(np.float64), np.zeros((4, 2), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="row_bias"):
        _cpu.sgemm(a, np.zeros((4, 2), np.float32), np.zeros((3, 2), np.float32),
                   row_bias=np.zeros(2, np.float32))


# -- conv2d: the threaded paths of every algorithm -----------------------------------------------
# Big enough to be split between threads; each case steers a different split: few column
# panels and many rows (shared B panels), one image (channels split in backward-data), few
# weight tiles (pixels split, private sums), many groups, strides and dilation.
THREADED_CASES = [
    ((4, 64, 7, 7), (96, 64, 3, 3), Conv2dParams(1, 1, 1, 1, 1, 1)),
    ((1, 32, 30, 26), (40, 32, 3, 3), Conv2dParams(2, 2, 1, 1, 1, 1)),
    ((3, 3, 40, 36), (16, 3, 5, 5), Conv2dParams(2, 2, 2, 2, 2, 2)),
    ((2, 48, 20, 21), (48, 12, 3, 3), Conv2dParams(1, 1, 2, 2, 2, 2, 2, 2, 4)),
    ((2, 96, 17, 15), (64, 96, 1, 1), Conv2dParams()),
    ((2, 24, 19, 23), (32, 24, 4, 3), Conv2dParams(3, 2, 0, 2, 1, 0, 1, 2, 1)),
    ((2, 1, 30, 31), (32, 1, 3, 3), Conv2dParams(1, 1, 1, 1, 1, 1)),
    ((2, 8, 21, 75), (24, 8, 3, 3), Conv2dParams(2, 2, 1, 1, 1, 0)),
]


@pytest.mark.parametrize("algo", ("auto",) + CONV2D_ALGORITHMS)
@pytest.mark.parametrize("case", THREADED_CASES, ids=lambda c: f"x{c[0]}-w{c[1]}")
def test_conv_threaded_paths_match_reference(algo, case, threads, monkeypatch):
    monkeypatch.setenv("PYENGINE_POISON", "1")
    x_shape, w_shape, p = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    y_ref = ref.conv2d_forward(x, w, b, p)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    ax, aw, ab, ady = (np.abs(a).astype(np.float64) for a in (x, w, b, dy))
    want = {"y": (y_ref, ref.conv2d_forward(ax, aw, ab, p)),
            "dx": (ref.conv2d_backward_data(dy, w, x_shape, p),
                   ref.conv2d_backward_data(ady, aw, x_shape, p)),
            "dw": (ref.conv2d_backward_weight(dy, x, w_shape, p),
                   ref.conv2d_backward_weight(ady, ax, w_shape, p)),
            "db": (ref.conv2d_backward_bias(dy), ref.conv2d_backward_bias(ady))}
    cpu = pe.backends.get("cpu")
    for nthreads in (1, 2):
        threads(nthreads)
        runs = [{"y": cpu.conv2d_forward(x, w, b, p, algo),
                 "dx": cpu.conv2d_backward_data(dy, w, x_shape, p, algo),
                 "dw": cpu.conv2d_backward_weight(dy, x, w_shape, p, algo),
                 "db": cpu.conv2d_backward_bias(dy)} for _ in range(2)]
        for key, (r, s) in want.items():
            assert_close(runs[0][key], r, 1e-5, 1e-4, name=f"{algo} {key} threads={nthreads}",
                         scale=s)
            np.testing.assert_array_equal(runs[1][key], runs[0][key],
                                          err_msg=f"{algo} {key}: not deterministic")
