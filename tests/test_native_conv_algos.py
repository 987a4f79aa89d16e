"""The specialised conv2d algorithms of the cpu backend -- ``winograd_2x2_3x3``,
``winograd_4x4_3x3``, ``direct_depthwise``, ``direct_small_c`` -- beyond what the shared
``tests/test_conv2d.py::test_backends_match_reference`` checks: each algorithm on the shapes it
specialises in (odd sizes that leave partial tiles and partial vectors, asymmetric and large
padding, groups, channel multipliers, strides and dilations), both Winograd loop orders, the
fallback to a general algorithm for shapes an algorithm does not handle, bitwise
reproducibility, poisoned outputs, the accuracy of F(4x4,3x3), and every compiled ISA path.

Shape letters: N batch, C input channels, K output channels, H W input plane, R S kernel.
Comparisons are scaled by |x|.|w| as in test_conv2d.py (the reference run on absolute values in
float64), with the conv2d float32 tolerance of tests/tolerances.py.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pyengine import backends
from pyengine.backends.numpy_ref import NumpyBackend
from pyengine.params import Conv2dParams

from .helpers import assert_close
from .tolerances import tolerance

try:
    import pyengine._cpu as _cpu
    from pyengine.backends.native_cpu import get_num_threads, set_num_threads
except ImportError:
    _cpu = None

pytestmark = pytest.mark.skipif(_cpu is None, reason="pyengine._cpu is not built")

ROOT = Path(__file__).resolve().parents[1]
REF = NumpyBackend()
ATOL, RTOL = tolerance("conv2d", np.float32)


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Conv2dParams from (sh, sw), (top, bottom, left, right), (dh, dw)."""
    return Conv2dParams(stride[0], stride[1], *pad, dilation[0], dilation[1], groups)


def _run(algo, x, w, b, dy, p):
    """(y, dx, dw) of the cpu backend with ``algo``."""
    cpu = backends.get("cpu")
    return (cpu.conv2d_forward(x, w, b, p, algo),
            cpu.conv2d_backward_data(dy, w, x.shape, p, algo),
            cpu.conv2d_backward_weight(dy, x, w.shape, p, algo))


def _reference(x, w, b, dy, p):
    """(y, dx, dw) of numpy_ref, and their |x|.|w|-style scales in float64."""
    ref = (REF.conv2d_forward(x, w, b, p), REF.conv2d_backward_data(dy, w, x.shape, p),
           REF.conv2d_backward_weight(dy, x, w.shape, p))
    ax, aw, ady = (np.abs(a.astype(np.float64)) for a in (x, w, dy))
    scale = (REF.conv2d_forward(ax, aw, None, p), REF.conv2d_backward_data(ady, aw, x.shape, p),
             REF.conv2d_backward_weight(ady, ax, w.shape, p))
    return ref, scale


def check_algo(algo, x_shape, w_shape, p, bias=True, seed=0, monkeypatch=None):
    """Forward, backward-data and backward-weight of ``algo`` against numpy_ref, with every
    output poisoned first (an element a kernel never writes stays NaN and fails)."""
    if monkeypatch is not None:
        monkeypatch.setenv("PYENGINE_POISON", "1")
    x, w = _rand(x_shape, seed), _rand(w_shape, seed + 1)
    b = _rand((w_shape[0],), seed + 2) if bias else None
    P, Q = p.output_hw(x_shape[2], x_shape[3], w_shape[2], w_shape[3])
    dy = _rand((x_shape[0], w_shape[0], P, Q), seed + 3)
    got = _run(algo, x, w, b, dy, p)
    ref, scale = _reference(x, w, b, dy, p)
    for name, g, r, s in zip(("forward", "grad of input", "grad of weight"), got, ref, scale):
        assert g.dtype == np.float32
        assert_close(g, r, ATOL, RTOL, name=f"{algo} {name} x{x_shape} w{w_shape} {p}", scale=s)
    return got


# -- each algorithm on the shapes it specialises in ---------------------------------------------

# (x shape, w shape, params): partial tiles at the bottom and right (P, Q not multiples of 2 or
# 4), planes smaller than one tile, asymmetric padding, padding beyond the kernel (backward-data
# then runs with a negative offset, i.e. crops), groups, C = 1 and C large.
WINOGRAD_CASES = [
    ((2, 5, 9, 11), (7, 5, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((1, 3, 6, 6), (4, 3, 3, 3), _params()),
    ((3, 16, 13, 7), (9, 16, 3, 3), _params(pad=(2, 0, 1, 3))),
    ((2, 3, 6, 7), (4, 3, 3, 3), _params(pad=(3, 3, 3, 3))),
    ((2, 4, 7, 7), (6, 2, 3, 3), _params(pad=(1, 1, 1, 1), groups=2)),
    ((1, 1, 5, 6), (1, 1, 3, 3), _params()),
    ((1, 130, 10, 9), (20, 130, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((2, 8, 1, 5), (3, 8, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((2, 24, 30, 37), (40, 24, 3, 3), _params(pad=(1, 1, 1, 1))),  # several tile blocks
    # Dilations: interleaved sub-planes, some of them smaller than a tile or empty.
    ((2, 16, 15, 13), (24, 16, 3, 3), _params(pad=(2, 2, 2, 2), dilation=(2, 2))),
    ((2, 4, 11, 12), (6, 2, 3, 3), _params(pad=(4, 1, 0, 3), dilation=(3, 2), groups=2)),
    ((1, 2, 7, 7), (3, 2, 3, 3), _params(pad=(6, 6, 6, 6), dilation=(3, 3))),
    ((2, 5, 17, 9), (7, 5, 3, 3), _params(pad=(1, 2, 3, 0), dilation=(4, 1))),
]


def _case_id(case):
    x, w, p = case
    return (f"x{x}-w{w}-s{p.stride_h}{p.stride_w}-p{p.pad_top}{p.pad_bottom}{p.pad_left}"
            f"{p.pad_right}-d{p.dilation_h}{p.dilation_w}-g{p.groups}").replace(" ", "")


@pytest.mark.parametrize("order", ["auto", "tiles", "k"])
@pytest.mark.parametrize("algo", ["winograd_2x2_3x3", "winograd_4x4_3x3"])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=_case_id)
def test_winograd(case, algo, order, monkeypatch):
    """Both loop orders (tile blocks outer, output-channel groups outer) on every case:
    PYENGINE_WINOGRAD_ORDER forces one; 'auto' lets the kernel choose by shape."""
    if order != "auto":
        monkeypatch.setenv("PYENGINE_WINOGRAD_ORDER", order)
    check_algo(algo, *case, monkeypatch=monkeypatch)


# Winograd's weight gradient splits its work by blocks of channels (one thread per block) when
# there are enough blocks, else by tiles (a dU per thread, added in thread order): both, with
# thread counts that divide the work unevenly, and more threads than tiles.
WINOGRAD_WEIGHT_CASES = [
    ((1, 130, 6, 5), (260, 130, 3, 3), _params(pad=(1, 1, 1, 1))),  # 6 channel blocks
    ((2, 24, 30, 37), (40, 24, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((1, 20, 2, 3), (17, 20, 3, 3), _params(pad=(1, 1, 1, 1))),  # one or two tiles
    ((2, 16, 15, 13), (24, 16, 3, 3), _params(pad=(2, 2, 2, 2), dilation=(2, 2))),
]


@pytest.mark.parametrize("n_threads", [1, 3, 4])
@pytest.mark.parametrize("algo", ["winograd_2x2_3x3", "winograd_4x4_3x3"])
@pytest.mark.parametrize("case", WINOGRAD_WEIGHT_CASES, ids=_case_id)
def test_winograd_weight_gradient_threads(case, algo, n_threads, threads, monkeypatch):
    threads(n_threads)
    check_algo(algo, *case, monkeypatch=monkeypatch)


# Channel multipliers 1 to 3, strides, dilations, asymmetric padding, kernels up to 7x7 and
# non-square, rows wider than one pass of the kernels (64 outputs with AVX-512), H = 1.
DEPTHWISE_CASES = [
    ((2, 12, 14, 15), (12, 1, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((2, 8, 13, 13), (16, 1, 3, 3), _params(stride=(2, 2))),
    ((2, 3, 9, 9), (9, 1, 3, 3), _params(stride=(2, 2), pad=(1, 0, 0, 1))),
    ((2, 3, 7, 8), (3, 1, 4, 3), _params(pad=(1, 2, 2, 2), dilation=(1, 2))),
    ((1, 4, 20, 37), (8, 1, 5, 5), _params(stride=(3, 2), pad=(2, 1, 0, 3), dilation=(2, 1))),
    ((1, 2, 40, 150), (4, 1, 7, 7), _params(stride=(2, 3), pad=(3, 3, 3, 3))),
    ((3, 4, 6, 6), (4, 1, 3, 3), _params(pad=(3, 3, 3, 3))),
    ((2, 5, 1, 70), (5, 1, 1, 3), _params(pad=(0, 0, 1, 1))),
    ((1, 2, 5, 5), (2, 1, 1, 1), _params()),
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=_case_id)
def test_direct_depthwise(case, monkeypatch):
    x_shape = case[0]
    p = case[2]
    p = Conv2dParams(p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right,
                     p.dilation_h, p.dilation_w, x_shape[1])
    check_algo("direct_depthwise", x_shape, case[1], p, monkeypatch=monkeypatch)


# C = 1 .. 4; the mnist first layer and the 7x7 stride-2 stem (small); K not a multiple of any
# register block; rows shorter than one vector and longer than a pass; stride 3, dilation 2.
SMALL_C_CASES = [
    ((5, 1, 28, 28), (32, 1, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((2, 3, 23, 21), (8, 3, 7, 7), _params(stride=(2, 2), pad=(3, 3, 3, 3))),
    ((3, 1, 17, 19), (5, 1, 5, 5), _params(stride=(2, 2), pad=(2, 2, 2, 2))),
    ((2, 2, 30, 70), (33, 2, 3, 3), _params(pad=(1, 1, 1, 1))),
    ((2, 4, 11, 12), (5, 4, 3, 3), _params(pad=(2, 2, 2, 2), dilation=(2, 2))),
    ((2, 3, 13, 14), (4, 3, 3, 3), _params(stride=(3, 3))),
    ((2, 3, 12, 11), (4, 3, 3, 2), _params(stride=(2, 1), pad=(1, 1, 2, 2), dilation=(1, 2))),
    ((1, 1, 5, 6), (1, 1, 2, 2), _params()),
    ((2, 3, 6, 7), (4, 3, 2, 2), _params(pad=(3, 3, 3, 3))),
]


@pytest.mark.parametrize("case", SMALL_C_CASES, ids=_case_id)
def test_direct_small_c(case, monkeypatch):
    check_algo("direct_small_c", *case, monkeypatch=monkeypatch)


# -- fallbacks ----------------------------------------------------------------------------------

# Shapes each algorithm does not handle: it must still compute them (with a general algorithm).
FALLBACK_CASES = {
    "winograd_2x2_3x3": [((2, 3, 11, 10), (4, 3, 5, 5), _params(pad=(2, 2, 2, 2))),
                         ((2, 3, 11, 10), (4, 3, 3, 3), _params(stride=(2, 2))),
                         ((2, 3, 11, 10), (4, 3, 3, 3), _params(stride=(2, 1), dilation=(2, 1)))],
    "winograd_4x4_3x3": [((2, 3, 11, 10), (4, 3, 1, 3), _params()),
                         ((2, 3, 11, 10), (4, 3, 3, 3), _params(stride=(1, 2)))],
    "direct_depthwise": [((2, 4, 9, 8), (6, 4, 3, 3), _params(pad=(1, 1, 1, 1))),
                         ((2, 4, 9, 8), (6, 2, 3, 3), _params(groups=2))],
    "direct_small_c": [((2, 6, 9, 8), (5, 6, 3, 3), _params(pad=(1, 1, 1, 1))),
                       ((2, 4, 9, 8), (6, 2, 3, 3), _params(groups=2))],
}


@pytest.mark.parametrize("algo,case", [(a, c) for a, cs in FALLBACK_CASES.items() for c in cs],
                         ids=lambda v: v if isinstance(v, str) else _case_id(v))
def test_fallback_for_shapes_an_algorithm_does_not_handle(algo, case, monkeypatch):
    """Correct results; the forward is then exactly im2col_gemm's."""
    y, _, _ = check_algo(algo, *case, monkeypatch=monkeypatch)
    x, w = _rand(case[0], 0), _rand(case[1], 1)
    b = _rand((case[1][0],), 2)
    np.testing.assert_array_equal(y, backends.get("cpu").conv2d_forward(x, w, b, case[2],
                                                                        "im2col_gemm"))


def test_partial_support_runs_the_general_algorithm(monkeypatch):
    """direct_small_c's data gradient is that of auto."""
    cpu = backends.get("cpu")
    x, w, dy = _rand((2, 3, 9, 8), 0), _rand((4, 3, 3, 3), 1), _rand((2, 4, 9, 8), 2)
    p = _params(pad=(1, 1, 1, 1))
    auto_dx = cpu.conv2d_backward_data(dy, w, x.shape, p, "auto")
    np.testing.assert_array_equal(cpu.conv2d_backward_data(dy, w, x.shape, p, "direct_small_c"),
                                  auto_dx)


# -- im2col_gemm's forward at stride 2: the taps of (c, r) from one even/odd split ------------

# Stride-2 rows: padding on either side of the split (first column inside the padding, last
# taps past W), dilation along w (taps from both phases at offsets), stride 1 along h, a 7-wide
# kernel, odd and even widths, and C R S past a K block (384 rows with AVX-512, 256 with AVX2),
# so that a block ends inside a (c, r) group of taps (those take the one-tap gather).
STRIDE2_CASES = [
    ((2, 3, 23, 21), (8, 3, 7, 7), _params(stride=(2, 2), pad=(3, 3, 3, 3))),
    ((2, 5, 10, 17), (6, 5, 3, 3), _params(stride=(1, 2), pad=(1, 2, 0, 2), dilation=(1, 2))),
    ((1, 4, 9, 30), (5, 4, 2, 5), _params(stride=(2, 2), pad=(0, 1, 4, 1), dilation=(1, 3))),
    ((2, 20, 13, 12), (9, 20, 5, 5), _params(stride=(2, 2), pad=(2, 2, 2, 2))),
    ((2, 43, 11, 14), (10, 43, 3, 3), _params(stride=(2, 2), pad=(1, 1, 1, 1))),
]


@pytest.mark.parametrize("case", STRIDE2_CASES, ids=_case_id)
def test_im2col_stride2_phase_split(case, monkeypatch):
    check_algo("im2col_gemm", *case, monkeypatch=monkeypatch)


# -- im2col_gemm's weight gradient: both kernel forms, shifted-plane im2col rows --------------

# Stride 1 with Q == W builds im2col rows as shifted, masked copies of whole planes; the others
# gather run by run. Kg >= 32 (shifted) or >= 96 takes the broadcast GEMM, fewer the dot form.
# Planes smaller than a pixel block (the blocks then span several images), asymmetric padding
# that keeps Q == W, dilation, padding beyond the kernel (rows wholly outside the plane), groups.
IM2COL_WEIGHT_CASES = [
    ((9, 12, 7, 9), (40, 12, 3, 3), _params(pad=(1, 1, 1, 1))),               # GEMM, shifted
    ((9, 12, 7, 9), (20, 12, 3, 3), _params(pad=(1, 1, 1, 1))),               # dot, shifted
    ((3, 12, 9, 8), (33, 12, 3, 3), _params(pad=(0, 2, 0, 2))),               # asymmetric
    ((2, 12, 12, 11), (48, 12, 3, 3), _params(pad=(2, 2, 2, 2), dilation=(2, 2))),
    ((2, 8, 6, 10), (36, 8, 3, 5), _params(pad=(4, 3, 0, 4))),                # rows outside
    ((2, 24, 7, 9), (64, 12, 3, 3), _params(pad=(1, 1, 1, 1), groups=2)),
    ((3, 128, 6, 6), (100, 128, 1, 1), _params()),                            # 1x1
    ((3, 12, 9, 8), (100, 12, 3, 3), _params(stride=(2, 2), pad=(1, 1, 1, 1))),  # run by run
    # Stride 2, GEMM form: the even/odd split of all S taps, with panels of NR rows that cut a
    # (c, r) group, and output rows longer than NR.
    ((2, 6, 13, 12), (96, 6, 5, 5), _params(stride=(2, 2), pad=(2, 2, 2, 2))),
    ((1, 11, 5, 110), (96, 11, 3, 3), _params(stride=(2, 2), pad=(1, 1, 1, 1))),
    ((2, 12, 9, 8), (40, 12, 3, 3), _params(pad=(1, 1, 0, 0))),               # Q != W
]


@pytest.mark.parametrize("case", IM2COL_WEIGHT_CASES, ids=_case_id)
def test_im2col_weight_gradient(case, monkeypatch):
    check_algo("im2col_gemm", *case, monkeypatch=monkeypatch)


@pytest.mark.parametrize("n_threads", [2, 3])
def test_im2col_weight_gradient_threads_split_the_pixels(n_threads, threads, monkeypatch):
    """A small dW and many pixels: each thread sums its share of the pixels into a private dW
    (the GEMM form, and the dot form with few columns), then the copies are added."""
    threads(n_threads)
    check_algo("im2col_gemm", (4, 12, 30, 28), (40, 12, 3, 3), _params(pad=(1, 1, 1, 1)),
               monkeypatch=monkeypatch)
    check_algo("im2col_gemm", (4, 2, 30, 28), (8, 2, 3, 3), _params(pad=(1, 1, 1, 1)),
               monkeypatch=monkeypatch)


def test_im2col_weight_gradient_never_reads_padding_from_a_neighbouring_row():
    """inf in the first row and column of x: the kernel taps that only ever see padding there
    (r = R-1 for row 0, s = S-1 for column 0 with padding 1) must stay finite and exact, which
    a shifted-plane copy gets wrong if it leaves the wrapped-around columns unmasked."""
    cpu = backends.get("cpu")
    for k in (40, 20):  # the GEMM and the dot form
        x = _rand((3, 12, 6, 7), 5)
        w_shape = (k, 12, 3, 3)
        x[:, :, 0, :] = np.inf
        x[:, :, :, 0] = -np.inf
        p = _params(pad=(1, 1, 1, 1))
        dy = _rand((3, k, 6, 7), 6)
        dw = cpu.conv2d_backward_weight(dy, x, w_shape, p, "im2col_gemm")
        # Tap (2, 2) reads neither row 0 nor column 0: its reference is that of x with them 0.
        x0 = np.where(np.isfinite(x), x, np.float32(0))
        ref = REF.conv2d_backward_weight(dy, x0, w_shape, p)[:, :, 2, 2]
        scale = REF.conv2d_backward_weight(np.abs(dy), np.abs(x0), w_shape, p)[:, :, 2, 2]
        assert np.isfinite(dw[:, :, 2, 2]).all()
        assert_close(dw[:, :, 2, 2], ref, ATOL, RTOL, name=f"K={k}", scale=scale)


# -- the auto choice -----------------------------------------------------------------------------

def test_auto_picks_the_specialised_algorithms():
    """The rule of csrc/cpu/conv2d.cpp (conv2d_choose_*) on the benchmark shapes where these
    algorithms were measured faster than the GEMM-based ones ("any": close, either may run;
    None: a GEMM-based algorithm must run, as no specialised one applies)."""
    from pyengine.bench.shapes import CONV_SHAPES
    from pyengine.backends.native_cpu import to_native

    want = {"mnist_c1": ("direct_small_c", None, "any"),
            "stem": (None, None, "any"),
            "depthwise": ("direct_depthwise",) * 3}
    for name in ("mnist_c2", "vgg", "res_c2", "res_c4", "dilated"):
        want[name] = ("winograd_4x4_3x3",) * 3
    # A 7x7 plane: few 4x4 tiles for 512 x 512 channels, F(2x2) (and a GEMM for the weights).
    want["res_c5"] = ("winograd_2x2_3x3", "winograd_2x2_3x3", None)
    for s in CONV_SHAPES:
        p = to_native(s.params())
        for d, algo in zip(("forward", "backward_data", "backward_weight"),
                           want.get(s.name, (None,) * 3)):
            got = _cpu.conv2d_auto_choice(d, s.x_shape, s.w_shape, p)
            if algo == "any":
                continue
            if algo is None:
                assert got not in ("winograd_2x2_3x3", "winograd_4x4_3x3", "direct_depthwise",
                                   "direct_small_c"), (s.name, d, got)
            else:
                assert got == algo, (s.name, d, got)


# -- reproducibility ------------------------------------------------------------------------------

REPRO_CASES = {
    "winograd_2x2_3x3": ((2, 24, 30, 37), (40, 24, 3, 3), _params(pad=(1, 1, 1, 1))),
    "winograd_4x4_3x3": ((2, 64, 9, 9), (96, 64, 3, 3), _params(pad=(1, 1, 1, 1))),
    "direct_depthwise": ((2, 32, 40, 41), (64, 1, 3, 3),
                         _params(stride=(2, 2), pad=(1, 1, 1, 1), groups=32)),
    "direct_small_c": ((8, 3, 40, 43), (16, 3, 7, 7), _params(stride=(2, 2), pad=(3, 3, 3, 3))),
}


@pytest.fixture
def threads():
    before = get_num_threads()
    yield set_num_threads
    set_num_threads(before)


@pytest.mark.parametrize("algo", list(REPRO_CASES))
def test_bitwise_reproducible(algo, threads):
    """Twice with 2 threads: the same bits. With 1 thread too for what these kernels compute
    themselves, except the weight gradients of the Winograd algorithms and direct_small_c, which
    add one partial sum per thread (in thread order); the general algorithm that computes
    direct_small_c's data gradient promises a fixed result per thread count only."""
    x_shape, w_shape, p = REPRO_CASES[algo]
    x, w, b = _rand(x_shape, 0), _rand(w_shape, 1), _rand((w_shape[0],), 2)
    P, Q = p.output_hw(x_shape[2], x_shape[3], w_shape[2], w_shape[3])
    dy = _rand((x_shape[0], w_shape[0], P, Q), 3)
    threads(2)
    first, again = _run(algo, x, w, b, dy, p), _run(algo, x, w, b, dy, p)
    threads(1)
    single = _run(algo, x, w, b, dy, p)
    for i, name in enumerate(("forward", "grad of input", "grad of weight")):
        np.testing.assert_array_equal(first[i], again[i], err_msg=f"{algo} {name}: rerun")
        own = {"winograd_2x2_3x3": (0, 1), "winograd_4x4_3x3": (0, 1),
               "direct_depthwise": (0, 1, 2), "direct_small_c": (0,)}[algo]
        if i in own:
            np.testing.assert_array_equal(first[i], single[i], err_msg=f"{algo} {name}: 1 vs 2")


# -- accuracy of F(4x4,3x3) ---------------------------------------------------------------------

def test_winograd_4x4_accuracy_inside_the_float32_tolerance():
    """F(4x4,3x3)'s transforms multiply by up to 5 (input) and 8 (output) and its weight
    transform divides by 6 and 24, so its rounding error is larger than F(2x2,3x3)'s; it must
    still stay well inside the standard conv tolerance (rtol 1e-4 of |x|.|w|), which is why it
    shares that row of tests/tolerances.py. Measured on this case (and on the shapes of
    test_conv2d.py): max |error| / (|x|.|w|) about 1e-7 for F(2x2) and 1e-6 to 3e-6 for F(4x4)
    -- F(4x4) is 10-20x less accurate than F(2x2) yet ~40x inside rtol; asserted with a 4x margin."""
    x, w, dy = _rand((2, 256, 12, 12), 0), _rand((32, 256, 3, 3), 1), _rand((2, 32, 12, 12), 2)
    p = _params(pad=(1, 1, 1, 1))
    exact = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, p)
    scale = REF.conv2d_forward(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), None, p)
    exact_dx = REF.conv2d_backward_data(dy.astype(np.float64), w.astype(np.float64), x.shape, p)
    scale_dx = REF.conv2d_backward_data(np.abs(dy.astype(np.float64)),
                                        np.abs(w.astype(np.float64)), x.shape, p)
    exact_dw = REF.conv2d_backward_weight(dy.astype(np.float64), x.astype(np.float64), w.shape, p)
    scale_dw = REF.conv2d_backward_weight(np.abs(dy.astype(np.float64)),
                                          np.abs(x.astype(np.float64)), w.shape, p)
    cpu = backends.get("cpu")
    err = {}
    for algo in ("winograd_2x2_3x3", "winograd_4x4_3x3"):
        y = cpu.conv2d_forward(x, w, None, p, algo)
        dx = cpu.conv2d_backward_data(dy, w, x.shape, p, algo)
        dw = cpu.conv2d_backward_weight(dy, x, w.shape, p, algo)
        err[algo] = max(np.max(np.abs(y - exact) / scale), np.max(np.abs(dx - exact_dx) / scale_dx),
                        np.max(np.abs(dw - exact_dw) / scale_dw))
    assert err["winograd_2x2_3x3"] < RTOL / 100, err
    assert err["winograd_4x4_3x3"] < RTOL / 4, err


# -- every compiled ISA path ----------------------------------------------------------------------

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
    """A few cases of each algorithm in a process that runs one ISA path (PYENGINE_ISA is read
    at import)."""
    cases = ([("winograd_2x2_3x3", c) for c in WINOGRAD_CASES[:5] + WINOGRAD_CASES[-2:]] +
             [("winograd_4x4_3x3", c) for c in WINOGRAD_CASES[:5] + WINOGRAD_CASES[-2:]] +
             [("direct_depthwise", c) for c in DEPTHWISE_CASES[:6]] +
             [("direct_small_c", c) for c in SMALL_C_CASES[:7]])
    # Depthwise cases get groups = C here as in test_direct_depthwise.
    cases = [(a, (x, w, dataclasses.astuple(p)[:8] + ((x[1],) if a == "direct_depthwise" else
                                                       (p.groups,))))
             for a, (x, w, p) in cases]
    code = textwrap.dedent("""
        import pyengine._cpu as _cpu
        from pyengine.params import Conv2dParams
        from tests.test_native_conv_algos import check_algo
        assert _cpu.isa() == ISA, _cpu.isa()
        for algo, (x, w, p) in CASES:
            check_algo(algo, x, w, Conv2dParams(*p))
        print("ok")
    """).replace("ISA", repr(isa)).replace("CASES", repr(cases))
    env = dict(os.environ, PYENGINE_ISA=isa, PYENGINE_POISON="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
