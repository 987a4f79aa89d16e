"""linear: the reference against PyTorch and finite differences; every other backend against the
reference."""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F

from .helpers import assert_close, compare_with_torch, gradcheck, implementations, noncontiguous
from .tolerances import tolerance

TF = torch.nn.functional

# (input shape, weight shape, bias shape or None)
CASES = [
    ((3, 5), (4, 5), (4,)),
    ((3, 5), (4, 5), None),
    ((5,), (4, 5), (4,)),
    ((2, 3, 5), (4, 5), (4,)),
    ((2, 1, 3, 7), (6, 7), (6,)),
    ((1, 1), (1, 1), (1,)),
    ((9, 1), (3, 1), (3,)),
    ((7, 13), (1, 13), (1,)),
    ((1, 17), (19, 17), None),
    ((3, 5), (5,), None),
    ((5,), (5,), None),
    ((5,), (5,), ()),
    ((2, 4, 3), (3,), None),
]


def _arrays(x_shape, w_shape, b_shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape).astype(dtype),
              (rng.standard_normal(w_shape) / np.sqrt(w_shape[-1])).astype(dtype)]
    if b_shape is not None:
        arrays.append(rng.standard_normal(b_shape).astype(dtype))
    return arrays


def _torch_linear(x, w, b=None):
    # torch refuses a 0-d bias with a 1-d weight for inputs above 1-d; pyengine takes it.
    if w.ndim == 1 and b is not None:
        return x @ w + b
    return TF.linear(x, w, b)


@pytest.mark.parametrize("x_shape,w_shape,b_shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(x_shape, w_shape, b_shape, dtype):
    arrays = _arrays(x_shape, w_shape, b_shape, dtype)
    with pe.use_backend("numpy"):
        out, ref = compare_with_torch(F.linear, _torch_linear, arrays, "linear")
    assert out.shape == tuple(ref.shape) and out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous(dtype):
    x, w, b = _arrays((4, 3, 6), (5, 6), (5,), dtype)
    with pe.use_backend("numpy"):
        compare_with_torch(F.linear, TF.linear, [noncontiguous(x), noncontiguous(w),
                                                 noncontiguous(b)], "linear")
        # A transposed view as weight, an input sliced along its rows.
        wt = np.ascontiguousarray(w.T).T
        compare_with_torch(F.linear, TF.linear, [x[:, ::2], wt, b], "linear")


@pytest.mark.parametrize("x_shape,w_shape,b_shape", [
    ((0, 5), (4, 5), (4,)),        # empty batch
    ((2, 0, 5), (4, 5), None),
    ((3, 0), (4, 0), (4,)),        # no input features: the output is the bias
    ((3, 5), (0, 5), (0,)),        # no output features
])
def test_zero_size(x_shape, w_shape, b_shape):
    arrays = _arrays(x_shape, w_shape, b_shape, np.float32)
    with pe.use_backend("numpy"):
        out, ref = compare_with_torch(F.linear, TF.linear, arrays, "linear")
    assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("x_shape,w_shape,b_shape", CASES[:6] + CASES[9:])
def test_gradcheck(x_shape, w_shape, b_shape):
    arrays = _arrays(x_shape, w_shape, b_shape, np.float64, seed=1)
    with pe.use_backend("numpy"):
        gradcheck(F.linear, arrays)


def test_only_some_inputs_require_grad():
    x, w, b = _arrays((3, 5), (4, 5), (4,), np.float32)
    tx, tw = pe.tensor(x), pe.tensor(w, requires_grad=True)
    F.linear(tx, tw, pe.tensor(b)).sum().backward()
    assert tx.grad is None
    assert_close(tw.grad, np.ones((3, 4), np.float32).T @ x, 1e-5, 1e-5)


def test_bad_input():
    x = pe.tensor(np.zeros((3, 5), np.float32))
    w = pe.tensor(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"input has 5 features.*weight of shape \(4, 3\)"):
        F.linear(x, pe.tensor(np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match=r"weight.*\(2, 4, 5\)"):
        F.linear(x, pe.tensor(np.zeros((2, 4, 5), np.float32)))
    with pytest.raises(ValueError, match="at least 1-d"):
        F.linear(pe.tensor(np.float32(1.0)), w)
    with pytest.raises(ValueError, match=r"bias.*\(4,\).*\(5,\)"):
        F.linear(x, w, pe.tensor(np.zeros(5, np.float32)))
    with pytest.raises(ValueError, match="bias"):
        F.linear(x, w, pe.tensor(np.zeros((1, 4), np.float32)))
    with pytest.raises(TypeError, match="input"):
        F.linear(pe.tensor(np.zeros((3, 5), np.int64)), w)
    with pytest.raises(TypeError, match="weight"):
        F.linear(x, pe.tensor(np.zeros((4, 5), np.int32)))
    with pytest.raises(TypeError, match="input .*float32.* weight .*float64"):
        F.linear(x, w.double())
    with pytest.raises(TypeError, match="bias"):
        F.linear(x, w, pe.tensor(np.zeros(4, np.float64)))
    with pytest.raises(TypeError, match="weight"):
        F.linear(x, [[1.0] * 5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape,w_shape,b_shape", [
    ((64, 300), (129, 300), (129,)), ((3, 7, 33), (17, 33), None), ((1, 1), (1, 1), (1,)),
    ((31,), (5, 31), (5,))])
def test_backends_match_reference(dtype, x_shape, w_shape, b_shape):
    impls = implementations("linear", dtype)
    if not impls:
        pytest.skip(f"no backend other than numpy implements linear for {np.dtype(dtype)}")
    arrays = _arrays(x_shape, w_shape, b_shape, dtype, seed=5)
    out_shape = x_shape[:-1] + w_shape[:1]
    dy = np.random.default_rng(6).standard_normal(out_shape).astype(dtype)
    atol, rtol = tolerance("linear", dtype)

    def run():
        ts = [pe.Tensor(noncontiguous(a), requires_grad=True) for a in arrays]
        y = F.linear(*ts)
        y.backward(pe.tensor(dy))
        return [y.numpy()] + [t.grad.numpy() for t in ts]

    with pe.use_backend("numpy"):
        ref = run()
    for backend, _algo in impls:
        with pe.use_backend(backend):
            got = run()
        for k, (a, r) in enumerate(zip(got, ref)):
            assert_close(a, r, atol, rtol, name=f"{backend} linear result {k}")
