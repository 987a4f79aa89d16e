"""relu / leaky_relu / sigmoid / tanh: the reference against PyTorch and finite differences;
every other backend against the reference."""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F

from .helpers import (assert_close, check_backends_match, compare_with_torch, gradcheck,
                      noncontiguous)

TF = torch.nn.functional

# (name, pyengine call, torch call)
OPS = [
    ("relu", lambda t: F.relu(t), lambda t: TF.relu(t)),
    ("leaky_relu", lambda t: F.leaky_relu(t), lambda t: TF.leaky_relu(t)),
    ("leaky_relu_0.2", lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
    ("leaky_relu_neg", lambda t: F.leaky_relu(t, negative_slope=-0.5),
     lambda t: TF.leaky_relu(t, negative_slope=-0.5)),
    ("leaky_relu_2", lambda t: F.leaky_relu(t, 2), lambda t: TF.leaky_relu(t, 2.0)),
    ("sigmoid", lambda t: F.sigmoid(t), lambda t: torch.sigmoid(t)),
    ("tanh", lambda t: F.tanh(t), lambda t: torch.tanh(t)),
]
IDS = [o[0] for o in OPS]
SHAPES = [(7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1), (), (2, 1, 9, 11), (1, 13)]


def _input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if x.ndim:
        x.reshape(-1)[::5] = 0.0  # exact zeros: relu'(0) and leaky_relu'(0) must match torch
    return x


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(op, shape, dtype):
    name, pe_fn, th_fn = op
    with pe.use_backend("numpy"):
        out, _ = compare_with_torch(pe_fn, th_fn, [_input(shape, dtype)], name)
    assert out.shape == shape and out.dtype == dtype


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous(op, dtype):
    name, pe_fn, th_fn = op
    x = noncontiguous(_input((3, 4, 7), dtype))
    with pe.use_backend("numpy"):
        compare_with_torch(pe_fn, th_fn, [x], name)
        compare_with_torch(pe_fn, th_fn, [_input((5, 6), dtype).T], name)


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_values_and_nan(op, dtype):
    """Large |x| stays finite (no overflow in sigmoid), NaN propagates, gradients as torch."""
    name, pe_fn, th_fn = op
    x = np.array([-1e4, -800.0, -100.0, -90.0, -20.0, -1e-30, 0.0, 1e-30, 20.0, 90.0, 100.0,
                  800.0, 1e4, np.nan], dtype=dtype)
    with pe.use_backend("numpy"), np.errstate(over="raise", divide="raise"):
        out, _ = compare_with_torch(pe_fn, th_fn, [x], name)
    assert np.isfinite(out.numpy()[:-1]).all()
    assert np.isnan(out.numpy()[-1])


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_gradcheck(op):
    _name, pe_fn, _ = op
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    with pe.use_backend("numpy"):
        gradcheck(pe_fn, [x])
        gradcheck(pe_fn, [noncontiguous(x)])


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4)])
def test_zero_size(op, shape):
    name, pe_fn, th_fn = op
    with pe.use_backend("numpy"):
        out, _ = compare_with_torch(pe_fn, th_fn, [np.zeros(shape, np.float32)], name)
    assert out.shape == shape


def test_float64_stays_float64():
    x = pe.tensor(np.linspace(-2, 2, 9))
    for fn in (F.relu, F.leaky_relu, F.sigmoid, F.tanh):
        assert fn(x).dtype == np.float64
    assert F.relu(x.float()).dtype == np.float32


def test_tensor_methods():
    x = _input((4, 5), np.float32)
    t = torch.from_numpy(x)
    assert_close(pe.tensor(x).relu(), t.relu(), 0, 0)
    assert_close(pe.tensor(x).sigmoid(), t.sigmoid(), 1e-6, 1e-6)
    assert_close(pe.tensor(x).tanh(), t.tanh(), 1e-6, 1e-6)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_inplace_without_grad_writes_input(name):
    x = _input((3, 4), np.float32)
    expected = getattr(TF, name)(torch.from_numpy(x)).numpy()
    t = pe.tensor(x)
    out = getattr(F, name)(t, inplace=True)
    assert out is t
    assert_close(t, expected, 0, 0)
    # A numpy array is wrapped without a copy, so the array itself changes.
    a = x.copy()
    getattr(F, name)(a, inplace=True)
    assert_close(a, expected, 0, 0)
    # Non-contiguous storage is written through the view.
    v = noncontiguous(x)
    getattr(F, name)(v, inplace=True)
    assert_close(v, expected, 0, 0)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_inplace_with_grad(name):
    x = _input((3, 4), np.float64)
    leaf = pe.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(leaf, inplace=True)
    # Under no_grad a leaf may be overwritten (e.g. initialisation), as torch.
    with pe.no_grad():
        assert getattr(F, name)(leaf, inplace=True) is leaf
    assert_close(leaf, getattr(TF, name)(torch.from_numpy(x)), 0, 0)
    # A non-leaf is overwritten and its history continues through the op, as in torch.
    a = pe.tensor(x, requires_grad=True)
    ta = torch.from_numpy(x.copy()).requires_grad_(True)
    b = a * 2.0
    y = getattr(F, name)(b, inplace=True)
    assert y is b
    ty = getattr(TF, name)(ta * 2.0, inplace=True)
    assert_close(y, ty, 0, 0)
    g = np.random.default_rng(2).standard_normal(x.shape)
    y.backward(pe.tensor(g))
    ty.backward(torch.from_numpy(g))
    assert_close(a.grad, ta.grad, 1e-12, 1e-12)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_inplace_on_a_saved_buffer_is_refused_at_backward(name):
    """Overwriting an array that an earlier op saved makes backward fail, as in torch."""
    x = _input((3, 4), np.float64)
    a = pe.tensor(x, requires_grad=True)
    s = F.sigmoid(a)                 # saves its output for the backward
    getattr(F, name)(s, inplace=True)
    with pytest.raises(RuntimeError, match="in-place"):
        s.sum().backward()
    plain = pe.tensor(x)
    w = pe.tensor(np.ones((2, 4)), requires_grad=True)
    y = F.linear(plain, w)           # saves the input for the weight gradient
    getattr(F, name)(plain, inplace=True)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_bad_input():
    with pytest.raises(TypeError, match="input"):
        F.relu(pe.tensor(np.arange(4)))
    with pytest.raises(TypeError, match="input"):
        F.sigmoid(pe.tensor(np.arange(4, dtype=np.int32)))
    with pytest.raises(TypeError, match="input"):
        F.tanh([1.0, 2.0])
    with pytest.raises(TypeError, match="negative_slope"):
        F.leaky_relu(pe.tensor([1.0]), negative_slope="a")
    with pytest.raises(TypeError, match="negative_slope"):
        F.leaky_relu(pe.tensor([1.0]), negative_slope=None)


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(17, 1000), (2, 21, 13, 11), (33,), (1,)])
def test_backends_match_reference(op, dtype, shape):
    name, pe_fn, _ = op
    x = _input(shape, dtype, seed=3)
    x.reshape(-1)[1::7] = 50.0  # saturates sigmoid and tanh
    dy = np.random.default_rng(4).standard_normal(shape).astype(dtype)

    def run(algo):
        t = pe.Tensor(noncontiguous(x), requires_grad=True)
        y = pe_fn(t)
        y.backward(pe.tensor(dy))
        return y.numpy(), t.grad.numpy()

    check_backends_match("activation", dtype, run, label=name)
