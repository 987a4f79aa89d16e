"""dropout: statistics of the mask, the 1/(1-p) scaling, the gradient (mask * scale),
reproducibility under pe.manual_seed, identity in evaluation, and bad input."""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F

from .helpers import assert_close, gradcheck, noncontiguous


def _x(shape, dtype, seed=0):
    """Values bounded away from 0, so a zero in the output can only come from the mask."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)).astype(dtype)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistics_and_scaling(p, dtype):
    n = 100_000
    x = _x((10, n // 10), dtype)
    y = F.dropout(pe.tensor(x), p=p).numpy()
    assert y.dtype == dtype and y.shape == x.shape
    dropped = y == 0
    # The fraction dropped is Binomial(n, p)/n: within 5 standard deviations.
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    scale = dtype(1) / dtype(1 - p)
    np.testing.assert_array_equal(y[~dropped], x[~dropped] * scale)
    # torch draws its own mask, but the same distribution: compare the kept fractions.
    ty = torch.nn.functional.dropout(torch.from_numpy(x), p=p).numpy()
    assert abs(dropped.mean() - (ty == 0).mean()) < 10 * np.sqrt(p * (1 - p) / n)
    # Scaling keeps the expectation: mean of y / x is 1 within 5 standard deviations.
    ratio = y / x
    assert abs(ratio.mean() - 1) < 5 * ratio.std() / np.sqrt(n)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_is_mask_times_scale(p, dtype):
    x = _x((4, 3, 5, 7), dtype)
    t = pe.tensor(x, requires_grad=True)
    y = F.dropout(t, p=p)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    y.backward(pe.tensor(g))
    kept = (y.numpy() != 0).astype(dtype)
    scale = dtype(1) / dtype(1 - p) if p < 1 else dtype(0)
    np.testing.assert_array_equal(y.numpy(), x * (kept * scale))
    np.testing.assert_array_equal(t.grad.numpy(), g * (kept * scale))


def test_p_one_gives_zeros_and_zero_gradient():
    t = pe.tensor(_x((3, 4), np.float32), requires_grad=True)
    y = F.dropout(t, p=1.0)
    assert not y.numpy().any()
    y.sum().backward()
    assert not t.grad.numpy().any()


def test_deterministic_under_manual_seed():
    x = pe.tensor(_x((6, 50), np.float32))
    pe.manual_seed(123)
    a = F.dropout(x, 0.4).numpy()
    b = F.dropout(x, 0.4).numpy()
    pe.manual_seed(123)
    c = F.dropout(x, 0.4).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # the generator moves on between calls
    pe.manual_seed(124)
    assert not np.array_equal(a, F.dropout(x, 0.4).numpy())
    # The mask does not depend on the input's memory layout.
    pe.manual_seed(123)
    d = F.dropout(pe.tensor(noncontiguous(x.numpy())), 0.4).numpy()
    np.testing.assert_array_equal(a, d)


def test_identity_in_eval_and_for_p_zero():
    x = pe.tensor(_x((3, 4), np.float32), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.9, False) is x
    assert F.dropout(x, 0.0) is x
    empty = pe.tensor(np.zeros((0, 4), np.float32))
    assert F.dropout(empty, 0.5).shape == (0, 4)


def test_default_arguments_match_torch():
    import inspect
    ours = inspect.signature(F.dropout).parameters
    theirs = inspect.signature(torch.nn.functional.dropout).parameters
    assert list(ours) == list(theirs)
    assert [v.default for v in ours.values()] == [v.default for v in theirs.values()]


def test_gradcheck():
    x = _x((3, 4, 5), np.float64)

    def fn(t):
        pe.manual_seed(7)  # the same mask on every evaluation
        return F.dropout(t, p=0.3)

    gradcheck(fn, [x])
    gradcheck(fn, [noncontiguous(x)])


def test_inplace():
    x = _x((5, 6), np.float32)
    t = pe.tensor(x)
    pe.manual_seed(3)
    out = F.dropout(t, 0.5, inplace=True)
    assert out is t
    pe.manual_seed(3)
    expected = F.dropout(pe.tensor(x), 0.5).numpy()
    np.testing.assert_array_equal(t.numpy(), expected)
    leaf = pe.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        F.dropout(leaf, 0.5, inplace=True)
    # A non-leaf is overwritten; the gradient through it is mask * scale.
    a = pe.tensor(x, requires_grad=True)
    b = a * 1.0
    pe.manual_seed(3)
    y = F.dropout(b, 0.5, inplace=True)
    assert y is b
    np.testing.assert_array_equal(y.numpy(), expected)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), (expected != 0) * np.float32(2))


def test_bad_input():
    x = pe.tensor(np.ones((2, 3), np.float32))
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(x, p=p)
    with pytest.raises(TypeError, match="p must be"):
        F.dropout(x, p="a")
    with pytest.raises(TypeError, match="p must be"):
        F.dropout(x, p=None)
    with pytest.raises(TypeError, match="input"):
        F.dropout(pe.tensor(np.ones((2, 3), np.int64)))
    with pytest.raises(TypeError, match="input"):
        F.dropout([1.0, 2.0])
    assert_close(F.dropout(x, 0.5, training=False), np.ones((2, 3)), 0, 0)
