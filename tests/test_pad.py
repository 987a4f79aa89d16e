"""pad: every mode against PyTorch (forward and gradient) and finite differences, PyTorch's
rules on which dimensions each mode pads, and its errors."""
import numpy as np
import pytest
import torch

import pyengine as pe
import pyengine.functional as F

from .helpers import check_backends_match, compare_with_torch, gradcheck, noncontiguous

TF = torch.nn.functional

# (input shape, pad) pairs that torch accepts in the non-constant modes; several use negative
# amounts (cropping) on one or both sides.
GATHER_CASES = [
    ((2, 5), (1, 2)),
    ((2, 3, 7), (3, 1)),
    ((2, 3, 7), (0, 4)),
    ((1, 1, 6), (-2, 3)),
    ((2, 3, 7), (2, -3)),
    ((2, 3, 7), (-1, -2)),
    ((3, 4, 5), (1, 1, 2, 3)),
    ((2, 3, 4, 5), (2, 1, 0, 3)),
    ((2, 1, 4, 5), (-1, 2, 3, -2)),
    ((1, 2, 5, 6), (4, 5, 1, 0)),
    ((2, 3, 4, 5), (1, 2, 3, 1, 2, 2)),
    ((2, 1, 3, 4, 5), (2, 1, 1, 2, 1, 0)),
    ((1, 2, 3, 4, 5), (-1, 1, 2, -1, 1, 1)),
]
CONSTANT_CASES = GATHER_CASES + [
    ((4,), (2, 3)),
    ((3, 4), (1, 1, 2, 2)),
    ((2, 3, 4, 5), (1, 2, 0, 1, 3, 1, 1, 2)),   # every dimension, the batch too
    ((2, 3, 4), (-4, 1)),                        # crops the whole last dimension, pads 1
    ((2, 3, 4), (-2, -2)),                       # crops to an empty dimension
    ((3, 4), (5, -3, -1, 2)),
    ((2, 3), ()),
    ((), ()),
]


def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _allowed(mode, shape, pads):
    """Cases of GATHER_CASES that torch accepts in ``mode`` (reflect needs pads < size,
    circular crops then wraps at most once)."""
    n = len(pads) // 2
    for i in range(n):
        size, before, after = shape[-1 - i], pads[2 * i], pads[2 * i + 1]
        if mode == "reflect" and not (before < size and after < size):
            return False
        if mode == "circular":
            kept = size - max(-before, 0) - max(-after, 0)
            if max(before, 0) > kept or max(after, 0) > kept:
                return False
    return True


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pads", GATHER_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_modes_match_torch(mode, shape, pads, dtype):
    if not _allowed(mode, shape, pads):
        with pytest.raises(ValueError, match="pad"):
            F.pad(pe.tensor(_x(shape, dtype)), pads, mode=mode)
        return
    with pe.use_backend("numpy"):
        out, ref = compare_with_torch(lambda t: F.pad(t, pads, mode=mode),
                                      lambda t: TF.pad(t, pads, mode=mode),
                                      [_x(shape, dtype)], "pad")
    assert out.shape == tuple(ref.shape) and out.dtype == dtype


@pytest.mark.parametrize("shape,pads", CONSTANT_CASES)
@pytest.mark.parametrize("value", [None, 0.0, 2.5, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_matches_torch(shape, pads, value, dtype):
    # errstate: with value=-inf, assert_close computes -inf - -inf (equal values, accepted).
    with pe.use_backend("numpy"), np.errstate(invalid="ignore"):
        out, ref = compare_with_torch(lambda t: F.pad(t, pads, value=value),
                                      lambda t: TF.pad(t, pads, value=value),
                                      [_x(shape, dtype)], "pad")
    assert out.shape == tuple(ref.shape) and out.dtype == dtype


def test_constant_pad_values_and_list_argument():
    x = pe.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = F.pad(x, [1, 0, 0, 1], "constant", 7)
    assert y.tolist() == [[7, 0, 1, 2], [7, 3, 4, 5], [7, 7, 7, 7]]
    assert F.pad(x, (1, 1), value=True).tolist()[0] == [1, 0, 1, 2, 1]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous(mode, dtype):
    x4 = _x((2, 3, 5, 6), dtype)
    for pads in [(1, 2), (2, 1, 1, 3), (-1, 2, 1, -1)]:
        x = x4[0] if len(pads) == 2 else x4  # non-constant modes pad 1 dim of 3-d input
        with pe.use_backend("numpy"):
            compare_with_torch(lambda t: F.pad(t, pads, mode=mode),
                               lambda t: TF.pad(t, pads, mode=mode),
                               [noncontiguous(x)], "pad")
            compare_with_torch(lambda t: F.pad(t, pads, mode=mode),
                               lambda t: TF.pad(t, pads, mode=mode),
                               [np.swapaxes(x, -1, -2)], "pad")


@pytest.mark.parametrize("mode,shape,pads", [
    ("constant", (0, 3, 4), (1, 2)),
    ("constant", (3, 0), (1, 1)),            # only padding: filled with the value
    ("constant", (2, 0, 4), (1, 1, 2, 0)),
    ("reflect", (0, 3, 4), (1, 2)),
    ("replicate", (0, 2, 3, 4), (1, 2, 2, 1)),
    ("circular", (0, 3, 4), (1, 2)),
    ("circular", (3, 0, 4), (1, 1)),
    ("circular", (0, 4), (1, 1)),
    ("circular", (1, 3, 4), (-2, -2)),
])
def test_zero_size(mode, shape, pads):
    with pe.use_backend("numpy"):
        out, ref = compare_with_torch(lambda t: F.pad(t, pads, mode=mode, value=None),
                                      lambda t: TF.pad(t, pads, mode=mode),
                                      [_x(shape, np.float32)], "pad")
    assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pads", [((2, 3, 6), (2, 3)), ((1, 2, 4, 5), (1, -1, 3, 2)),
                                        ((1, 1, 3, 4, 4), (1, 2, -1, 1, 2, 1))])
def test_gradcheck(mode, shape, pads):
    with pe.use_backend("numpy"):
        gradcheck(lambda t: F.pad(t, pads, mode=mode), [_x(shape, np.float64, seed=3)])


def test_bad_input():
    x3 = pe.tensor(_x((1, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"divisible by 2.*\(1, 1, 1\)"):
        F.pad(x3, (1, 1, 1))
    with pytest.raises(ValueError, match="padding length 8 and input of dimension 3"):
        F.pad(x3, (1,) * 8)
    with pytest.raises(TypeError, match="pad"):
        F.pad(x3, 1)
    with pytest.raises(TypeError, match="pad"):
        F.pad(x3, (1.5, 1))
    with pytest.raises(TypeError, match="mode"):
        F.pad(x3, (1, 1), mode=None)
    with pytest.raises(ValueError, match="unknown padding mode 'foo'"):
        F.pad(x3, (1, 1), mode="foo")
    with pytest.raises(TypeError, match="value"):
        F.pad(x3, (1, 1), value="a")
    with pytest.raises(ValueError, match=r"reflect.*value"):
        F.pad(x3, (1, 1), mode="reflect", value=2.0)
    F.pad(x3, (1, 1), mode="reflect", value=0.0)  # 0 is allowed, as in torch
    with pytest.raises(ValueError, match=r"reflect padding.*\(5, 5\) at dimension 2.*\(1, 2, 5\)"):
        F.pad(x3, (5, 5), mode="reflect")
    with pytest.raises(ValueError, match=r"reflect padding.*\(1, 2\) at dimension 1"):
        F.pad(x3, (0, 0, 1, 2), mode="reflect")
    with pytest.raises(ValueError, match=r"too small.*\(-3, -2\)"):
        F.pad(x3, (-3, -2), mode="replicate")
    with pytest.raises(ValueError, match=r"too small"):
        F.pad(x3, (-3, -2), mode="reflect")
    with pytest.raises(ValueError, match="wraps around more than once"):
        F.pad(x3, (6, 5), mode="circular")
    with pytest.raises(ValueError, match="after cropping"):
        F.pad(x3, (3, -3), mode="circular")
    with pytest.raises(ValueError, match="negative output size"):
        F.pad(x3, (-3, -3))
    with pytest.raises(ValueError, match="negative output size"):
        F.pad(x3, (-3, -3), mode="circular")
    for mode in ("reflect", "replicate", "circular"):
        with pytest.raises(ValueError, match=r"padding size 2 is not supported for 1-d"):
            F.pad(pe.tensor(_x((5,), np.float32)), (1, 1), mode=mode)
        with pytest.raises(ValueError, match=r"padding size 2 is not supported for 5-d"):
            F.pad(pe.tensor(_x((1, 1, 2, 2, 5), np.float32)), (1, 1), mode=mode)
        with pytest.raises(ValueError, match=r"padding size 6 is not supported for 3-d"):
            F.pad(x3, (1,) * 6, mode=mode)
        with pytest.raises(ValueError, match=r"padding size 0"):
            F.pad(x3, (), mode=mode)
    for mode in ("reflect", "replicate"):
        with pytest.raises(ValueError, match=r"non-zero dimensions.*\(3, 0, 4\)"):
            F.pad(pe.tensor(np.zeros((3, 0, 4), np.float32)), (1, 1), mode=mode)
        with pytest.raises(ValueError, match=r"non-zero dimensions.*\(0, 4\)"):
            F.pad(pe.tensor(np.zeros((0, 4), np.float32)), (1, 1), mode=mode)
    with pytest.raises(TypeError, match="input"):
        F.pad(pe.tensor(np.zeros((2, 3), np.int64)), (1, 1))
    with pytest.raises(TypeError, match="input"):
        F.pad([[1.0]], (1, 1))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,pads", [((4, 16, 33, 17), (1, 2, 3, 1)), ((3, 5, 31), (2, -1)),
                                        ((2, 3, 4, 9, 7), (1, 1, 2, 0, 1, 3))])
def test_backends_match_reference(mode, dtype, shape, pads):
    x = _x(shape, dtype, seed=5)
    with pe.use_backend("numpy"):
        out_shape = F.pad(pe.tensor(x), pads, mode=mode).shape
    dy = _x(out_shape, dtype, seed=6)

    def run(algo):
        t = pe.Tensor(noncontiguous(x), requires_grad=True)
        y = F.pad(t, pads, mode=mode, value=None if mode != "constant" else 1.5)
        y.backward(pe.tensor(dy))
        return y.numpy(), t.grad.numpy()

    check_backends_match("pad", dtype, run, label=f"pad {mode}")
