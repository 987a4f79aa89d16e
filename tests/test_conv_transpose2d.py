"""conv_transpose2d: the numpy reference (through the three conv kernels) against PyTorch for the
forward and every gradient, float64 central differences, argument validation, and every other
backend x algorithm against the reference.

Shape letters: N batch, Cin input channels, Cout output channels, H W input plane, R S kernel.
Weights are (Cin, Cout/groups, R, S). Comparisons are scaled as in test_conv2d.py.
"""
import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F

from .helpers import gradcheck, implementations, noncontiguous
from .test_conv2d import DTYPES, check_backend_matches_reference, check_conv, make_inputs

OP = "conv_transpose2d"

# (x shape, w shape, bias?, kwargs)
CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 3), True, {}),
    ((2, 1, 4, 4), (1, 1, 3, 3), True, {}),  # C = 1
    ((1, 24, 4, 3), (24, 5, 3, 3), True, dict(padding=1)),  # larger C, Cout != Cin
    ((2, 3, 5, 7), (3, 4, 3, 3), True, dict(stride=2, padding=1, output_padding=1)),
    ((2, 3, 4, 5), (3, 2, 3, 2), True, dict(stride=(3, 2), padding=(0, 1),
                                            output_padding=(2, 1))),
    ((2, 3, 5, 6), (3, 2, 3, 3), True, dict(dilation=2, padding=2)),
    # output_padding >= stride but < dilation: the output has rows no input touches.
    ((2, 3, 5, 6), (3, 2, 3, 3), True, dict(dilation=2, output_padding=1)),
    ((2, 3, 4, 5), (3, 2, 2, 3), True, dict(stride=(1, 2), dilation=(2, 3),
                                            output_padding=(1, 2))),
    ((2, 4, 5, 5), (4, 3, 3, 3), True, dict(groups=2)),
    ((2, 6, 5, 4), (6, 1, 3, 2), True, dict(groups=3, stride=2, padding=(1, 0),
                                            output_padding=(1, 0), dilation=(1, 2))),
    ((2, 3, 6, 6), (3, 1, 3, 3), True, dict(groups=3, stride=2, padding=1)),  # depthwise
    ((2, 3, 6, 5), (3, 2, 3, 3), True, dict(groups=3)),  # depthwise, Cout = 2 Cin
    ((2, 5, 4, 6), (5, 3, 1, 1), True, {}),  # 1x1
    ((2, 5, 4, 6), (5, 3, 1, 1), True, dict(stride=2, output_padding=1)),  # 1x1 with gaps
    ((1, 2, 5, 4), (2, 3, 7, 7), True, dict(stride=2, padding=3, output_padding=1)),  # 7x7
    ((2, 3, 5, 6), (3, 4, 2, 5), True, dict(padding=(0, 2))),  # non-square
    ((2, 3, 1, 7), (3, 2, 1, 3), True, dict(stride=2)),
    ((3, 4, 5, 5), (4, 2, 3, 3), False, dict(stride=2)),  # no bias
    ((2, 4, 5, 4), (4, 3, 4, 4), False, dict(groups=2, stride=3, padding=2, output_padding=2)),
]


def _case_id(case):
    x_shape, w_shape, bias, kwargs = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"x{x_shape}-w{w_shape}{'' if bias else '-nobias'}-{kw}".replace(" ", "")


def _inputs(case, dtype):
    x_shape, w_shape, bias, kwargs = case
    cout = w_shape[1] * kwargs.get("groups", 1)
    return make_inputs(x_shape, w_shape, cout if bias else None, dtype), kwargs


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(case, dtype):
    (x, w, b), kwargs = _inputs(case, dtype)
    check_conv(OP, x, w, b, **kwargs)


@pytest.mark.parametrize("case", CASES[::3], ids=_case_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs(case, dtype):
    (x, w, b), kwargs = _inputs(case, dtype)
    check_conv(OP, noncontiguous(x), noncontiguous(w), None if b is None else noncontiguous(b),
               **kwargs)
    check_conv(OP, np.swapaxes(x, 2, 3), w, b, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, dict(stride=2, output_padding=1),
                                    dict(dilation=2, output_padding=1)])
def test_unbatched(dtype, kwargs):
    x, w, b = make_inputs((3, 5, 4), (3, 2, 3, 3), 2, dtype)
    y = check_conv(OP, x, w, b, **kwargs)
    assert y.ndim == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2, output_padding=1)])
def test_zero_size_batch(dtype, kwargs):
    x, w, b = make_inputs((0, 3, 5, 5), (3, 2, 3, 3), 2, dtype)
    y = check_conv(OP, x, w, b, **kwargs)
    assert y.shape[:2] == (0, 2)


@pytest.mark.parametrize("case", [
    ((2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 4, 3), (4, 1, 3, 2), dict(groups=2, stride=(1, 2), dilation=(2, 1),
                                      output_padding=(1, 1))),
    ((1, 3, 3, 4), (3, 1, 2, 3), dict(groups=3, stride=3, padding=(1, 0))),
])
def test_gradcheck(case):
    x_shape, w_shape, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[1] * kwargs.get("groups", 1), np.float64)
    with pe.use_backend("numpy"):
        gradcheck(lambda xt, wt, bt: F.conv_transpose2d(xt, wt, bt, **kwargs), [x, w, b])
        gradcheck(lambda xt, wt: F.conv_transpose2d(xt, wt, **kwargs), [x, w])


def test_is_the_data_gradient_of_conv2d():
    # <conv_transpose2d(x, w), v> == <x, conv2d(v, w)>: the two ops are adjoint.
    x, w, _ = make_inputs((2, 4, 5, 6), (4, 3, 3, 2), None, np.float64)
    kwargs = dict(stride=2, padding=1, dilation=(1, 2), groups=1)
    with pe.use_backend("numpy"):
        y = F.conv_transpose2d(x, w, output_padding=1, **kwargs).numpy()
        v = np.random.default_rng(3).standard_normal(y.shape)
        back = F.conv2d(v, w, **kwargs).numpy()
    assert back.shape == x.shape
    np.testing.assert_allclose((y * v).sum(), (x * back).sum(), rtol=1e-12)


def test_algo_and_float64():
    x, w, b = make_inputs((1, 2, 3, 3), (2, 3, 2, 2), 3, np.float64)
    with pe.use_backend("numpy"):
        y = F.conv_transpose2d(pe.tensor(x), pe.tensor(w), pe.tensor(b), algo="direct")
    assert y.dtype == np.float64 and y.shape == (1, 3, 4, 4)


# -- bad input ------------------------------------------------------------------------------
def _t(shape, dtype=np.float32):
    return pe.tensor(np.zeros(shape, dtype))


X, W = _t((2, 4, 5, 5)), _t((4, 3, 3, 3))


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((_t((5, 5)), W), {}, ValueError, r"input must be 3-d or 4-d.*\(5, 5\)"),
    ((_t((1, 2, 4, 5, 5)), W), {}, ValueError, r"input must be 3-d or 4-d"),
    ((X, _t((4, 3, 3))), {}, ValueError, r"weight must be 4-d.*\(4, 3, 3\)"),
    ((X, _t((6, 3, 3, 3))), {}, ValueError, r"4 channels, but weight of shape \(6, 3, 3, 3\) "
                                            r"expects 6"),
    ((X, _t((4, 3, 3, 3))), dict(groups=3), ValueError, r"multiple of groups=3"),
    ((_t((2, 0, 5, 5)), _t((0, 3, 3, 3))), {}, ValueError, r"multiple of groups=1"),
    ((X, _t((4, 0, 3, 3))), {}, ValueError, r"\(4, 0, 3, 3\) has no output channels"),
    ((X, W), dict(groups=0), ValueError, r"groups must be >= 1"),
    ((X, W, _t((4,))), {}, ValueError, r"bias must be 1-d with 3 elements.*\(4,\)"),
    ((X, W, _t((3,))), dict(groups=2), ValueError, r"bias must be 1-d with 6 elements"),
    ((X, W), dict(stride=0), ValueError, r"stride must be >= 1"),
    ((X, W), dict(dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    ((X, W), dict(padding=-1), ValueError, r"padding must be >= 0"),
    ((X, W), dict(padding="same"), TypeError, r"padding must be an int or a pair.*'same'"),
    ((X, W), dict(output_padding=-1), ValueError, r"output_padding must be >= 0"),
    ((X, W), dict(output_padding=1), ValueError,
     r"output_padding must be smaller than either stride or dilation.*\(1, 1\)"),
    ((X, W), dict(stride=2, output_padding=(1, 2)), ValueError,
     r"output_padding must be smaller.*output_padding=\(1, 2\), stride=\(2, 2\)"),
    ((X, W), dict(stride=2, dilation=3, output_padding=3), ValueError,
     r"smaller than either stride or dilation"),
    ((X, W), dict(padding=5), ValueError, r"output size -3 x -3 is smaller than 1"),
    ((X, W), dict(padding=(0, 4)), ValueError, r"output size 7 x -1 is smaller than 1"),
    ((_t((2, 4, 5, 5), np.int64), _t((4, 3, 3, 3), np.int64)), {}, TypeError,
     r"input must be float32 or float64"),
    ((X, _t((4, 3, 3, 3), np.float64)), {}, TypeError,
     r"input \(float32\) and weight \(float64\) must have the same dtype"),
    ((X, W, _t((3,), np.float64)), {}, TypeError, r"bias \(float64\)"),
    ((X, W), dict(algo=None), TypeError, r"algo must be a str"),
])
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        F.conv_transpose2d(*args, **kwargs)


# -- every other backend against the reference ----------------------------------------------
BACKEND_CASES = [
    ((2, 16, 7, 6), (16, 12, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 1, 9, 8), (1, 5, 4, 4), dict(stride=2, padding=1)),
    ((2, 8, 7, 7), (8, 1, 3, 3), dict(groups=8, stride=2)),
    ((2, 6, 6, 7), (6, 3, 3, 2), dict(groups=2, dilation=(2, 3), output_padding=(1, 2))),
    ((1, 5, 5, 6), (5, 7, 7, 7), dict(stride=3, padding=3, output_padding=2)),
]


def _backend_params():
    params = [pytest.param(dt, b, a, id=f"{np.dtype(dt).name}-{b}-{a}")
              for dt in DTYPES for b, a in implementations("conv2d", dt)]
    return params or [pytest.param(None, None, None, marks=pytest.mark.skip(
        reason="no backend other than numpy implements conv2d"))]


@pytest.mark.parametrize("dtype,backend,algo", _backend_params())
@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: f"x{c[0]}-w{c[1]}-{c[2]}")
def test_backends_match_reference(dtype, backend, algo, case, monkeypatch):
    monkeypatch.setenv("PYENGINE_POISON", "1")
    x_shape, w_shape, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[1] * kwargs.get("groups", 1), dtype)
    y_shape = F.conv_transpose2d(x, w, b, **kwargs).shape
    dy = np.random.default_rng(2).standard_normal(y_shape).astype(dtype)
    check_backend_matches_reference(OP, backend, algo, x, w, b, dy, kwargs)
