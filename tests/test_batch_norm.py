"""batch_norm: the reference against PyTorch (outputs, every gradient, running statistics) and
finite differences; every other backend against the reference."""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F

from .helpers import assert_close, compare_with_torch, gradcheck, implementations, noncontiguous
from .tolerances import tolerance

TF = torch.nn.functional

SHAPES = [(4, 3), (2, 3, 5), (2, 3, 4, 5), (2, 2, 3, 2, 2), (3, 1, 4, 4), (1, 3, 7), (5, 1),
          (2, 7, 1, 3)]


def _data(shape, dtype, seed=0):
    """Input with a different mean and scale per channel, running statistics, weight, bias."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    per_channel = (1, c) + (1,) * (len(shape) - 2)
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 3, c).reshape(per_channel)
         + rng.uniform(-2, 2, c).reshape(per_channel)).astype(dtype)
    rm = rng.uniform(-1, 1, c).astype(dtype)
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    w = rng.uniform(0.5, 1.5, c).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    return x, rm, rv, w, b


def _compare(x, rm, rv, wb, training, momentum=0.1, eps=1e-5):
    """compare_with_torch for batch_norm with running statistics kept out of the gradient list;
    also checks that both updated them alike."""
    pe_rm, pe_rv = (None, None) if rm is None else (rm.copy(), rv.copy())
    th_rm, th_rv = (None, None) if rm is None else (torch.from_numpy(rm.copy()),
                                                     torch.from_numpy(rv.copy()))

    def pe_fn(x, *wb):
        return F.batch_norm(x, pe_rm, pe_rv, *wb, training=training, momentum=momentum, eps=eps)

    def th_fn(x, *wb):
        return TF.batch_norm(x, th_rm, th_rv, *wb, training=training, momentum=momentum,
                             eps=eps)

    out, _ = compare_with_torch(pe_fn, th_fn, [x] + list(wb), "batch_norm")
    if rm is not None:
        atol, rtol = tolerance("batch_norm", x.dtype)
        assert_close(pe_rm, th_rm, atol, rtol, name="running_mean")
        assert_close(pe_rv, th_rv, atol, rtol, name="running_var")
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(shape, training, affine, dtype):
    x, rm, rv, w, b = _data(shape, dtype)
    wb = {"both": [w, b], "weight": [w], "none": []}[affine]
    with pe.use_backend("numpy"):
        out = _compare(x, rm, rv, wb, training)
    assert out.shape == shape and out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_without_weight_and_options(dtype):
    x, rm, rv, w, b = _data((3, 4, 5), dtype)
    with pe.use_backend("numpy"):
        for training in (True, False):
            pe_out = F.batch_norm(pe.tensor(x), rm.copy(), rv.copy(), None, pe.tensor(b),
                                  training=training, momentum=0.3, eps=1e-3)
            th_out = TF.batch_norm(torch.from_numpy(x), torch.from_numpy(rm.copy()),
                                   torch.from_numpy(rv.copy()), None, torch.from_numpy(b),
                                   training=training, momentum=0.3, eps=1e-3)
            assert_close(pe_out, th_out, *tolerance("batch_norm", dtype))
        _compare(x, rm, rv, [w, b], True, momentum=0.0, eps=0.1)
        _compare(x, rm, rv, [w, b], True, momentum=1.0, eps=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_noncontiguous(dtype, training):
    x, rm, rv, w, b = _data((3, 4, 2, 5), dtype)
    with pe.use_backend("numpy"):
        _compare(noncontiguous(x), noncontiguous(rm), noncontiguous(rv),
                 [noncontiguous(w), noncontiguous(b)], training)
        _compare(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2), rm, rv,
                 [w, b], training)


def test_channel_vectors_of_other_shapes():
    """torch checks only the element count of weight, bias and the running statistics; so does
    pyengine, and the gradients keep the given shapes."""
    x, rm, rv, w, b = _data((4, 3, 5), np.float64)
    w2, b2 = pe.tensor(w.reshape(3, 1), requires_grad=True), pe.tensor(b.reshape(1, 3),
                                                                          requires_grad=True)
    w1, b1 = pe.tensor(w, requires_grad=True), pe.tensor(b, requires_grad=True)
    rm2, rv2 = rm.reshape(3, 1).copy(), rv.reshape(1, 3, 1).copy()
    y2 = F.batch_norm(pe.tensor(x), rm2, rv2, w2, b2, training=True)
    y1 = F.batch_norm(pe.tensor(x), rm.copy(), rv.copy(), w1, b1, training=True)
    assert_close(y2, y1.numpy(), 0, 0)
    y2.sum().backward()
    y1.sum().backward()
    assert w2.grad.shape == (3, 1) and b2.grad.shape == (1, 3)
    assert_close(w2.grad, w1.grad.numpy().reshape(3, 1), 0, 0)
    assert_close(b2.grad, b1.grad.numpy().reshape(1, 3), 0, 0)
    th_rm, th_rv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    TF.batch_norm(torch.from_numpy(x), th_rm, th_rv, training=True)
    assert_close(rm2.reshape(3), th_rm, 1e-12, 1e-12)
    assert_close(rv2.reshape(3), th_rv, 1e-12, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_stats_over_several_steps(dtype):
    """Several training calls, then evaluation: the in-place updates follow torch's exactly."""
    _, rm, rv, w, b = _data((2, 3, 4), dtype)
    pe_rm, pe_rv = pe.tensor(rm), pe.tensor(rv)
    th_rm, th_rv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    atol, rtol = tolerance("batch_norm", dtype)
    with pe.use_backend("numpy"):
        for step in range(5):
            x = _data((4 + step, 3, 6), dtype, seed=step + 10)[0]
            y = F.batch_norm(pe.tensor(x), pe_rm, pe_rv, pe.tensor(w), pe.tensor(b),
                             training=True, momentum=0.2)
            ty = TF.batch_norm(torch.from_numpy(x), th_rm, th_rv, torch.from_numpy(w),
                               torch.from_numpy(b), training=True, momentum=0.2)
            assert_close(y, ty, atol, rtol, name=f"step {step} output")
            assert_close(pe_rm, th_rm, atol, rtol, name=f"step {step} running_mean")
            assert_close(pe_rv, th_rv, atol, rtol, name=f"step {step} running_var")
        x = _data((3, 3, 6), dtype, seed=99)[0]
        y = F.batch_norm(pe.tensor(x), pe_rm, pe_rv, pe.tensor(w), pe.tensor(b))
        ty = TF.batch_norm(torch.from_numpy(x), th_rm, th_rv, torch.from_numpy(w),
                           torch.from_numpy(b))
        assert_close(y, ty, atol, rtol, name="eval output")
    assert pe_rm.dtype == dtype and pe_rv.dtype == dtype


def test_running_stats_updated_in_place():
    x, rm, rv, _, _ = _data((4, 3, 5), np.float32)
    t_rm, t_rv = pe.tensor(rm), pe.tensor(rv)
    arr_rm, arr_rv = t_rm.data, t_rv.data
    F.batch_norm(pe.tensor(x), t_rm, t_rv, training=True)
    assert t_rm.data is arr_rm and t_rv.data is arr_rv
    # Counted as an in-place write (torch's kernel leaves _version at 0; counting is the side
    # that lets autograd notice if a saved copy of the statistics was overwritten).
    assert t_rm._version == 1 and t_rv._version == 1
    assert not np.allclose(arr_rm, rm)
    # numpy arrays are updated in place too, and evaluation leaves them alone.
    a_rm, a_rv = rm.copy(), rv.copy()
    F.batch_norm(x, a_rm, a_rv, training=True)
    assert_close(a_rm, arr_rm, 0, 0)
    before = a_rm.copy(), a_rv.copy()
    F.batch_norm(x, a_rm, a_rv, training=False)
    assert_close(a_rm, before[0], 0, 0)
    assert_close(a_rv, before[1], 0, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_without_running_stats(dtype):
    x, _, _, w, b = _data((3, 4, 5), dtype)
    with pe.use_backend("numpy"):
        _compare(x, None, None, [w, b], True)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (0, 2, 3, 3), (2, 3, 0)])
@pytest.mark.parametrize("training", [True, False])
def test_zero_size(shape, training):
    x, rm, rv, w, b = _data(shape, np.float32)
    with pe.use_backend("numpy"):
        out = _compare(x, rm, rv, [w, b], training)
    assert out.shape == shape


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 5), (2, 3, 2, 3)])
def test_gradcheck(training, shape):
    x, rm, rv, w, b = _data(shape, np.float64, seed=2)
    with pe.use_backend("numpy"):
        gradcheck(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training),
                  [x, w, b])
        gradcheck(lambda x: F.batch_norm(x, None if training else rm.copy(),
                                         None if training else rv.copy(), training=training),
                  [x])


def test_bad_input():
    x = pe.tensor(np.zeros((4, 3, 5), np.float32))
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(4,\)"):
        F.batch_norm(pe.tensor(np.zeros(4, np.float32)), rm, rv)
    with pytest.raises(ValueError, match=r"running_mean should contain 3 elements.*\(4,\)"):
        F.batch_norm(x, np.zeros(4, np.float32), rv)
    with pytest.raises(ValueError, match=r"running_var should contain 3"):
        F.batch_norm(x, rm, np.ones(2, np.float32))
    with pytest.raises(ValueError, match=r"weight should contain 3 elements.*\(4, 3, 5\)"):
        F.batch_norm(x, rm, rv, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"bias should contain 3"):
        F.batch_norm(x, rm, rv, None, np.ones(1, np.float32))
    with pytest.raises(ValueError, match="both be None"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(ValueError, match="evaluation"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(pe.tensor(np.zeros((1, 3), np.float32)), rm, rv, training=True)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel.*\(1, 3, 1, 1\)"):
        F.batch_norm(pe.tensor(np.zeros((1, 3, 1, 1), np.float32)), None, None, training=True)
    with pytest.raises(TypeError, match="input"):
        F.batch_norm(pe.tensor(np.zeros((4, 3), np.int64)), rm, rv)
    with pytest.raises(TypeError, match="running_mean"):
        F.batch_norm(x, np.zeros(3, np.float64), rv)
    with pytest.raises(TypeError, match="weight"):
        F.batch_norm(x, rm, rv, np.ones(3, np.int32))
    with pytest.raises(TypeError, match="momentum"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)
    with pytest.raises(ValueError, match="eps must be positive"):
        F.batch_norm(x, rm, rv, training=True, eps=0.0)
    with pytest.raises(ValueError, match="eps must be non-negative"):
        F.batch_norm(x, rm, rv, training=False, eps=-1.0)
    with pytest.raises(TypeError, match="input"):
        F.batch_norm([[1.0, 2.0]], rm, rv)
    # In evaluation one value per channel is fine, as in torch.
    F.batch_norm(pe.tensor(np.zeros((1, 3), np.float32)), rm, rv, training=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(32, 17), (4, 33, 9, 11), (2, 1, 65), (3, 5, 1, 1)])
def test_backends_match_reference(dtype, training, shape):
    impls = implementations("batch_norm", dtype)
    if not impls:
        pytest.skip(f"no backend other than numpy implements batch_norm for {np.dtype(dtype)}")
    x, rm, rv, w, b = _data(shape, dtype, seed=7)
    dy = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    atol, rtol = tolerance("batch_norm", dtype)

    def run():
        run_rm, run_rv = rm.copy(), rv.copy()
        ts = [pe.Tensor(noncontiguous(a), requires_grad=True) for a in (x, w, b)]
        y = F.batch_norm(ts[0], run_rm, run_rv, ts[1], ts[2], training=training)
        y.backward(pe.tensor(dy))
        return [y.numpy(), run_rm, run_rv] + [t.grad.numpy() for t in ts]

    with pe.use_backend("numpy"):
        ref = run()
    for backend, _algo in impls:
        with pe.use_backend(backend):
            got = run()
        for k, (a, r) in enumerate(zip(got, ref)):
            assert_close(a, r, atol, rtol, name=f"{backend} batch_norm result {k}")
