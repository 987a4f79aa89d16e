"""conv2d: the numpy reference against PyTorch (forward and every gradient) and float64 central
differences; argument validation; every other backend x algorithm against the reference.

Shape letters: N batch, C input channels, K output channels, H W input plane, R S kernel.

Comparisons are scaled by magnitudes, not by |result|: an output of a convolution is a sum of
many products that may cancel, so its rounding error is proportional to sum |x|.|w|, and
|result| can be far smaller. For each compared array we compute the same op on absolute values
(float64) and check |a - r| <= atol + rtol * that.
"""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F
from pyengine import backends

from .helpers import (assert_close, computes_in_tf32, gradcheck, implementations,
                      noncontiguous, round_tf32)
from .tolerances import tolerance

PE_OPS = {"conv2d": F.conv2d, "conv_transpose2d": F.conv_transpose2d}
TORCH_OPS = {"conv2d": torch.nn.functional.conv2d,
             "conv_transpose2d": torch.nn.functional.conv_transpose2d}
DTYPES = [np.float32, np.float64]


def make_inputs(x_shape, w_shape, bias, dtype, seed=0):
    """Random x, w and (optionally) b, b sized from the op's output channels later by caller."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(bias).astype(dtype) if bias else None
    return x, w, b


def _torch_run(op, x, w, b, dy, **kwargs):
    """Forward and gradients of (x, w, b) in PyTorch; arrays are copied."""
    ts = [None if a is None else torch.from_numpy(np.array(a)).requires_grad_(True)
          for a in (x, w, b)]
    y = TORCH_OPS[op](*ts, **kwargs)
    if dy is None:
        return y.detach(), None
    y.backward(torch.from_numpy(np.array(dy)))
    return y.detach(), [None if t is None else t.grad for t in ts]


def _pe_run(op, x, w, b, dy, **kwargs):
    """Forward and gradients of (x, w, b) in pyengine; non-contiguous views stay so."""
    ts = [None if a is None else pe.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = PE_OPS[op](*ts, **kwargs)
    y.backward(pe.tensor(dy))
    return y, [None if t is None else t.grad for t in ts]


def check_conv(op, x, w, b=None, seed=1, **kwargs):
    """Run ``op`` on the numpy backend and in PyTorch; compare the output and the gradients of
    x, w and b with the scaled tolerance (scales from PyTorch on |x|, |w|, |b|, |dy|)."""
    dtype = x.dtype
    atol, rtol = tolerance(op, dtype)
    y_ref, _ = _torch_run(op, x, w, b, None, **kwargs)
    dy = np.random.default_rng(seed).standard_normal(tuple(y_ref.shape)).astype(dtype)
    y_ref, g_ref = _torch_run(op, x, w, b, dy, **kwargs)
    absd = [None if a is None else np.abs(np.asarray(a, np.float64)) for a in (x, w, b)]
    y_scale, g_scale = _torch_run(op, *absd, np.abs(dy.astype(np.float64)), **kwargs)
    with pe.use_backend("numpy"):
        y, grads = _pe_run(op, x, w, b, dy, **kwargs)
    assert y.dtype == dtype, f"{op}: output dtype {y.dtype} != input dtype {np.dtype(dtype)}"
    assert_close(y, y_ref, atol, rtol, name=f"{op} forward", scale=y_scale.numpy())
    for name, g, r, s in zip(("input", "weight", "bias"), grads, g_ref, g_scale):
        if r is None:
            assert g is None
            continue
        assert g.dtype == dtype, f"{op} grad of {name}: dtype {g.dtype}"
        assert_close(g, r, atol, rtol, name=f"{op} grad of {name}", scale=s.numpy())
    return y


# (x shape, w shape, bias?, kwargs): odd sizes, C=1, large C, K != C, stride, dilation,
# padding (int, tuple, 'same', 'valid'), groups, depthwise, 1x1, 7x7, non-square kernels.
CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), True, {}),
    ((2, 1, 8, 8), (1, 1, 3, 3), True, dict(padding=1)),
    ((1, 1, 5, 6), (3, 1, 2, 2), True, {}),
    ((1, 32, 6, 5), (8, 32, 3, 3), True, dict(padding=1)),
    ((2, 5, 11, 10), (7, 5, 3, 3), True, dict(stride=2, padding=1)),
    ((2, 3, 13, 14), (4, 3, 3, 3), True, dict(stride=3)),  # last input row/col never read
    ((2, 3, 13, 12), (4, 3, 3, 3), True, dict(stride=3, padding=2)),
    ((2, 4, 11, 12), (5, 4, 3, 3), True, dict(dilation=2, padding=2)),
    ((2, 3, 12, 11), (4, 3, 3, 2), True, dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    ((2, 3, 9, 8), (4, 3, 3, 3), True, dict(padding="same")),
    ((2, 3, 9, 8), (4, 3, 4, 4), True, dict(padding="same")),  # even kernel: odd extra at end
    ((2, 3, 9, 10), (4, 3, 2, 5), True, dict(padding="same", dilation=(3, 2))),
    ((2, 3, 9, 10), (4, 3, 4, 3), True, dict(padding="same", dilation=(2, 1))),
    ((2, 3, 9, 8), (4, 3, 3, 3), True, dict(padding="valid")),
    ((2, 4, 7, 7), (6, 2, 3, 3), True, dict(groups=2, padding=1)),
    ((2, 6, 10, 9), (9, 2, 3, 2), True, dict(groups=3, stride=(2, 3), dilation=(2, 1),
                                             padding=(1, 0))),
    ((2, 5, 8, 7), (5, 1, 3, 3), True, dict(groups=5, padding=1)),  # depthwise, K = C
    ((2, 3, 9, 9), (6, 1, 3, 3), True, dict(groups=3, stride=2)),  # depthwise, K = 2C
    ((2, 6, 5, 7), (3, 6, 1, 1), True, {}),  # 1x1
    ((1, 3, 12, 11), (4, 3, 7, 7), True, dict(stride=2, padding=3)),  # 7x7
    ((2, 3, 8, 10), (4, 3, 2, 5), True, dict(padding=(0, 2))),  # non-square
    ((2, 3, 6, 7), (4, 3, 2, 2), True, dict(padding=3)),  # padding larger than the kernel
    ((2, 3, 1, 9), (4, 3, 1, 3), True, dict(stride=(1, 2))),
    ((3, 7, 6, 6), (5, 7, 3, 3), False, dict(padding=1)),  # no bias
    ((2, 4, 9, 9), (8, 2, 3, 3), False, dict(groups=2, stride=2, dilation=2, padding=2)),
]


def _case_id(case):
    x_shape, w_shape, bias, kwargs = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"x{x_shape}-w{w_shape}{'' if bias else '-nobias'}-{kw}".replace(" ", "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(case, dtype):
    x_shape, w_shape, bias, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[0] if bias else None, dtype)
    check_conv("conv2d", x, w, b, **kwargs)


@pytest.mark.parametrize("case", CASES[::3], ids=_case_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs(case, dtype):
    x_shape, w_shape, bias, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[0] if bias else None, dtype)
    xv, wv = noncontiguous(x), noncontiguous(w)
    bv = None if b is None else noncontiguous(b)
    check_conv("conv2d", xv, wv, bv, **kwargs)
    # A transposed view (H and W swapped) as well.
    check_conv("conv2d", np.swapaxes(x, 2, 3), w, b, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, dict(padding="same", groups=3), dict(stride=2)])
def test_unbatched(dtype, kwargs):
    x, w, b = make_inputs((3, 8, 7), (6, 1 if kwargs.get("groups") else 3, 3, 3), 6, dtype)
    y = check_conv("conv2d", x, w, b, **kwargs)
    assert y.ndim == 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_size_batch(dtype):
    x, w, b = make_inputs((0, 3, 7, 7), (4, 3, 3, 3), 4, dtype)
    y = check_conv("conv2d", x, w, b, padding=1)
    assert y.shape == (0, 4, 7, 7)


@pytest.mark.parametrize("case", [
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=1)),
    ((2, 4, 9, 8), (6, 2, 3, 2), dict(groups=2, stride=(2, 1), dilation=(1, 2), padding=(2, 1))),
    ((2, 3, 7, 8), (3, 1, 4, 3), dict(groups=3, padding="same", dilation=(1, 2))),
    ((1, 2, 10, 9), (3, 2, 3, 3), dict(stride=3)),
])
def test_gradcheck(case):
    x_shape, w_shape, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[0], np.float64)
    with pe.use_backend("numpy"):
        gradcheck(lambda xt, wt, bt: F.conv2d(xt, wt, bt, **kwargs), [x, w, b])
        gradcheck(lambda xt, wt: F.conv2d(xt, wt, **kwargs), [x, w])


def test_partial_gradients():
    # Only some inputs require gradients: the others must get none and nothing must break.
    x, w, b = make_inputs((2, 3, 6, 6), (4, 3, 3, 3), 4, np.float32)
    xt, wt, bt = pe.Tensor(x), pe.Tensor(w, requires_grad=True), pe.Tensor(b)
    with pe.use_backend("numpy"):
        F.conv2d(xt, wt, bt).sum().backward()
    assert xt.grad is None and bt.grad is None and wt.grad.shape == w.shape
    with pe.no_grad():
        y = F.conv2d(pe.Tensor(x, requires_grad=True), wt)
    assert not y.requires_grad


def test_poisoned_outputs_are_written(monkeypatch):
    monkeypatch.setenv("PYENGINE_POISON", "1")
    x, w, b = make_inputs((2, 4, 9, 8), (6, 2, 3, 3), 6, np.float32)
    ref = backends.get("numpy")
    from pyengine.params import Conv2dParams
    p = Conv2dParams(stride_h=2, stride_w=3, pad_top=1, pad_bottom=2, pad_left=0, pad_right=1,
                     groups=2)
    y = ref.conv2d_forward(x, w, b, p)
    dy = np.ones_like(y)
    for out in (y, ref.conv2d_backward_data(dy, w, x.shape, p),
                ref.conv2d_backward_weight(dy, x, w.shape, p), ref.conv2d_backward_bias(dy)):
        assert not np.isnan(out).any()


def test_float64_stays_float64_and_algo():
    x, w, b = make_inputs((1, 2, 5, 5), (3, 2, 3, 3), 3, np.float64)
    with pe.use_backend("numpy"):
        y = F.conv2d(pe.tensor(x), pe.tensor(w), pe.tensor(b), algo="direct")
        y2 = F.conv2d(x, w, b)  # plain arrays are accepted
    assert y.dtype == np.float64 and y2.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
    assert backends.get("numpy").algorithms("conv2d") == ("direct",)


# -- bad input ------------------------------------------------------------------------------
def _t(shape, dtype=np.float32):
    return pe.tensor(np.zeros(shape, dtype))


X, W = _t((2, 4, 7, 7)), _t((6, 4, 3, 3))


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((_t((2, 2, 4, 7, 7)), W), {}, ValueError, r"input must be 3-d or 4-d.*\(2, 2, 4, 7, 7\)"),
    ((_t((7, 7)), W), {}, ValueError, r"input must be 3-d or 4-d.*\(7, 7\)"),
    ((X, _t((6, 4, 3))), {}, ValueError, r"weight must be 4-d.*\(6, 4, 3\)"),
    ((X, _t((6, 3, 3, 3))), {}, ValueError, r"4 channels.*\(6, 3, 3, 3\).*expects 3"),
    ((X, W), dict(groups=2), ValueError, r"4 channels.*groups=2 expects 8"),
    ((_t((2, 4, 7, 7)), _t((5, 2, 3, 3))), dict(groups=2), ValueError, r"multiple of groups=2"),
    ((X, _t((0, 4, 3, 3))), {}, ValueError, r"K=0"),
    ((X, W), dict(groups=0), ValueError, r"groups must be >= 1"),
    ((X, W), dict(groups=1.0), TypeError, r"groups must be an int"),
    ((X, W, _t((5,))), {}, ValueError, r"bias must be 1-d with 6 elements.*\(5,\)"),
    ((X, W, _t((6, 1))), {}, ValueError, r"bias must be 1-d.*\(6, 1\)"),
    ((X, W), dict(stride=0), ValueError, r"stride must be >= 1"),
    ((X, W), dict(stride=(1, 2, 3)), ValueError, r"stride must be an int or 2 ints"),
    ((X, W), dict(dilation=0), ValueError, r"dilation must be >= 1"),
    ((X, W), dict(padding=-1), ValueError, r"padding must be >= 0"),
    ((X, W), dict(padding=(1, 2, 3)), ValueError, r"padding must be an int or 2 ints"),
    ((X, W), dict(padding=1.5), TypeError, r"padding must be an int"),
    ((X, W), dict(padding="full"), ValueError, r"padding must be .*'valid' or 'same', got 'full'"),
    ((X, W), dict(padding="same", stride=2), ValueError, r"'same' is not supported for strided"),
    ((X, W), dict(padding="same", stride=(1, 2)), ValueError, r"'same'.*stride=\(1, 2\)"),
    ((_t((1, 4, 2, 2)), W), {}, ValueError, r"\(1, 4, 2, 2\) padded to 2 x 2 is smaller than "
                                            r"the dilated kernel 3 x 3"),
    ((_t((1, 4, 5, 5)), W), dict(dilation=3), ValueError, r"padded to 5 x 5.*kernel 7 x 7"),
    ((_t((1, 4, 5, 5)), _t((6, 4, 0, 3))), {}, ValueError, r"kernel of at least 1 x 1"),
    ((_t((2, 4, 7, 7), np.int64), _t((6, 4, 3, 3), np.int64)), {}, TypeError,
     r"input must be float32 or float64, got dtype int64"),
    ((X, _t((6, 4, 3, 3), np.int32)), {}, TypeError, r"weight must be float32 or float64"),
    ((_t((2, 4, 7, 7), np.float64), W), {}, TypeError,
     r"input \(float64\) and weight \(float32\) must have the same dtype"),
    ((X, W, _t((6,), np.float64)), {}, TypeError, r"input \(float32\) and bias \(float64\)"),
    ((X, W), dict(algo=3), TypeError, r"algo must be a str"),
    # PyTorch returns (N, 0, P, Q) for C = 0 whatever K is; pyengine refuses instead.
    ((_t((2, 0, 5, 5)), _t((3, 0, 3, 3))), {}, ValueError, r"\(2, 0, 5, 5\) has no channels"),
    (([[1.0]], W), {}, TypeError, r"input must be a pe.Tensor or an array"),
])
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        F.conv2d(*args, **kwargs)


# -- every other backend against the reference ----------------------------------------------
BACKEND_CASES = [
    ((2, 16, 15, 13), (24, 16, 3, 3), dict(padding=1)),
    ((3, 1, 17, 19), (5, 1, 5, 5), dict(stride=2, padding=2)),
    ((2, 3, 23, 21), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ((2, 33, 9, 11), (17, 33, 1, 1), {}),
    ((2, 12, 14, 15), (12, 1, 3, 3), dict(groups=12, padding=1)),
    ((2, 8, 13, 13), (16, 1, 3, 3), dict(groups=8, stride=2)),
    ((2, 10, 12, 11), (6, 5, 3, 2), dict(groups=2, dilation=(2, 3), padding=(2, 1))),
    ((1, 6, 10, 9), (7, 6, 4, 4), dict(padding="same")),
    ((2, 5, 16, 17), (9, 5, 3, 3), dict(stride=3)),
    ((1, 4, 1, 1), (3, 4, 1, 1), {}),
]


def _backend_params():
    params = [pytest.param(dt, b, a, id=f"{np.dtype(dt).name}-{b}-{a}")
              for dt in DTYPES for b, a in implementations("conv2d", dt)]
    return params or [pytest.param(None, None, None, marks=pytest.mark.skip(
        reason="no backend other than numpy implements conv2d"))]


def check_backend_matches_reference(op, backend, algo, x, w, b, dy, kwargs):
    """``op`` (conv2d / conv_transpose2d) forward and gradients on ``backend`` with ``algo``
    against the numpy reference, with the scaled tolerance. For a TF32 algorithm the reference
    multiplies the same TF32-rounded operands (x, w, dy) the tensor cores do, so the float32
    tolerance still applies; the bias and its gradient stay fp32 (added and summed outside the
    tensor cores)."""
    dtype = x.dtype
    tf32 = computes_in_tf32(algo)
    with pe.use_backend("numpy"):
        y_ref, g_ref = _pe_run(op, *((round_tf32(x), round_tf32(w), b, round_tf32(dy)) if tf32
                                     else (x, w, b, dy)), **kwargs)
        if tf32 and b is not None:   # dy summed per output channel, in fp32, not rounded
            g_ref[2] = pe.tensor(dy.astype(np.float64).sum(axis=(0, 2, 3)))
        # |x|.|w| and its gradients' counterparts, through the reference in float64.
        y_scale, g_scale = _pe_run(op, *(np.abs(a.astype(np.float64)) for a in (x, w, b)),
                                   np.abs(dy.astype(np.float64)), **kwargs)
    with pe.use_backend(backend):
        y, grads = _pe_run(op, noncontiguous(x), noncontiguous(w), b, dy, algo=algo, **kwargs)
    atol, rtol = tolerance(op, dtype)
    where = f"{backend}/{algo} {op} {np.dtype(dtype).name}"
    assert y.dtype == np.dtype(dtype)
    assert_close(y, y_ref.numpy(), atol, rtol, name=f"{where} forward", scale=y_scale.numpy())
    for name, g, r, s in zip(("input", "weight", "bias"), grads, g_ref, g_scale):
        assert_close(g, r.numpy(), atol, rtol, name=f"{where} grad of {name}", scale=s.numpy())


@pytest.mark.parametrize("dtype,backend,algo", _backend_params())
@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: f"x{c[0]}-w{c[1]}-{c[2]}")
def test_backends_match_reference(dtype, backend, algo, case, monkeypatch):
    monkeypatch.setenv("PYENGINE_POISON", "1")  # any element a kernel never writes is NaN
    x_shape, w_shape, kwargs = case
    x, w, b = make_inputs(x_shape, w_shape, w_shape[0], dtype)
    y_shape = F.conv2d(x, w, b, **kwargs).shape
    dy = np.random.default_rng(2).standard_normal(y_shape).astype(dtype)
    check_backend_matches_reference("conv2d", backend, algo, x, w, b, dy, kwargs)
