"""Losses (cross_entropy, nll_loss, mse_loss, smooth_l1_loss): the reference against PyTorch
(forward and every gradient) and float64 finite differences, argument checks, and every other
backend against the reference."""
import warnings
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pyengine as pe
import pyengine.functional as F
from pyengine.params import LossParams

from .helpers import assert_close, compare_with_torch, gradcheck, implementations, noncontiguous
from .tolerances import tolerance

REDUCTIONS = ["none", "mean", "sum"]
DTYPES = [np.float32, np.float64]
# (input shape): unbatched, plain, C=1, K-dimensional with two and one extra dims
CLASS_SHAPES = [(5,), (4, 7), (3, 1), (2, 3, 4, 5), (2, 4, 3)]


@pytest.fixture(autouse=True)
def _reference_backend():
    with pe.use_backend("numpy"):
        yield


# -- input makers ------------------------------------------------------------------------------
def _seed(*case):
    """A seed per parameter combination that is the same in every run (hash() is not)."""
    return zlib.crc32(repr(case).encode())


def _target_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def _class_dim(shape):
    return 0 if len(shape) == 1 else 1


def _logits(shape, dtype, rng, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _class_indices(shape, rng, ignore_index=None):
    """Class indices for an input of ``shape``; every third one set to ``ignore_index``."""
    c = shape[_class_dim(shape)]
    t = rng.integers(0, c, size=_target_shape(shape)).astype(np.int64)
    if ignore_index is not None:
        t.reshape(-1)[::3] = ignore_index
    return t


def _probabilities(shape, dtype, rng):
    z = rng.standard_normal(shape)
    e = np.exp(z - z.max(axis=_class_dim(shape), keepdims=True))
    return (e / e.sum(axis=_class_dim(shape), keepdims=True)).astype(dtype)


def _weight(c, dtype, rng):
    return rng.uniform(0.2, 2.0, size=c).astype(dtype)


def _ce(weight_given, **kw):
    """pyengine and torch callables for cross_entropy taking (input, target[, weight])."""
    if weight_given:
        return (lambda x, t, w: F.cross_entropy(x, t, weight=w, **kw),
                lambda x, t, w: TF.cross_entropy(x, t, weight=w, **kw))
    return (lambda x, t: F.cross_entropy(x, t, **kw), lambda x, t: TF.cross_entropy(x, t, **kw))


def _nll(weight_given, **kw):
    if weight_given:
        return (lambda x, t, w: F.nll_loss(x, t, weight=w, **kw),
                lambda x, t, w: TF.nll_loss(x, t, weight=w, **kw))
    return (lambda x, t: F.nll_loss(x, t, **kw), lambda x, t: TF.nll_loss(x, t, **kw))


# -- cross_entropy against PyTorch -------------------------------------------------------------
# target kinds: class indices (no ignored entry / entries equal to the default -100 / ignoring
# the real class 1), and class probabilities
TARGET_KINDS = ["index", "ignore_default", "ignore_class1", "prob"]


def _ce_case(shape, kind, weighted, dtype, rng):
    """(arrays, grad_inputs, ignore_index) of one cross_entropy case."""
    x = _logits(shape, dtype, rng)
    ignore_index = -100
    if kind == "prob":
        t = _probabilities(shape, dtype, rng)
    elif kind == "index":
        t = _class_indices(shape, rng)
    elif kind == "ignore_default":
        t = _class_indices(shape, rng, ignore_index=-100)
    else:
        ignore_index = 1 if shape[_class_dim(shape)] > 1 else 0
        t = _class_indices(shape, rng, ignore_index=ignore_index)
    arrays = [x, t] + ([_weight(shape[_class_dim(shape)], dtype, rng)] if weighted else [])
    # probability targets (and then their weight) are differentiable, class indices are not
    grads = list(range(len(arrays))) if kind == "prob" else [0]
    return arrays, grads, ignore_index


@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_torch(shape, kind, weighted, reduction, label_smoothing, dtype):
    rng = np.random.default_rng(_seed(shape, kind, weighted))
    arrays, grads, ignore_index = _ce_case(shape, kind, weighted, dtype, rng)
    pe_fn, th_fn = _ce(weighted, reduction=reduction, label_smoothing=label_smoothing,
                       ignore_index=ignore_index)
    out, ref = compare_with_torch(pe_fn, th_fn, arrays, "cross_entropy", grad_inputs=grads)
    assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_large_logits(kind, dtype, reduction):
    rng = np.random.default_rng(1)
    x = _logits((5, 6), dtype, rng)
    x[0, 2] = 1e4                    # one huge outlier
    x[1] = -1e4                      # a whole row of huge negatives
    x[2, ::2], x[2, 1::2] = 1e4, -1e4
    x[3] += 1e4                      # everything large: only differences matter
    t = _probabilities((5, 6), dtype, rng) if kind == "prob" else np.array([2, 3, 0, 1, 5])
    pe_fn, th_fn = _ce(False, reduction=reduction, label_smoothing=0.1)
    out, _ = compare_with_torch(pe_fn, th_fn, [x, t], "cross_entropy",
                                grad_inputs=[0, 1] if kind == "prob" else [0])
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_masked_logits(label_smoothing):
    # -inf logits (masked classes): finite without smoothing, +inf with it, as in PyTorch.
    x = np.random.standard_normal((3, 4))
    x[:, 1] = -np.inf
    t = np.array([0, 2, 3])
    pe_fn, th_fn = _ce(False, reduction="none", label_smoothing=label_smoothing)
    compare_with_torch(pe_fn, th_fn, [x, t], "cross_entropy", grad_inputs=[0])


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 4, 5)])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_noncontiguous(shape, kind, dtype):
    rng = np.random.default_rng(2)
    x = noncontiguous(_logits(shape, dtype, rng))
    t = noncontiguous(_probabilities(shape, dtype, rng)) if kind == "prob" \
        else _class_indices(shape, rng, ignore_index=-100)
    if kind == "index" and t.ndim > 1:
        t = noncontiguous(t)
    w = noncontiguous(_weight(shape[1], dtype, rng)[None])[0]
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    pe_fn, th_fn = _ce(True, label_smoothing=0.1)
    compare_with_torch(pe_fn, th_fn, [x, t, w], "cross_entropy",
                       grad_inputs=[0, 1, 2] if kind == "prob" else [0])


@pytest.mark.parametrize("shape", [(0, 4), (0, 3, 2, 2), (2, 3, 0, 2)])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_empty_batch(shape, kind, reduction, label_smoothing):
    rng = np.random.default_rng(3)
    x = _logits(shape, np.float32, rng)
    t = _probabilities(shape, np.float32, rng) if kind == "prob" else _class_indices(shape, rng)
    pe_fn, th_fn = _ce(True, reduction=reduction, label_smoothing=label_smoothing)
    out, _ = compare_with_torch(pe_fn, th_fn, [x, t, _weight(shape[1], np.float32, rng)],
                                "cross_entropy", grad_inputs=[0, 1] if kind == "prob" else [0])
    if reduction == "mean":
        assert np.isnan(out.item())


def test_cross_entropy_all_ignored_and_zero_classes():
    x = np.random.standard_normal((3, 4))
    t = np.full(3, -100)
    for red in REDUCTIONS:  # mean of no target is NaN, gradients are zero
        compare_with_torch(*_ce(False, reduction=red, label_smoothing=0.1), [x, t],
                           "cross_entropy", grad_inputs=[0])
    empty_classes = np.zeros((2, 0))
    for red in REDUCTIONS:  # C = 0: only ignored targets are valid
        compare_with_torch(*_ce(False, reduction=red), [empty_classes, np.full(2, -100)],
                           "cross_entropy", grad_inputs=[0])


@pytest.mark.parametrize("tdtype", [np.int32, np.int16, np.uint8, np.int64])
def test_cross_entropy_integer_target_dtypes(tdtype):
    x = np.random.standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 2, 3])
    got = F.cross_entropy(pe.tensor(x), pe.tensor(t.astype(tdtype)), reduction="none")
    want = TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), reduction="none")
    assert_close(got, want, *tolerance("cross_entropy", np.float32))


def test_cross_entropy_unbatched_target_of_shape_one():
    x = np.random.standard_normal(6)
    for red in REDUCTIONS:  # PyTorch treats a (1,) target of a (C,) input like a 0-d one
        # (its forward only: torch's own backward fails on this shape with "size mismatch")
        out, ref = compare_with_torch(*_ce(False, reduction=red), [x, np.array([4])],
                                      "cross_entropy", grad=False)
        assert out.shape == tuple(ref.shape) == ()
        grads = []
        for t in (np.array([4]), np.array(4)):
            xt = pe.Tensor(x, requires_grad=True)
            F.cross_entropy(xt, pe.tensor(t), reduction=red).backward()
            grads.append(xt.grad.numpy())
        assert_close(grads[0], grads[1], 0, 0, name="grad with a (1,) target")


def test_cross_entropy_probability_dtype_promotion():
    x = np.random.standard_normal((3, 4)).astype(np.float32)
    t = _probabilities((3, 4), np.float64, np.random.default_rng(4))
    out, ref = compare_with_torch(*_ce(False), [x, t], "cross_entropy")
    assert out.dtype == np.float64


def test_cross_entropy_unnormalised_probabilities():
    # PyTorch does not require target rows to sum to one; neither do we.
    rng = np.random.default_rng(5)
    x, t, w = rng.standard_normal((4, 5)), rng.uniform(0, 3, (4, 5)), _weight(5, np.float64, rng)
    compare_with_torch(*_ce(True, label_smoothing=0.3), [x, t, w], "cross_entropy")


def test_cross_entropy_is_fused(monkeypatch):
    """Forward and input gradient never run the log-softmax kernels."""
    def forbidden(*args, **kwargs):
        raise AssertionError("cross_entropy must not call log_softmax")

    backend_type = type(pe.backends.get("numpy"))
    monkeypatch.setattr(backend_type, "log_softmax_forward", staticmethod(forbidden))
    monkeypatch.setattr(backend_type, "log_softmax_backward", staticmethod(forbidden))
    x = pe.Tensor(np.random.standard_normal((3, 4)), requires_grad=True)
    F.cross_entropy(x, pe.tensor(np.array([0, 1, 2])), label_smoothing=0.1).backward()
    assert x.grad is not None


def test_cross_entropy_kernel_contract():
    """The reference kernels on (M, C): dtypes kept, lse is the row log-sum-exp."""
    backend = pe.backends.get("numpy")
    for dtype in DTYPES:
        x = _logits((6, 5), dtype, np.random.default_rng(6))
        x[0, 0] = 1e4
        t = np.array([0, 1, 2, 3, 4, -100])
        for red in REDUCTIONS:
            loss, lse = backend.cross_entropy_forward(x, t, None, LossParams(reduction=red))
            assert loss.dtype == lse.dtype == dtype
            assert loss.shape == ((6,) if red == "none" else ())
            dlogits = backend.cross_entropy_backward(np.ones(loss.shape, dtype), x, t, None, lse,
                                                     LossParams(reduction=red))
            assert dlogits.dtype == dtype and dlogits.shape == x.shape
        assert_close(lse, torch.logsumexp(torch.from_numpy(x), 1), *tolerance("cross_entropy",
                                                                            dtype))


# -- nll_loss against PyTorch ------------------------------------------------------------------
@pytest.mark.parametrize("shape", CLASS_SHAPES + [(2, 3, 2, 2, 2)])
@pytest.mark.parametrize("ignore", [None, "default", "class1"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nll_loss_matches_torch(shape, ignore, weighted, reduction, dtype):
    rng = np.random.default_rng(_seed(shape, ignore, weighted))
    c = shape[_class_dim(shape)]
    ignore_index = {None: -100, "default": -100, "class1": min(1, c - 1)}[ignore]
    x = _logits(shape, dtype, rng)
    t = _class_indices(shape, rng, None if ignore is None else ignore_index)
    arrays = [x, t] + ([_weight(c, dtype, rng)] if weighted else [])
    pe_fn, th_fn = _nll(weighted, reduction=reduction, ignore_index=ignore_index)
    out, ref = compare_with_torch(pe_fn, th_fn, arrays, "nll_loss", grad_inputs=[0])
    assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("shape", [(0, 4), (0, 3, 2, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_empty_batch_and_noncontiguous(shape, reduction):
    rng = np.random.default_rng(7)
    compare_with_torch(*_nll(False, reduction=reduction),
                       [_logits(shape, np.float32, rng), _class_indices(shape, rng)],
                       "nll_loss", grad_inputs=[0])
    x = noncontiguous(_logits((3, 5, 4), np.float64, rng))
    compare_with_torch(*_nll(True, reduction=reduction),
                       [x, _class_indices((3, 5, 4), rng, -100), _weight(5, np.float64, rng)],
                       "nll_loss", grad_inputs=[0])


def test_nll_loss_all_ignored():
    x = np.random.standard_normal((3, 4))
    for red in REDUCTIONS:
        compare_with_torch(*_nll(True, reduction=red), [x, np.full(3, 2), np.ones(4)],
                           "nll_loss", grad_inputs=[0])
        out = F.nll_loss(pe.tensor(x), pe.tensor(np.full(3, 2)), ignore_index=2, reduction=red)
        ref = TF.nll_loss(torch.from_numpy(x), torch.full((3,), 2), ignore_index=2,
                          reduction=red)
        assert_close(out, ref, *tolerance("nll_loss", np.float64))


# -- mse_loss / smooth_l1_loss against PyTorch -------------------------------------------------
# (input shape, target shape): equal shapes, 0-d, and broadcasting either way
POINTWISE_SHAPES = [((4, 5), (4, 5)), ((7,), (7,)), ((2, 3, 4, 5), (2, 3, 4, 5)), ((), ()),
                    ((3, 1), (4,)), ((4,), (3, 4)), ((2, 1, 3), (1, 4, 1))]


def _pointwise(name, **kw):
    return (lambda x, t: getattr(F, name)(x, t, **kw),
            lambda x, t: getattr(TF, name)(x, t, **kw))


def _compare_pointwise(name, xs, ts, dtype, seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(xs) * 2).astype(dtype)
    t = (rng.standard_normal(ts) * 2).astype(dtype)
    if x.shape == t.shape and x.size > 2:
        t.reshape(-1)[:2] = x.reshape(-1)[:2]  # exact zeros of d: sign(0) = 0 for the L1 slope
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # both libraries warn on broadcasting
        return compare_with_torch(*_pointwise(name, **kw), [x, t], name)


@pytest.mark.parametrize("shapes", POINTWISE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_loss_matches_torch(shapes, reduction, dtype):
    out, ref = _compare_pointwise("mse_loss", *shapes, dtype, reduction=reduction)
    assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("shapes", POINTWISE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_l1_loss_matches_torch(shapes, reduction, beta, dtype):
    out, ref = _compare_pointwise("smooth_l1_loss", *shapes, dtype, reduction=reduction,
                                  beta=beta)
    assert out.shape == tuple(ref.shape)


def test_smooth_l1_loss_at_beta_boundary():
    # |d| == beta exactly: both branches give beta / 2 and slope +-1
    x = np.array([1.5, -1.5, 0.0, 0.75])
    t = np.zeros(4)
    compare_with_torch(*_pointwise("smooth_l1_loss", beta=1.5, reduction="none"), [x, t],
                       "smooth_l1_loss")


@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((3, 1), (3, 4)), ((6,), (6,))])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_loss_weighted(shapes, reduction, dtype):
    rng = np.random.default_rng(8)
    xs, ts = shapes
    x, t = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ts).astype(dtype)
    w = rng.uniform(0.1, 2.0, xs).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        compare_with_torch(lambda a, b, c: F.mse_loss(a, b, reduction=reduction, weight=c),
                           lambda a, b, c: TF.mse_loss(a, b, reduction=reduction, weight=c),
                           [x, t, w], "mse_loss")


@pytest.mark.parametrize("name", ["mse_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pointwise_empty_noncontiguous_and_promotion(name, reduction):
    out, _ = _compare_pointwise(name, (0, 3), (0, 3), np.float32, reduction=reduction)
    assert out.shape == ((0, 3) if reduction == "none" else ())
    rng = np.random.default_rng(9)
    x = noncontiguous(rng.standard_normal((3, 4, 5)))
    t = noncontiguous(rng.standard_normal((3, 4, 5)))
    compare_with_torch(*_pointwise(name, reduction=reduction), [x, t], name)
    # float32 input, float64 target -> float64 (PyTorch's promotion); integer target -> float32
    x32 = rng.standard_normal((2, 3)).astype(np.float32)
    out, _ = compare_with_torch(*_pointwise(name, reduction=reduction),
                                [x32, rng.standard_normal((2, 3))], name)
    assert out.dtype == np.float64
    out, _ = compare_with_torch(*_pointwise(name, reduction=reduction),
                                [x32, rng.integers(-2, 3, (2, 3))], name, grad_inputs=[0])
    assert out.dtype == np.float32


@pytest.mark.parametrize("name", ["mse_loss", "smooth_l1_loss"])
def test_pointwise_broadcast_warns(name):
    x, t = pe.tensor(np.zeros((3, 1), np.float32)), pe.tensor(np.ones(4, np.float32))
    with pytest.warns(UserWarning, match=r"target size \(4,\).*input size \(3, 1\)"):
        out = getattr(F, name)(x, t, reduction="none")
    assert out.shape == (3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same shapes: no warning
        getattr(F, name)(x, x)


# -- float64 directional gradient checks -------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 3, 2), (6,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_gradcheck_cross_entropy(shape, reduction, label_smoothing):
    rng = np.random.default_rng(10)
    c = shape[_class_dim(shape)]
    x, w = _logits(shape, np.float64, rng), _weight(c, np.float64, rng)
    t = _class_indices(shape, rng, ignore_index=-100 if len(shape) > 1 else None)
    gradcheck(lambda a: F.cross_entropy(a, pe.tensor(t), weight=pe.tensor(w),
                                        reduction=reduction, label_smoothing=label_smoothing),
              [x])
    p = _probabilities(shape, np.float64, rng)
    gradcheck(lambda a, b, v: F.cross_entropy(a, b, weight=v, reduction=reduction,
                                              label_smoothing=label_smoothing), [x, p, w])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_nll_loss(reduction):
    rng = np.random.default_rng(11)
    x = _logits((2, 4, 3, 3), np.float64, rng)
    t = _class_indices((2, 4, 3, 3), rng, ignore_index=-100)
    w = _weight(4, np.float64, rng)
    gradcheck(lambda a: F.nll_loss(a, pe.tensor(t), weight=pe.tensor(w), reduction=reduction),
              [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_gradcheck_pointwise(reduction, beta):
    rng = np.random.default_rng(12)
    x, t = rng.standard_normal((3, 1, 4)), rng.standard_normal((3, 5, 4))
    w = rng.uniform(0.1, 2.0, (3, 1, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [x, t])
        gradcheck(lambda a, b, v: F.mse_loss(a, b, reduction=reduction, weight=v), [x, t, w])
        gradcheck(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, t])


# -- legacy arguments --------------------------------------------------------------------------
LEGACY = [(None, False, "none"), (False, None, "sum"), (True, True, "mean"), (False, False, "none"),
          (True, None, "mean"), (None, True, "mean"), (False, True, "sum")]


@pytest.mark.parametrize("size_average,reduce,expected", LEGACY)
def test_legacy_size_average_and_reduce(size_average, reduce, expected):
    rng = np.random.default_rng(13)
    x, t = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    calls = [(F.cross_entropy, TF.cross_entropy, t), (F.nll_loss, TF.nll_loss, t),
             (F.mse_loss, TF.mse_loss, rng.standard_normal((4, 3))),
             (F.smooth_l1_loss, TF.smooth_l1_loss, rng.standard_normal((4, 3)))]
    for pe_fn, th_fn, target in calls:
        with pytest.warns(UserWarning, match=f"please use reduction='{expected}'"):
            got = pe_fn(pe.tensor(x), pe.tensor(target), size_average=size_average,
                        reduce=reduce)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            want = th_fn(torch.from_numpy(x), torch.from_numpy(target),
                         size_average=size_average, reduce=reduce)
        assert_close(got, want, *tolerance("cross_entropy", np.float64))


def test_elementwise_mean_is_a_deprecated_mean():
    x, t = np.random.standard_normal((4, 3)), np.random.standard_normal((4, 3))
    with pytest.warns(UserWarning, match="elementwise_mean"):
        got = F.mse_loss(pe.tensor(x), pe.tensor(t), reduction="elementwise_mean")
    assert got.item() == F.mse_loss(pe.tensor(x), pe.tensor(t)).item()


# -- bad input ---------------------------------------------------------------------------------
def _f32(*shape):
    return pe.tensor(np.zeros(shape, np.float32))


def _idx(*values):
    return pe.tensor(np.array(values, np.int64))


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_bad_class_input(fn):
    with pytest.raises(TypeError, match="input"):
        fn(pe.tensor(np.zeros((2, 3), np.int64)), _idx(0, 1))
    with pytest.raises(ValueError, match=r"class dimension.*\(\)"):
        fn(_f32(), _idx(0))
    with pytest.raises(ValueError, match=r"target of shape \(3,\).*input of shape \(2, 4\)"):
        fn(_f32(2, 4), _idx(0, 1, 2))
    with pytest.raises(ValueError, match=r"target of shape \(2, 5\).*\(2, 3, 4, 5\)"):
        fn(_f32(2, 3, 4, 5), pe.tensor(np.zeros((2, 5), np.int64)))
    with pytest.raises(ValueError, match=r"target of shape \(2,\).*\(4,\)"):
        fn(_f32(4), _idx(0, 1))
    with pytest.raises(IndexError, match=r"class index 4.*C=4"):
        fn(_f32(2, 4), _idx(0, 4))
    with pytest.raises(IndexError, match=r"class index -1.*C=4"):
        fn(_f32(2, 4), _idx(-1, 0))
    with pytest.raises(IndexError, match=r"class index 0.*C=0"):
        fn(_f32(2, 0), _idx(0, -100))
    with pytest.raises(IndexError, match=r"class index -100.*ignore_index=3"):
        fn(_f32(2, 4), _idx(-100, 0), ignore_index=3)
    with pytest.raises(TypeError, match="integer dtype.*float32"):
        fn(_f32(2, 4), _f32(2))
    with pytest.raises(TypeError, match="integer dtype.*bool"):
        fn(_f32(2, 4), pe.tensor(np.array([True, False])))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\).*\(3,\)"):
        fn(_f32(2, 4), _idx(0, 1), weight=_f32(3))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\).*\(1, 4\)"):
        fn(_f32(2, 4), _idx(0, 1), weight=_f32(1, 4))
    with pytest.raises(TypeError, match="weight"):
        fn(_f32(2, 4), _idx(0, 1), weight=pe.tensor(np.ones(4, np.int64)))
    with pytest.raises(TypeError, match="weight.*float64.*float32"):
        fn(_f32(2, 4), _idx(0, 1), weight=pe.tensor(np.ones(4)))
    with pytest.raises(ValueError, match="weight.*requires grad"):
        fn(_f32(2, 4), _idx(0, 1), weight=pe.tensor(np.ones(4, np.float32), requires_grad=True))
    with pytest.raises(TypeError, match="ignore_index"):
        fn(_f32(2, 4), _idx(0, 1), ignore_index=1.0)
    with pytest.raises(ValueError, match="reduction"):
        fn(_f32(2, 4), _idx(0, 1), reduction="avg")
    with pytest.raises(TypeError, match="target"):
        fn(_f32(2, 4), [0, 1])


def test_bad_cross_entropy_specifics():
    with pytest.raises(TypeError, match=r"probabilities.*int64"):
        F.cross_entropy(_f32(2, 4), pe.tensor(np.zeros((2, 4), np.int64)))
    with pytest.raises(ValueError, match=r"ignore_index=0.*probability"):
        F.cross_entropy(_f32(2, 4), _f32(2, 4), ignore_index=0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing"):
            F.cross_entropy(_f32(2, 4), _idx(0, 1), label_smoothing=bad)
    with pytest.raises(TypeError, match="label_smoothing"):
        F.cross_entropy(_f32(2, 4), _idx(0, 1), label_smoothing="0.1")
    with pytest.raises(TypeError, match="input must be float32 or float64.*float16"):
        F.cross_entropy(pe.tensor(np.zeros((2, 4), np.float16)), _f32(2, 4))


def test_bad_nll_target():
    with pytest.raises(ValueError, match=r"target of shape \(2, 4\).*input of shape \(2, 4\)"):
        F.nll_loss(_f32(2, 4), _f32(2, 4))  # nll_loss has no probability targets


@pytest.mark.parametrize("name", ["mse_loss", "smooth_l1_loss"])
def test_bad_pointwise_input(name):
    fn = getattr(F, name)
    with pytest.raises(ValueError, match=r"input of shape \(3, 4\).*target of shape \(5,\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fn(_f32(3, 4), _f32(5))
    with pytest.raises(TypeError, match=r"float32 or float64.*int64"):
        fn(pe.tensor(np.zeros(3, np.int64)), pe.tensor(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match="reduction"):
        fn(_f32(3), _f32(3), reduction="mean ")
    with pytest.raises(TypeError, match="input"):
        fn([1.0, 2.0], _f32(2))


def test_bad_smooth_l1_beta_and_mse_weight():
    with pytest.raises(ValueError, match=r"beta must be >= 0, got -1"):
        F.smooth_l1_loss(_f32(3), _f32(3), beta=-1.0)
    with pytest.raises(TypeError, match="beta"):
        F.smooth_l1_loss(_f32(3), _f32(3), beta="1")
    with pytest.raises(ValueError, match=r"weight must have the input's shape \(3, 4\).*\(4,\)"):
        F.mse_loss(_f32(3, 4), _f32(3, 4), weight=_f32(4))
    with pytest.raises(TypeError, match="float32 or float64.*float16"):
        F.mse_loss(pe.tensor(np.zeros(3, np.float16)), pe.tensor(np.zeros(3, np.float16)))


# -- every other backend against the reference -------------------------------------------------
def _backend_cases(op, dtype):
    """(callable of the differentiable tensors, arrays) pairs that exercise ``op``."""
    rng = np.random.default_rng(14)
    cases = []
    if op in ("cross_entropy", "nll_loss"):
        fn = getattr(F, op)
        for shape in [(17, 10), (2, 21, 13, 11), (33,), (5, 1), (64, 1000)]:
            c = shape[_class_dim(shape)]
            x = _logits(shape, dtype, rng, scale=4.0)
            x.reshape(-1)[::7] = 30.0  # outliers
            t = _class_indices(shape, rng, ignore_index=-100 if len(shape) > 1 else None)
            w = _weight(c, dtype, rng)
            for red in REDUCTIONS:
                kw = {"label_smoothing": 0.1} if op == "cross_entropy" else {}
                cases.append((lambda a, t=t, w=w, red=red, kw=kw:
                              fn(a, pe.tensor(t), weight=pe.tensor(w), reduction=red, **kw), [x]))
                cases.append((lambda a, t=t, red=red: fn(a, pe.tensor(t), reduction=red), [x]))
            if op == "cross_entropy":
                p = _probabilities(shape, dtype, rng)
                cases.append((lambda a, b: F.cross_entropy(a, b, label_smoothing=0.2), [x, p]))
    else:
        fn = getattr(F, op)
        for xs, ts in [((7, 33), (7, 33)), ((2, 3, 17, 19), (2, 3, 17, 19)), ((1000,), (1000,))]:
            x, t = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ts).astype(dtype)
            for red in REDUCTIONS:
                kw = {"beta": 0.5} if op == "smooth_l1_loss" else {}
                cases.append((lambda a, b, red=red, kw=kw: fn(a, b, reduction=red, **kw), [x, t]))
    return cases


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss", "mse_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_backends_match_reference(op, dtype):
    impls = implementations(op, dtype)
    if not impls:
        pytest.skip(f"no backend other than numpy implements {op} for {np.dtype(dtype)}")
    atol, rtol = tolerance(op, dtype)

    def run(fn, arrays):
        ts = [pe.Tensor(noncontiguous(a), requires_grad=True) for a in arrays]
        y = fn(*ts)
        y.backward(pe.tensor(np.linspace(-1, 1, y.numpy().size).reshape(y.shape).astype(dtype)))
        return [y.numpy()] + [t.grad.numpy() for t in ts]

    for k, (fn, arrays) in enumerate(_backend_cases(op, dtype)):
        with pe.use_backend("numpy"):
            ref = run(fn, arrays)
        for backend, _algo in impls:
            with pe.use_backend(backend):
                got = run(fn, arrays)
            for i, (g, r) in enumerate(zip(got, ref)):
                assert_close(g, r, atol, rtol, name=f"{backend} {op} case {k} output/grad {i}")
