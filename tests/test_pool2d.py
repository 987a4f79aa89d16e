"""Pooling (max_pool2d, avg_pool2d, max_unpool2d, adaptive_avg_pool2d): the numpy reference
against PyTorch (outputs, indices exactly, input gradients) and float64 central differences;
every other backend against the reference."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pyengine as pe
import pyengine.functional as F

from .helpers import (assert_close, check_backends_match, compare_with_torch, gradcheck,
                      implementations, noncontiguous)
from .tolerances import tolerance

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _reference_backend():
    # The reference is what these tests pin down; test_backends_match_reference switches to
    # each other backend explicitly inside this.
    with pe.use_backend("numpy"):
        yield


def _randn(shape, dtype):
    return np.random.standard_normal(shape).astype(dtype)


def _distinct(shape, dtype=np.float64):
    """Values that are all different and at least 1/size apart, so a max is differentiable and
    finite differences never cross a tie."""
    n = int(np.prod(shape))
    return (np.random.permutation(n).reshape(shape) / max(n, 1) - 0.5).astype(dtype)


def _layout(x, layout):
    return noncontiguous(x) if layout == "noncontig" else x


# ---------------------------------------------------------------------------------------------
# max_pool2d
# ---------------------------------------------------------------------------------------------
MAX_CASES = [
    ((2, 3, 7, 7), dict(kernel_size=2)),
    ((2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 1, 5, 6), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 2, 9, 8), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))),
    ((2, 3, 8, 7), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, ceil_mode=True)),   # ceil adds a window
    ((1, 2, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),  # ...and drops one
    ((1, 2, 10, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ((2, 3, 7, 9), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), dilation=(2, 1),
                        ceil_mode=True)),
    ((2, 3, 5, 5), dict(kernel_size=1, stride=2)),
    ((2, 1, 4, 4), dict(kernel_size=4, stride=1, padding=2)),        # padding = kernel/2
    ((3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),           # unbatched
    ((4, 5, 6), dict(kernel_size=(1, 3), stride=(3, 1), ceil_mode=True)),  # unbatched
    ((1, 17, 11, 13), dict(kernel_size=3, stride=3, dilation=(1, 2), ceil_mode=True)),
]


@pytest.mark.parametrize("layout", ["contig", "noncontig"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", MAX_CASES)
def test_max_pool2d_matches_torch(shape, kw, dtype, layout):
    x = _layout(_randn(shape, dtype), layout)
    (y, idx), (ty, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, return_indices=True, **kw),
        lambda t: TF.max_pool2d(t, return_indices=True, **kw), [x], "max_pool2d")
    assert y.dtype == np.dtype(dtype) and idx.dtype == np.int64
    assert not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    # Without return_indices the op returns the output alone.
    y2 = F.max_pool2d(pe.tensor(x), **kw)
    np.testing.assert_array_equal(y2.numpy(), y.numpy())


def test_max_pool2d_positional_and_stride_forms():
    x = _randn((2, 3, 9, 8), np.float32)
    ref = TF.max_pool2d(torch.from_numpy(x), 3, 2, 1, 1, True).numpy()
    np.testing.assert_array_equal(F.max_pool2d(pe.tensor(x), 3, 2, 1, 1, True).numpy(), ref)
    for stride in (None, (), []):  # torch: an empty stride means kernel_size
        np.testing.assert_array_equal(
            F.max_pool2d(x, [2, 3], stride=stride).numpy(),
            TF.max_pool2d(torch.from_numpy(x), [2, 3]).numpy())
    np.testing.assert_array_equal(F.max_pool2d(x, (2,), stride=(1,)).numpy(),
                                  TF.max_pool2d(torch.from_numpy(x), (2,), stride=(1,)).numpy())


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 7, 7), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 2, 8, 9), dict(kernel_size=(2, 3), stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 9, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ((3, 6, 6), dict(kernel_size=2, stride=1)),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_ties_pick_first_like_torch(shape, kw, dtype):
    # Few distinct values: nearly every window has tied maxima; indices must equal torch's.
    x = np.random.randint(0, 3, size=shape).astype(dtype)
    (_, idx), (_, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, return_indices=True, **kw),
        lambda t: TF.max_pool2d(t, return_indices=True, **kw), [x], "max_pool2d")
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_max_pool2d_tie_rule_by_hand():
    x = np.array([[[[5., 1., 5.],
                    [5., 5., 0.],
                    [2., 5., 5.]]]], np.float32)
    y, idx = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert y.numpy().tolist() == [[[[5.0, 5.0], [5.0, 5.0]]]]
    assert idx.numpy().tolist() == [[[[0, 2], [3, 4]]]]


def test_max_pool2d_padding_never_wins():
    # All -inf: every window must point at an input element, never at the padding.
    x = np.full((1, 2, 4, 5), -np.inf, np.float32)
    (y, idx), (ty, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, return_indices=True),
        lambda t: TF.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, return_indices=True),
        [x], "max_pool2d", grad=False)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert (idx.numpy() >= 0).all() and (idx.numpy() < 20).all()
    # Negative values next to the padding: the maximum is negative, not the padding's -inf or 0.
    x = -1.0 - np.random.rand(2, 3, 5, 5)
    (y, idx), (_, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, 2, stride=2, padding=1, return_indices=True),
        lambda t: TF.max_pool2d(t, 2, stride=2, padding=1, return_indices=True), [x], "max_pool2d")
    assert (y.numpy() < -1.0).all()
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_propagates_like_torch(dtype):
    # Non-overlapping 2x2 windows with at most one NaN each: values, indices and the gradient
    # (which goes to the NaN) must match torch.
    x = _randn((2, 3, 6, 8), dtype)
    x[0, 0, 0, 1] = np.nan
    x[0, 1, 3, 2] = np.nan
    x[1, 2, 5, 7] = np.nan
    x[1, 0, 2, 4] = np.nan
    x[1, 0, 3, 3] = np.inf  # another window: NaN beats +inf too
    x[1, 0, 2, 3] = np.nan
    (y, idx), (_, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, 2, return_indices=True),
        lambda t: TF.max_pool2d(t, 2, return_indices=True), [x], "max_pool2d")
    assert np.isnan(y.numpy()).sum() == 5
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    # Overlapping windows with padding and dilation, one NaN in the plane.
    x = _randn((1, 2, 7, 7), dtype)
    x[0, 1, 3, 4] = np.nan
    (y, idx), (_, tidx) = compare_with_torch(
        lambda t: F.max_pool2d(t, 3, stride=1, padding=1, dilation=2, return_indices=True),
        lambda t: TF.max_pool2d(t, 3, stride=1, padding=1, dilation=2, return_indices=True),
        [x], "max_pool2d")
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_max_pool2d_several_nans_in_a_window_like_torch():
    # A tap replaces the running maximum when it is greater or NaN, so the last NaN of a window
    # wins, exactly as PyTorch's CPU kernel does; values, indices and the gradient match torch.
    nan = np.nan
    x = np.array([[[[1., nan, 2., nan],
                    [nan, 0., nan, 3.]]]])
    y, idx = F.max_pool2d(pe.tensor(x, requires_grad=True), 2, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    assert np.isnan(y.numpy()).all()
    assert idx.numpy().tolist() == tidx.numpy().tolist() == [[[[4, 6]]]]
    t = pe.tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    assert t.grad.numpy().tolist() == [[[[0., 0., 0., 0.], [1., 0., 1., 0.]]]]


def test_max_pool2d_window_entirely_in_padding():
    # With dilation a window's taps can all fall in the padding (H=1, k=2, pad=1, dilation=2:
    # taps at rows -1 and 1). torch gives -inf there (and an index outside the plane); the
    # reference gives -inf, index -1, and passes no gradient back.
    # torch's backward would follow its out-of-plane index, so only its forward is compared.
    x = _randn((1, 2, 1, 3), np.float64)
    compare_with_torch(lambda t: F.max_pool2d(t, 2, stride=1, padding=1, dilation=2),
                       lambda t: TF.max_pool2d(t, 2, stride=1, padding=1, dilation=2),
                       [x], "max_pool2d", grad=False)
    t = pe.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(t, 2, stride=1, padding=1, dilation=2, return_indices=True)
    assert y.shape == (1, 2, 1, 3) and (y.numpy() == -np.inf).all()
    assert (idx.numpy() == -1).all()
    y.backward(pe.tensor(np.ones(y.shape)))
    assert (t.grad.numpy() == 0).all()


def test_max_pool2d_sweep_against_torch():
    # Output sizes (ceil_mode's rule included), values and indices over a grid of geometries;
    # where torch refuses a geometry, pyengine must raise ValueError.
    x_all = _distinct((1, 2, 7, 6), np.float32)
    count = 0
    for h, k, s, d, ceil in itertools.product((1, 2, 3, 5, 7), (1, 2, 3, 4), (1, 2, 3), (1, 2),
                                              (False, True)):
        for pad in range(k // 2 + 1):
            x = np.ascontiguousarray(x_all[:, :, :h])
            kw = dict(kernel_size=(k, 2), stride=(s, 1), padding=(pad, 0), dilation=(d, 1),
                      ceil_mode=ceil)
            try:
                ty, tidx = TF.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
            except RuntimeError:
                with pytest.raises(ValueError, match="output size"):
                    F.max_pool2d(x, **kw)
                continue
            y, idx = F.max_pool2d(x, return_indices=True, **kw)
            assert y.shape == tuple(ty.shape), kw
            empty = idx.numpy() == -1  # windows entirely in the padding, see the test above
            np.testing.assert_array_equal(y.numpy(), ty.numpy(), err_msg=str(kw))
            np.testing.assert_array_equal(idx.numpy()[~empty], tidx.numpy()[~empty],
                                          err_msg=str(kw))
            count += 1
    assert count > 200


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 8, 9), dict(kernel_size=(2, 3), stride=1, padding=(1, 1), dilation=2)),
    ((2, 2, 7, 6), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((3, 5, 5), dict(kernel_size=2, stride=1)),
])
def test_max_pool2d_gradcheck(shape, kw):
    gradcheck(lambda t: F.max_pool2d(t, **kw), [_distinct(shape)])


def test_max_pool2d_backward_overlapping_windows():
    # stride 1, kernel 3: an element can win up to 9 windows; its gradient is the sum of them.
    x = _distinct((2, 3, 6, 7), np.float32)
    compare_with_torch(lambda t: F.max_pool2d(t, 3, stride=1, padding=1),
                       lambda t: TF.max_pool2d(t, 3, stride=1, padding=1), [x], "max_pool2d")
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 1.0
    t = pe.tensor(x, requires_grad=True)
    F.max_pool2d(t, 3, stride=1, padding=1).sum().backward()
    assert t.grad.numpy()[0, 0, 2, 2] == 9.0


# ---------------------------------------------------------------------------------------------
# avg_pool2d
# ---------------------------------------------------------------------------------------------
AVG_CASES = [
    ((2, 3, 7, 7), dict(kernel_size=2)),
    ((2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((1, 1, 5, 6), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ((2, 2, 9, 8), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))),
    ((2, 3, 8, 7), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True)),
    ((2, 3, 8, 7), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, ceil_mode=True)),   # window past the input
    ((1, 2, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 7, 5), dict(kernel_size=3, stride=2, padding=1, divisor_override=3)),
    ((2, 3, 7, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True,
                        divisor_override=-2)),
    ((2, 3, 5, 5), dict(kernel_size=1, stride=2)),
    ((2, 1, 4, 4), dict(kernel_size=4, stride=1, padding=2, count_include_pad=False)),
    ((3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),           # unbatched
    ((4, 5, 6), dict(kernel_size=(1, 3), stride=(3, 1), ceil_mode=True, count_include_pad=False)),
    ((1, 17, 11, 13), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True)),
]


@pytest.mark.parametrize("layout", ["contig", "noncontig"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", AVG_CASES)
def test_avg_pool2d_matches_torch(shape, kw, dtype, layout):
    x = _layout(_randn(shape, dtype), layout)
    y, _ = compare_with_torch(lambda t: F.avg_pool2d(t, **kw),
                              lambda t: TF.avg_pool2d(t, **kw), [x], "avg_pool2d")
    assert y.dtype == np.dtype(dtype)


def test_avg_pool2d_positional_arguments():
    x = _randn((2, 3, 9, 8), np.float64)
    args = (3, 2, 1, True, False, 4)
    np.testing.assert_allclose(F.avg_pool2d(x, *args).numpy(),
                               TF.avg_pool2d(torch.from_numpy(x), *args).numpy(), rtol=1e-12)


def test_avg_pool2d_sweep_against_torch():
    x_all = _randn((1, 2, 7, 6), np.float64)
    count = 0
    for h, k, s, ceil, cip in itertools.product((1, 2, 3, 5, 7), (1, 2, 3, 4), (1, 2, 3),
                                                (False, True), (False, True)):
        for pad in range(k // 2 + 1):
            x = np.ascontiguousarray(x_all[:, :, :h])
            kw = dict(kernel_size=(k, 3), stride=(s, 2), padding=(pad, 1), ceil_mode=ceil,
                      count_include_pad=cip)
            try:
                ty = TF.avg_pool2d(torch.from_numpy(x), **kw)
            except RuntimeError:
                with pytest.raises(ValueError, match="output size"):
                    F.avg_pool2d(x, **kw)
                continue
            assert_close(F.avg_pool2d(x, **kw), ty, 1e-12, 1e-12, name=str(kw))
            count += 1
    assert count > 200


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 8, 9), dict(kernel_size=(2, 3), stride=1, padding=1, count_include_pad=False)),
    ((2, 2, 7, 6), dict(kernel_size=3, stride=2, ceil_mode=True, count_include_pad=False)),
    ((3, 5, 5), dict(kernel_size=2, stride=1, divisor_override=3)),
])
def test_avg_pool2d_gradcheck(shape, kw):
    gradcheck(lambda t: F.avg_pool2d(t, **kw), [_randn(shape, np.float64)])


# ---------------------------------------------------------------------------------------------
# max_unpool2d
# ---------------------------------------------------------------------------------------------
UNPOOL_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2), None),
    ((2, 3, 7, 7), dict(kernel_size=2), (7, 7)),
    ((1, 2, 9, 9), dict(kernel_size=3, stride=2, padding=1), None),
    ((2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 8)),
    ((1, 1, 6, 5), dict(kernel_size=(2, 3), stride=(2, 1)), None),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=1), None),   # overlapping: repeated indices
    ((3, 7, 6), dict(kernel_size=2), (7, 6)),                 # unbatched
    ((3, 7, 6), dict(kernel_size=2), (1, 1, 7, 6)),           # unbatched, 4-entry output_size
]


@pytest.mark.parametrize("layout", ["contig", "noncontig"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw,output_size", UNPOOL_CASES)
def test_max_unpool2d_matches_torch(shape, kw, output_size, dtype, layout):
    x = _randn(shape, dtype)
    y, idx = TF.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    pooled, indices = _layout(y.numpy(), layout), _layout(idx.numpy(), layout)
    out, tout = compare_with_torch(
        lambda v, i: F.max_unpool2d(v, i, output_size=output_size, **kw),
        lambda v, i: TF.max_unpool2d(v, i, output_size=output_size, **kw),
        [pooled, indices], "max_unpool2d")
    assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_unpool2d_round_trip(dtype):
    x = _distinct((2, 3, 6, 8), dtype) + 1  # positive, so "non-zero" means "kept"
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    back = F.max_unpool2d(y, idx, 2).numpy()
    # Each 2x2 block keeps its maximum where it was and zeros elsewhere.
    blocks = x.reshape(2, 3, 3, 2, 4, 2)
    is_max = blocks == blocks.max(axis=(3, 5), keepdims=True)
    np.testing.assert_array_equal(back, np.where(is_max, blocks, 0).reshape(x.shape))
    # Odd input with output_size restoring the original size.
    x = _distinct((1, 2, 7, 5), dtype) + 1
    y, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    back = F.max_unpool2d(y, idx, 3, stride=2, padding=1, output_size=x.shape[-2:]).numpy()
    np.testing.assert_array_equal(back[back != 0], x[back != 0])
    assert set(np.flatnonzero(back[0, 0])) == set(idx.numpy()[0, 0].ravel())


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_unpool2d_repeated_index_last_wins(dtype):
    x = np.array([[[[1., 2., 3., 4.]]]], dtype=dtype)
    idx = np.array([[[[0, 0, 1, 0]]]])
    # PyTorch leaves repeated indices unspecified (its CPU kernel gave 4.0 on one machine and
    # 2.0 on another), so the contract here is ours, on every backend: the last write in
    # row-major order wins.
    def run(algo):
        t = pe.tensor(x, requires_grad=True)
        y = F.max_unpool2d(t, idx, (1, 2))
        # The backward is a gather: every input reads the gradient at its index.
        y.backward(pe.tensor(np.arange(8.0, dtype=dtype).reshape(1, 1, 1, 8)))
        return y.numpy(), t.grad.numpy()
    y, g = run("direct")
    assert y.tolist() == [[[[4., 3., 0., 0., 0., 0., 0., 0.]]]]
    assert g.tolist() == [[[[0., 0., 1., 0.]]]]
    if implementations("max_unpool2d", dtype):
        check_backends_match("max_unpool2d", dtype, run)


@pytest.mark.parametrize("kw,output_size", [(dict(kernel_size=2), (7, 7)),
                                            (dict(kernel_size=3, stride=3, padding=1), None),
                                            (dict(kernel_size=(1, 2), stride=(1, 3)), (7, 7))])
def test_max_unpool2d_gradcheck(kw, output_size):
    # Non-overlapping windows: every index is unique. (Where an index repeats, only the last
    # input reaches the output, yet the gather backward -- torch's too -- gives every one of
    # them the gradient, so finite differences would disagree by definition.)
    x = _distinct((2, 2, 7, 7))
    y, idx = F.max_pool2d(x, return_indices=True, **kw)
    gradcheck(lambda v, i: F.max_unpool2d(v, i, output_size=output_size, **kw),
              [y.numpy(), idx.numpy()])


# ---------------------------------------------------------------------------------------------
# adaptive_avg_pool2d
# ---------------------------------------------------------------------------------------------
ADAPTIVE_CASES = [
    ((2, 3, 7, 7), 3),          # does not divide
    ((1, 2, 5, 5), 7),          # output larger than input: windows overlap
    ((2, 3, 6, 8), (3, 4)),     # divides
    ((2, 3, 6, 8), 1),          # global
    ((2, 3, 9, 7), (None, 3)),
    ((2, 3, 10, 7), [4, None]),
    ((1, 1, 1, 1), (3, 2)),
    ((1, 4, 13, 11), (5, 6)),
    ((3, 5, 5), (2, 3)),        # unbatched
    ((3, 5, 4), None),
]


@pytest.mark.parametrize("layout", ["contig", "noncontig"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,output_size", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_matches_torch(shape, output_size, dtype, layout):
    if output_size is None:
        output_size = (None, None)
    x = _layout(_randn(shape, dtype), layout)
    y, _ = compare_with_torch(lambda t: F.adaptive_avg_pool2d(t, output_size),
                              lambda t: TF.adaptive_avg_pool2d(t, output_size), [x],
                              "adaptive_avg_pool2d")
    assert y.dtype == np.dtype(dtype)


def test_adaptive_avg_pool2d_windows_by_hand():
    # H=5 -> 3: windows [0,2), [1,4), [3,5): overlapping by one row.
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    y = F.adaptive_avg_pool2d(x, (3, 1)).numpy().ravel()
    np.testing.assert_allclose(y, [0.5, 2.0, 3.5])


@pytest.mark.parametrize("shape,output_size", [((2, 3, 7, 7), 3), ((1, 2, 5, 4), (7, 3)),
                                               ((3, 6, 6), 1)])
def test_adaptive_avg_pool2d_gradcheck(shape, output_size):
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), [_randn(shape, np.float64)])


# ---------------------------------------------------------------------------------------------
# every op: empty batches, numpy inputs, bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_size_batch(dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    (y, idx), _ = compare_with_torch(
        lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True),
        lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True), [x], "max_pool2d")
    assert y.shape == (0, 3, 4, 3) and idx.dtype == np.int64
    compare_with_torch(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
                       lambda t: TF.avg_pool2d(t, 3, 2, 1, ceil_mode=True), [x], "avg_pool2d")
    compare_with_torch(lambda t: F.adaptive_avg_pool2d(t, (2, 5)),
                       lambda t: TF.adaptive_avg_pool2d(t, (2, 5)), [x],
                       "adaptive_avg_pool2d")
    compare_with_torch(lambda v, i: F.max_unpool2d(v, i, 2),
                       lambda v, i: TF.max_unpool2d(v, i, 2),
                       [np.zeros((0, 3, 3, 3), dtype), np.zeros((0, 3, 3, 3), np.int64)],
                       "max_unpool2d")
    # Zero output size or zero channels are fine for adaptive pooling (as torch).
    assert F.adaptive_avg_pool2d(np.zeros((2, 3, 5, 5), dtype), 0).shape == (2, 3, 0, 0)
    assert F.adaptive_avg_pool2d(np.zeros((2, 0, 5, 5), dtype), 2).shape == (2, 0, 2, 2)


X4 = np.zeros((2, 3, 6, 6), np.float32)
Y4, I4 = (a.numpy() for a in TF.max_pool2d(torch.from_numpy(X4), 2, return_indices=True))

BAD_INPUTS = {
    "max rank 2": (lambda: F.max_pool2d(np.zeros((6, 6), np.float32), 2), ValueError, "input"),
    "max rank 5": (lambda: F.max_pool2d(np.zeros((1, 1, 1, 6, 6), np.float32), 2), ValueError,
                   "input"),
    "max int dtype": (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4), np.int64), 2), TypeError,
                      "input"),
    "max not array": (lambda: F.max_pool2d([[1.0]], 1), TypeError, "input"),
    "max empty C": (lambda: F.max_pool2d(np.zeros((2, 0, 4, 4), np.float32), 2), ValueError,
                    r"\(2, 0, 4, 4\)"),
    "max empty H": (lambda: F.max_pool2d(np.zeros((2, 3, 0, 4), np.float32), 2), ValueError,
                    "non-zero"),
    "max empty 3d C": (lambda: F.max_pool2d(np.zeros((0, 4, 4), np.float32), 2), ValueError,
                       "non-zero"),
    "max kernel 0": (lambda: F.max_pool2d(X4, 0), ValueError, "kernel_size"),
    "max kernel 3 ints": (lambda: F.max_pool2d(X4, (2, 2, 2)), ValueError, "kernel_size"),
    "max kernel float": (lambda: F.max_pool2d(X4, 2.0), TypeError, "kernel_size"),
    "max stride 0": (lambda: F.max_pool2d(X4, 2, stride=0), ValueError, "stride"),
    "max negative padding": (lambda: F.max_pool2d(X4, 2, padding=-1), ValueError, "padding"),
    "max padding > k/2": (lambda: F.max_pool2d(X4, 3, padding=2), ValueError, "padding"),
    "max padding > k/2 dilated": (lambda: F.max_pool2d(X4, 3, padding=(0, 2), dilation=2),
                                  ValueError, "padding"),
    "max dilation 0": (lambda: F.max_pool2d(X4, 2, dilation=0), ValueError, "dilation"),
    "max output < 1": (lambda: F.max_pool2d(np.zeros((1, 1, 2, 2), np.float32), 3), ValueError,
                       r"output size.*\(1, 1, 2, 2\)"),
    "max output < 1 dilated": (lambda: F.max_pool2d(X4, 3, dilation=3), ValueError,
                               "output size"),
    "avg rank 2": (lambda: F.avg_pool2d(np.zeros((6, 6), np.float32), 2), ValueError, "input"),
    "avg int dtype": (lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4), np.int32), 2), TypeError,
                      "input"),
    "avg kernel 0": (lambda: F.avg_pool2d(X4, (2, 0)), ValueError, "kernel_size"),
    "avg negative stride": (lambda: F.avg_pool2d(X4, 2, stride=-1), ValueError, "stride"),
    "avg padding > k/2": (lambda: F.avg_pool2d(X4, 2, padding=2), ValueError, "padding"),
    "avg output < 1": (lambda: F.avg_pool2d(X4, 7), ValueError, "output size"),
    "avg divisor 0": (lambda: F.avg_pool2d(X4, 2, divisor_override=0), ValueError,
                      "divisor_override"),
    "avg divisor float": (lambda: F.avg_pool2d(X4, 2, divisor_override=2.5), TypeError,
                          "divisor_override"),
    "adaptive rank 2": (lambda: F.adaptive_avg_pool2d(np.zeros((5, 5), np.float32), 2),
                        ValueError, "input"),
    "adaptive int dtype": (lambda: F.adaptive_avg_pool2d(np.zeros((1, 1, 4, 4), np.int64), 2),
                           TypeError, "input"),
    "adaptive empty H": (lambda: F.adaptive_avg_pool2d(np.zeros((2, 3, 0, 5), np.float32), 2),
                         ValueError, r"\(2, 3, 0, 5\)"),
    "adaptive negative": (lambda: F.adaptive_avg_pool2d(X4, -1), ValueError, "output_size"),
    "adaptive 3 entries": (lambda: F.adaptive_avg_pool2d(X4, (1, 2, 3)), ValueError,
                           "output_size"),
    "adaptive 1 entry": (lambda: F.adaptive_avg_pool2d(X4, (3,)), ValueError, "output_size"),
    "adaptive float": (lambda: F.adaptive_avg_pool2d(X4, 2.5), TypeError, "output_size"),
    "unpool rank 2": (lambda: F.max_unpool2d(Y4[0, 0], I4[0, 0], 2), ValueError, "input"),
    "unpool int input": (lambda: F.max_unpool2d(I4, I4, 2), TypeError, "input"),
    "unpool int32 indices": (lambda: F.max_unpool2d(Y4, I4.astype(np.int32), 2), TypeError,
                             "indices"),
    "unpool float indices": (lambda: F.max_unpool2d(Y4, Y4, 2), TypeError, "indices"),
    "unpool shape mismatch": (lambda: F.max_unpool2d(Y4, I4[:, :1], 2), ValueError,
                              r"indices.*\(2, 1, 3, 3\)"),
    "unpool index too big": (lambda: F.max_unpool2d(Y4, I4 + 30, 2), IndexError,
                             r"indices contains \d+, out of range .*6x6"),
    "unpool index negative": (lambda: F.max_unpool2d(Y4, I4 - 8, 2), IndexError,
                              "indices contains -8"),
    "unpool index beyond default": (lambda: F.max_unpool2d(Y4[:, :, :2, :2],
                                                           I4[:, :, 1:3, 1:3], 2),
                                    IndexError, "4x4"),
    "unpool output_size 3 entries": (lambda: F.max_unpool2d(Y4, I4, 2, output_size=(3, 6, 6)),
                                     ValueError, "output_size"),
    "unpool output_size too big": (lambda: F.max_unpool2d(Y4, I4, 2, output_size=(8, 6)),
                                   ValueError, "output_size"),
    "unpool output_size too small": (lambda: F.max_unpool2d(Y4, I4, 2, output_size=(6, 4)),
                                     ValueError, "output_size"),
    "unpool output_size int": (lambda: F.max_unpool2d(Y4, I4, 2, output_size=6), TypeError,
                               "output_size"),
    "unpool kernel 0": (lambda: F.max_unpool2d(Y4, I4, 0), ValueError, "kernel_size"),
    "unpool stride 0": (lambda: F.max_unpool2d(Y4, I4, 2, stride=0), ValueError, "stride"),
    "unpool negative padding": (lambda: F.max_unpool2d(Y4, I4, 2, padding=-1), ValueError,
                                "padding"),
    "unpool output < 1": (lambda: F.max_unpool2d(Y4[:, :, :1, :1], I4[:, :, :1, :1] * 0, 2,
                                                 padding=1), ValueError, "output size"),
    "unpool empty C": (lambda: F.max_unpool2d(Y4[:, :0], I4[:, :0], 2), ValueError, "non-zero"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(case):
    fn, exc, match = BAD_INPUTS[case]
    with pytest.raises(exc, match=match):
        fn()


def test_float64_stays_float64_and_numpy_inputs():
    x = _randn((2, 3, 6, 6), np.float64)
    assert F.max_pool2d(x, 2).dtype == np.float64
    assert F.avg_pool2d(x, 2).dtype == np.float64
    assert F.adaptive_avg_pool2d(x, 3).dtype == np.float64
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert F.max_unpool2d(y, idx, 2).dtype == np.float64


# ---------------------------------------------------------------------------------------------
# every other backend against the reference
# ---------------------------------------------------------------------------------------------
def _run_max_pool2d(x, dy, kw):
    t = pe.Tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(t, return_indices=True, **kw)
    y.backward(pe.tensor(dy(y.shape)))
    return {"output": y.numpy(), "indices": idx.numpy(), "grad": t.grad.numpy()}


def _run_avg_pool2d(x, dy, kw):
    t = pe.Tensor(x, requires_grad=True)
    y = F.avg_pool2d(t, **kw)
    y.backward(pe.tensor(dy(y.shape)))
    return {"output": y.numpy(), "grad": t.grad.numpy()}


def _run_max_unpool2d(x, dy, kw):
    with pe.use_backend("numpy"):  # the same indices for every backend under test
        pooled, idx = F.max_pool2d(pe.tensor(x), return_indices=True, **kw)
    t = pe.Tensor(noncontiguous(pooled.numpy()), requires_grad=True)
    y = F.max_unpool2d(t, idx, output_size=x.shape[-2:], **kw)
    y.backward(pe.tensor(dy(y.shape)))
    return {"output": y.numpy(), "grad": t.grad.numpy()}


def _run_adaptive_avg_pool2d(x, dy, kw):
    t = pe.Tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(t, **kw)
    y.backward(pe.tensor(dy(y.shape)))
    return {"output": y.numpy(), "grad": t.grad.numpy()}


_WINDOW_KWS = [dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=(2, 3), stride=1, padding=(1, 1), ceil_mode=True),
               dict(kernel_size=3, stride=3, ceil_mode=True)]
BACKEND_CASES = (
    [("max_pool2d", _run_max_pool2d, s, kw) for s in ((2, 3, 9, 11), (1, 1, 17, 16))
     for kw in _WINDOW_KWS + [dict(kernel_size=3, stride=2, padding=1, dilation=2)]]
    + [("avg_pool2d", _run_avg_pool2d, s, dict(kw, count_include_pad=cip))
       for s in ((2, 3, 9, 11), (1, 1, 17, 16)) for kw in _WINDOW_KWS for cip in (True, False)]
    + [("avg_pool2d", _run_avg_pool2d, (2, 5, 8, 9),
        dict(kernel_size=2, stride=1, padding=1, divisor_override=3))]
    + [("max_unpool2d", _run_max_unpool2d, s, kw) for s in ((2, 3, 9, 11), (1, 1, 17, 16))
       for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1))]
    + [("adaptive_avg_pool2d", _run_adaptive_avg_pool2d, s, dict(output_size=o))
       for s in ((2, 3, 9, 11), (1, 1, 17, 16)) for o in (1, 3, (5, 7), 20)]
)


@pytest.mark.parametrize("data", ["distinct", "ties"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,run,shape,kw", BACKEND_CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[2]))}-{i}"
                              for i, c in enumerate(BACKEND_CASES)])
def test_backends_match_reference(op, run, shape, kw, dtype, data, monkeypatch):
    impls = implementations(op, dtype)
    if not impls:
        pytest.skip(f"no backend other than numpy implements {op} for {np.dtype(dtype)}")
    x = _distinct(shape, dtype) if data == "distinct" else \
        np.random.randint(0, 3, size=shape).astype(dtype)
    x = noncontiguous(x)
    rng = np.random.default_rng(1)
    dys = {}

    def dy(out_shape):  # one upstream gradient per output shape, shared by every backend
        return dys.setdefault(out_shape, rng.standard_normal(out_shape).astype(dtype))

    atol, rtol = tolerance(op, dtype)
    with pe.use_backend("numpy"):
        ref = run(x, dy, kw)
    monkeypatch.setenv("PYENGINE_POISON", "1")  # catch output elements a kernel never writes
    for backend, _algo in impls:
        with pe.use_backend(backend):
            got = run(x, dy, kw)
            again = run(x, dy, kw)
        for name, value in got.items():
            label = f"{backend} {op} {name}"
            if name == "indices":
                np.testing.assert_array_equal(value, ref[name], err_msg=label)
            else:
                assert value.dtype == ref[name].dtype, label
                assert_close(value, ref[name], atol, rtol, name=label)
            # Deterministic: the same inputs give bitwise the same results.
            np.testing.assert_array_equal(value, again[name], err_msg=label + " (rerun)")
