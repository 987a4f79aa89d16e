"""pe.Tensor against PyTorch: forward values, dtypes, shapes and gradients of every tensor op.

Most tests run an op in both libraries through ``compare_with_torch`` (one shared random
upstream gradient). Shape letters are not used here: shapes are written out.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pyengine as pe

from .helpers import assert_close, compare_with_torch, noncontiguous

DTYPES = [np.float32, np.float64]


def rnd(shape, dtype=np.float64, seed=0, away_from_zero=False):
    """Normal values in ``dtype``; optionally pushed at least 0.5 away from 0 (divisors, logs)."""
    a = np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:
        a = a + np.where(a >= 0, 0.5, -0.5)
    return np.asarray(a, dtype=dtype)


def th(a, requires_grad=False):
    """A torch copy of a numpy array."""
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_(requires_grad) if requires_grad else t


def torch_dtype_name(t):
    return str(t.dtype).replace("torch.", "")


# -- arithmetic and broadcasting ---------------------------------------------------------------
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 1, 4), (3, 1)),
    ((3, 1), (2, 1, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((1,), (2, 3)),
    ((2, 3, 1, 5), (4, 1)),
]
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_broadcasting_matches_torch(op, shapes, dtype):
    a = rnd(shapes[0], dtype, seed=1)
    b = rnd(shapes[1], dtype, seed=2, away_from_zero=True)
    compare_with_torch(BINARY[op], BINARY[op], [a, b], op="elementwise")


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_on_noncontiguous_inputs(dtype):
    a = noncontiguous(rnd((3, 4), dtype, seed=1))
    b = noncontiguous(rnd((3, 4), dtype, seed=2, away_from_zero=True))
    for f in BINARY.values():
        compare_with_torch(f, f, [a, b], op="elementwise")


SCALAR_EXPRS = {
    "x+2": lambda x: x + 2, "2+x": lambda x: 2 + x, "x+2.5": lambda x: x + 2.5,
    "x-1.5": lambda x: x - 1.5, "3-x": lambda x: 3 - x, "x*-2": lambda x: x * -2,
    "0.5*x": lambda x: 0.5 * x, "x/3": lambda x: x / 3, "3/x": lambda x: 3 / x,
    "2.5/x": lambda x: 2.5 / x, "-x": lambda x: -x, "x*True": lambda x: x * True,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("expr", sorted(SCALAR_EXPRS))
def test_ops_with_python_scalars_keep_dtype_and_match_torch(expr, dtype):
    x = rnd((2, 3), dtype, away_from_zero=True)
    out, _ = compare_with_torch(SCALAR_EXPRS[expr], SCALAR_EXPRS[expr], [x], op="elementwise")
    assert out.dtype == dtype


def test_float32_stays_float32_through_a_scalar_expression():
    x = pe.tensor([[1.0, -2.0], [0.5, 4.0]], requires_grad=True)
    y = ((x * 2.5 + 1) / 3 - 0.25) ** 2.0 * np.float64(1.5) + np.int64(2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    xt = torch.tensor([[1.0, -2.0], [0.5, 4.0]], requires_grad=True)
    yt = ((xt * 2.5 + 1) / 3 - 0.25) ** 2.0 * 1.5 + 2
    yt.sum().backward()
    assert_close(y, yt, 1e-6, 1e-6)
    assert_close(x.grad, xt.grad, 1e-6, 1e-6)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("op", sorted(BINARY))
def test_numpy_array_operands_give_tensors(op, left):
    """A numpy array meets a Tensor (either side): the result is a Tensor, values as torch."""
    x = rnd((2, 3), np.float32, seed=3, away_from_zero=True)
    arr = rnd((3,), np.float64, seed=4, away_from_zero=True)
    f = BINARY[op]
    out = f(arr, pe.tensor(x)) if left else f(pe.tensor(x), arr)
    ref = f(th(arr), th(x)) if left else f(th(x), th(arr))
    assert isinstance(out, pe.Tensor)
    assert out.dtype == np.dtype(torch_dtype_name(ref))
    assert_close(out, ref, 1e-6, 1e-6)


def test_numpy_scalars_on_either_side_act_like_python_numbers():
    x = pe.ones(2)
    for out in [np.float64(1.5) * x, x * np.float64(1.5), np.int64(2) + x, x / np.float32(2)]:
        assert isinstance(out, pe.Tensor) and out.dtype == np.float32
    assert (np.float64(2.5) + pe.arange(2)).dtype == np.float32  # as torch


def test_numpy_array_operand_keeps_gradient_flowing():
    x = pe.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = np.array([2.0, 3.0, 4.0], dtype=np.float32) * x - np.float32(1)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 3.0, 4.0])


PROMOTION_CASES = [
    # (dtype of a, shape of a, b: a dtype for a tensor or a Python scalar, shape of b)
    ("int64", (3,), "float32", (3,)),
    ("int32", (3,), "int64", (3,)),
    ("bool", (3,), "int64", (3,)),
    ("uint8", (3,), "int8", (3,)),
    ("float32", (3,), "float64", ()),      # a 0-d tensor does not widen a tensor with dims
    ("int64", (3,), "float64", ()),        # ... unless it is of a higher category
    ("int32", (3,), "int64", ()),
    ("float16", (3,), "float32", (3,)),
    ("float32", (), "float64", ()),
    ("int64", (3,), 2.5, None),
    ("int32", (3,), 7, None),
    ("bool", (3,), 1, None),
    ("float16", (3,), 2.5, None),
    ("bool", (3,), True, None),
]


@pytest.mark.parametrize("case", PROMOTION_CASES, ids=str)
@pytest.mark.parametrize("op", ["add", "mul", "div"])
def test_type_promotion_matches_torch(case, op):
    da, sa, b, sb = case
    a = (np.arange(1, 1 + int(np.prod(sa))).reshape(sa) % 3 + 1).astype(da)
    if sb is None:
        pb, tb = b, b
    else:
        bb = (np.arange(int(np.prod(sb))).reshape(sb) % 2 + 1).astype(b)
        pb, tb = pe.tensor(bb), th(bb)
    f = BINARY[op]
    out, ref = f(pe.tensor(a), pb), f(th(a), tb)
    assert out.dtype == np.dtype(torch_dtype_name(ref)), (out.dtype, ref.dtype)
    assert_close(out, ref.to(torch.float64), 1e-6, 1e-3)


def test_integer_true_division_gives_float32_and_pow_keeps_ints():
    a = pe.arange(1, 5)
    assert (a / a).dtype == np.float32
    assert (a ** 2).dtype == np.int64 and (a ** 2).tolist() == [1, 4, 9, 16]
    assert (a ** 0.5).dtype == np.float32
    assert (2 ** a).dtype == np.int64 and (2 ** a).tolist() == [2, 4, 8, 16]
    with pytest.raises(RuntimeError, match="negative"):
        a ** -1


def test_broadcast_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        pe.ones(2) + pe.ones(3)


def test_unsupported_operand_raises_type_error():
    with pytest.raises(TypeError):
        pe.ones(2) + "a"
    with pytest.raises(TypeError):
        pe.ones(2) * object()


# -- matmul ------------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((1, 2, 3), (5, 3, 4)),
    ((4, 1, 2, 3), (5, 3, 2)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch(shapes, dtype):
    a, b = rnd(shapes[0], dtype, seed=1), rnd(shapes[1], dtype, seed=2)
    compare_with_torch(lambda x, y: x @ y, torch.matmul, [a, b], op="matmul")


def test_matmul_with_numpy_operand_on_either_side():
    a = rnd((2, 3), np.float32, seed=1)
    b = rnd((3, 4), np.float32, seed=2)
    assert_close(pe.tensor(a) @ b, th(a) @ th(b), 1e-6, 1e-5)
    assert_close(a @ pe.tensor(b), th(a) @ th(b), 1e-6, 1e-5)
    assert isinstance(a @ pe.tensor(b), pe.Tensor)


def test_matmul_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4, 5\)"):
        pe.ones(2, 3) @ pe.ones(4, 5)
    with pytest.raises(RuntimeError, match="dtype"):
        pe.ones(2, 3, dtype=pe.float64) @ pe.ones(3, 5)
    with pytest.raises(RuntimeError, match="1 dimension"):
        pe.ones(()) @ pe.ones(3)
    with pytest.raises(RuntimeError, match=r"\(2, 2, 3\).*\(3, 3, 4\)"):
        pe.ones(2, 2, 3) @ pe.ones(3, 3, 4)


# -- unary math --------------------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (lambda x: x.exp(), torch.exp),
    "log": (lambda x: x.abs().log(), lambda x: x.abs().log()),
    "sqrt": (lambda x: x.abs().sqrt(), lambda x: x.abs().sqrt()),
    "abs": (lambda x: x.abs(), torch.abs),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(name, dtype):
    x = rnd((3, 4), dtype, away_from_zero=True)
    compare_with_torch(*UNARY[name], [x], op=name)


def test_abs_gradient_is_zero_at_zero():
    x = pe.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.abs().sum().backward()
    assert x.grad.tolist() == [-1.0, 0.0, 1.0]


def test_unary_of_integers_gives_float32():
    x = pe.tensor([1, 4, 9])
    for y, yt in [(x.sqrt(), th(x.numpy()).sqrt()), (x.exp(), th(x.numpy()).exp()),
                  (x.log(), th(x.numpy()).log())]:
        assert y.dtype == np.float32
        assert_close(y, yt, 1e-6, 1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, -2.5, 0, 1, 2.0])
def test_pow_scalar_exponent_matches_torch(exponent, dtype):
    x = np.abs(rnd((3, 4), dtype, away_from_zero=True))
    out, _ = compare_with_torch(lambda t: t ** exponent, lambda t: t ** exponent, [x], op="pow")
    assert out.dtype == dtype


def test_pow_edge_cases_match_torch():
    # exponent 0 at base 0: torch's gradient is 0, not 0 * 0 ** -1 = nan
    for e in [0, 0.5, 2]:
        x = pe.tensor([0.0, 1.0, 2.0], requires_grad=True)
        xt = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
        (x ** e).sum().backward()
        (xt ** e).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())  # inf at 0 for e=0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_tensor_exponent_and_scalar_base_match_torch(dtype):
    base = np.abs(rnd((3, 4), dtype, seed=1, away_from_zero=True))
    expo = rnd((4,), dtype, seed=2)
    compare_with_torch(lambda a, b: a ** b, lambda a, b: a ** b, [base, expo], op="pow")
    compare_with_torch(lambda b: 2.5 ** b, lambda b: 2.5 ** b, [expo], op="pow")
    compare_with_torch(lambda a, b: a.pow(b), torch.pow, [base, expo], op="pow")


def test_pow_tensor_exponent_at_zero_base_matches_torch():
    x = pe.tensor([0.0, 0.0, 2.0], requires_grad=True)
    e = pe.tensor([0.0, 3.0, 3.0], requires_grad=True)
    xt = torch.tensor([0.0, 0.0, 2.0], requires_grad=True)
    et = torch.tensor([0.0, 3.0, 3.0], requires_grad=True)
    (x ** e).sum().backward()
    (xt ** et).sum().backward()
    assert_close(x.grad, xt.grad, 1e-6, 1e-6)
    assert_close(e.grad, et.grad, 1e-6, 1e-6)


# -- reductions --------------------------------------------------------------------------------
REDUCE_DIMS = [None, 0, 1, -1, 2, (0, 2), (-1, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_match_torch(name, dim, keepdim, dtype):
    x = rnd((2, 3, 4), dtype)
    th_dim = list(dim) if isinstance(dim, tuple) else dim
    compare_with_torch(lambda t: getattr(t, name)(dim, keepdim=keepdim),
                       lambda t: getattr(t, name)(th_dim, keepdim=keepdim), [x], op=name)
    if dim is None and not keepdim:
        compare_with_torch(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [x],
                           op=name)


def test_sum_dtypes_match_torch():
    for a in [np.array([True, False, True]), np.arange(4, dtype=np.int32),
              np.arange(4, dtype=np.uint8), np.arange(4, dtype=np.int64)]:
        out, ref = pe.tensor(a).sum(), th(a).sum()
        assert out.dtype == np.dtype(torch_dtype_name(ref))
        assert out.item() == ref.item()
    assert pe.tensor([1, 2]).sum(dtype=pe.float32).dtype == np.float32


def test_mean_of_integers_raises_and_dtype_argument_works():
    with pytest.raises(RuntimeError, match="floating"):
        pe.arange(5).mean()
    assert pe.arange(5).mean(dtype=pe.float32).item() == 2.0


def test_mean_over_empty_dim_is_nan_and_duplicate_dims_raise():
    x = pe.zeros(0, 3)
    assert np.isnan(x.mean(0).numpy()).all() and x.mean(0).shape == (3,)
    with pytest.raises(RuntimeError, match="twice"):
        pe.ones(2, 3).sum((0, -2))
    with pytest.raises(IndexError, match="out of range"):
        pe.ones(2, 3).sum(2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim_match_torch(name, dim, keepdim, dtype):
    x = rnd((3, 4, 5), dtype)
    out, ref = compare_with_torch(lambda t: getattr(t, name)(dim, keepdim=keepdim),
                                  lambda t: getattr(t, name)(dim, keepdim=keepdim), [x], op=name)
    assert out.indices.dtype == np.int64
    np.testing.assert_array_equal(out.indices.numpy(), ref.indices.numpy())
    assert out.values.requires_grad and not out.indices.requires_grad


def test_max_ties_follow_torch():
    data = [[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 1.0]]
    x, xt = pe.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    v, i = x.max(1)
    vt, it = xt.max(1)
    assert i.tolist() == it.tolist() == [1, 0]  # the first maximum wins
    (v * pe.tensor([1.0, 2.0])).sum().backward()
    (vt * torch.tensor([1.0, 2.0])).sum().backward()
    assert x.grad.tolist() == xt.grad.tolist()
    assert x.argmax(1).tolist() == xt.argmax(1).tolist()
    assert x.argmax().item() == xt.argmax().item()


def test_full_max_and_min_share_the_gradient_among_ties_like_torch():
    data = [1.0, 3.0, 3.0, 2.0, 3.0, -1.0, -1.0]
    for name in ["max", "min"]:
        x, xt = pe.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        (getattr(x, name)() * 3).backward()
        (getattr(xt, name)() * 3).backward()
        assert_close(x.grad, xt.grad, 1e-7, 1e-6, name=f"{name}() grad")


def test_max_with_nan_follows_torch():
    nan = float("nan")
    data = [[1.0, nan, 3.0, nan], [2.0, 0.0, 1.0, 4.0]]
    x, xt = pe.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    m, mt = x.max(), xt.max()
    assert np.isnan(m.item()) and np.isnan(mt.item())
    m.backward()
    mt.backward()
    assert_close(x.grad, xt.grad, 0, 0, name="grad of max() with NaNs")
    v, i = x.max(1)
    vt, it = xt.max(1)
    assert_close(v, vt, 0, 0)
    assert i.tolist() == it.tolist()
    assert x.argmax(1).tolist() == xt.argmax(1).tolist()
    assert x.argmin(1).tolist() == xt.argmin(1).tolist()


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_argmax_argmin_match_torch(dim, keepdim):
    x = np.random.default_rng(0).integers(0, 4, (5, 6)).astype(np.float32)  # many ties
    for name in ["argmax", "argmin"]:
        out = getattr(pe.tensor(x), name)(dim, keepdim=keepdim)
        ref = getattr(th(x), name)(dim, keepdim=keepdim)
        assert out.dtype == np.int64 and out.shape == tuple(ref.shape)
        np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_max_of_empty_raises():
    with pytest.raises(RuntimeError, match="empty"):
        pe.zeros(0).max()
    with pytest.raises(IndexError, match="empty"):
        pe.zeros(2, 0).max(1)


# -- shapes and views --------------------------------------------------------------------------
VIEW_OPS = {
    "reshape(-1)": (lambda t: t.reshape(-1), lambda t: t.reshape(-1)),
    "reshape(4,-1)": (lambda t: t.reshape(4, -1), lambda t: t.reshape(4, -1)),
    "reshape((2,-1,3))": (lambda t: t.reshape((2, -1, 3)), lambda t: t.reshape((2, -1, 3))),
    "view(-1,6)": (lambda t: t.view(-1, 6), lambda t: t.reshape(-1, 6)),
    "flatten()": (lambda t: t.flatten(), lambda t: t.flatten()),
    "flatten(1)": (lambda t: t.flatten(1), lambda t: t.flatten(1)),
    "flatten(0,1)": (lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
    "flatten(-2,-1)": (lambda t: t.flatten(-2, -1), lambda t: t.flatten(-2, -1)),
    "flatten(1,1)": (lambda t: t.flatten(1, 1), lambda t: t.flatten(1, 1)),
    "unsqueeze(0)": (lambda t: t.unsqueeze(0), lambda t: t.unsqueeze(0)),
    "unsqueeze(-1)": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "unsqueeze(2)": (lambda t: t.unsqueeze(2), lambda t: t.unsqueeze(2)),
    "transpose(0,2)": (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
    "transpose(-1,1)": (lambda t: t.transpose(-1, 1), lambda t: t.transpose(-1, 1)),
    "permute(2,0,1)": (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "permute((1,-1,0))": (lambda t: t.permute((1, -1, 0)), lambda t: t.permute((1, -1, 0))),
    "T": (lambda t: t.T, lambda t: t.permute(2, 1, 0)),
    "expand": (lambda t: t[:, :1].expand(2, 3, 4), lambda t: t[:, :1].expand(2, 3, 4)),
    "expand(-1)": (lambda t: t[None].expand(3, -1, -1, -1),
                   lambda t: t[None].expand(3, -1, -1, -1)),
}


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", sorted(VIEW_OPS))
def test_views_match_torch(name, contiguous):
    x = rnd((2, 3, 4), np.float64)
    if not contiguous:
        x = noncontiguous(x)
    out, ref = compare_with_torch(*VIEW_OPS[name], [x], op=name)
    assert out.shape == tuple(ref.shape)


def test_squeeze_matches_torch():
    x = rnd((1, 3, 1, 4, 1), np.float64)
    for args in [(), (0,), (2,), (-1,), (1,), ((0, 2),), ((0, 1, -1),)]:
        out, ref = compare_with_torch(lambda t: t.squeeze(*args), lambda t: t.squeeze(*args),
                                      [x], op="squeeze")
        assert out.shape == tuple(ref.shape), args


def test_view_errors_name_the_shape():
    x = pe.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        x.reshape(4, -1)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        x.view(5)
    with pytest.raises(RuntimeError, match="-1"):
        x.reshape(-1, -1)
    with pytest.raises(IndexError, match="out of range"):
        x.transpose(0, 3)
    with pytest.raises(RuntimeError, match="repeat"):
        x.permute(0, 0)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        x.permute(0, 1, 2)
    with pytest.raises(RuntimeError, match="expand"):
        x.expand(4, 3)


def test_size_dim_numel_and_zero_d_flatten():
    x = pe.ones(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.dim() == 3 and x.ndim == 3
    assert x.numel() == 24 and x.element_size() == 4
    assert pe.tensor(5.0).flatten().shape == (1,)
    assert pe.tensor(5.0).reshape(1, 1).shape == (1, 1)


# -- indexing ----------------------------------------------------------------------------------
def _idx(kind):
    """Index expressions as a function of a converter (pe.tensor or torch.tensor)."""
    return {
        "int": lambda T: 1,
        "negative int": lambda T: -1,
        "int pair": lambda T: (1, -2),
        "slice": lambda T: slice(1, 3),
        "slice step": lambda T: (slice(None, None, 2), slice(1, None, 2)),
        "negative slice bounds": lambda T: (slice(-2, None), slice(None, -1)),
        "ellipsis": lambda T: (Ellipsis, 1),
        "ellipsis middle": lambda T: (0, Ellipsis, slice(1, 3)),
        "None": lambda T: (None, slice(None), None, 1),
        "bool mask": lambda T: T(np.array([True, False, True, True])),
        "int array repeats": lambda T: T(np.array([0, 2, 0, 0, -1])),
        "int array pair": lambda T: (T(np.array([0, 1, 0])), T(np.array([2, 2, 2]))),
        "slice + int array": lambda T: (slice(None), T(np.array([1, 1, 0]))),
        "int + slice + array": lambda T: (1, slice(0, 2), T(np.array([3, 0, 3]))),
        "2-d int array": lambda T: T(np.array([[0, 1], [1, 1]])),
        "list": lambda T: [3, 3, 1],
        "int, array, int": lambda T: (1, T(np.array([0, 2, 2])), -1),
        "array, slice, int": lambda T: (T(np.array([3, 0])), slice(None), 2),
        "mask 2-d": lambda T: T(np.array([[True, False, True], [False, False, True],
                                           [True, True, True], [False, False, False]])),
    }[kind]


INDEX_KINDS = ["int", "negative int", "int pair", "slice", "slice step",
               "negative slice bounds", "ellipsis", "ellipsis middle", "None", "bool mask",
               "int array repeats", "int array pair", "slice + int array",
               "int + slice + array", "2-d int array", "list", "mask 2-d",
               "int, array, int", "array, slice, int"]


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_indexing_matches_torch_with_accumulating_gradients(kind):
    x = rnd((4, 3, 5), np.float64)
    make = _idx(kind)
    compare_with_torch(lambda t: t[make(pe.tensor)], lambda t: t[make(torch.tensor)], [x],
                       op="index")


def test_indexing_with_numpy_index_arrays_and_repeats():
    x = pe.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[np.array([0, 0, 2, 0])]
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    x.grad = None
    x[x > 1.5].sum().backward()  # a boolean mask built by a comparison
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_index_out_of_range_raises_index_error_naming_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        pe.ones(2, 3)[5]
    with pytest.raises(IndexError):
        pe.ones(2, 3)[:, pe.tensor([0, 3])]


def test_basic_index_is_a_view_that_shares_memory():
    x = pe.zeros(3, 4)
    row = x[1]
    with pe.no_grad():
        row += 1
    assert x.numpy()[1].tolist() == [1.0] * 4


# -- cat and stack -----------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_cat_matches_torch(dim):
    shapes = {0: [(1, 3, 4), (2, 3, 4), (3, 3, 4)], 1: [(2, 1, 4), (2, 2, 4), (2, 3, 4)],
              -1: [(2, 3, 1), (2, 3, 5), (2, 3, 2)], 2: [(2, 3, 2), (2, 3, 2), (2, 3, 1)]}[dim]
    arrays = [rnd(s, np.float64, seed=i) for i, s in enumerate(shapes)]
    compare_with_torch(lambda *ts: pe.cat(ts, dim), lambda *ts: torch.cat(ts, dim), arrays,
                       op="cat")


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack_matches_torch(dim):
    arrays = [rnd((2, 3), np.float64, seed=i) for i in range(3)]
    compare_with_torch(lambda *ts: pe.stack(ts, dim), lambda *ts: torch.stack(ts, dim), arrays,
                       op="stack")


def test_cat_promotes_dtypes_and_reports_bad_shapes():
    out = pe.cat([pe.tensor([1, 2]), pe.tensor([0.5])])
    ref = torch.cat([torch.tensor([1, 2]), torch.tensor([0.5])])
    assert out.dtype == np.float32 and out.tolist() == ref.tolist()
    with pytest.raises(RuntimeError, match=r"\(2, 4\).*\(2, 3\)"):
        pe.cat([pe.ones(2, 3), pe.ones(2, 4)])
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(2, 4\)"):
        pe.stack([pe.ones(2, 3), pe.ones(2, 4)])
    with pytest.raises(RuntimeError, match="0-d"):
        pe.cat([pe.tensor(1.0), pe.tensor(2.0)])
    with pytest.raises(RuntimeError, match="non-empty"):
        pe.cat([])


def test_cat_gradient_reaches_only_inputs_that_require_it():
    a = pe.ones(2, requires_grad=True)
    b = pe.ones(3)
    (pe.cat([a, b]) * pe.arange(5.0)).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0] and b.grad is None


# -- comparisons -------------------------------------------------------------------------------
COMPARISONS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


@pytest.mark.parametrize("op", sorted(COMPARISONS))
def test_comparisons_match_torch(op):
    f = COMPARISONS[op]
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    ints = np.array([1, 2, 3])
    for out, ref in [(f(pe.tensor(a), pe.tensor(b)), f(th(a), th(b))),
                     (f(pe.tensor(a), 2), f(th(a), 2)),
                     (f(2.0, pe.tensor(a)), f(2.0, th(a))),
                     (f(pe.tensor(ints), 2.5), f(th(ints), 2.5)),
                     (f(pe.tensor(ints), pe.tensor([1.0, 2.5, 3.0])),
                      f(th(ints), torch.tensor([1.0, 2.5, 3.0])))]:
        assert out.dtype == np.bool_ and not out.requires_grad
        assert out.tolist() == ref.tolist()


def test_equality_with_non_tensors_is_false_like_torch():
    x = pe.ones(3)
    assert (x == None) is False  # noqa: E711
    assert (x == "a") is False
    assert x in {x: 1} and x is not pe.ones(3)


# -- conversions -------------------------------------------------------------------------------
def test_item_tolist_numpy_len_bool():
    x = pe.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert x[0, 0].item() == 1.5 and isinstance(x[0, 0].item(), float)
    assert pe.tensor(3).item() == 3 and isinstance(pe.tensor(3).item(), int)
    assert pe.tensor([7.0]).item() == 7.0
    assert float(pe.tensor(2.5)) == 2.5 and int(pe.tensor(2.5)) == 2
    assert len(x) == 2 and [r.tolist() for r in x] == [[1.5, 2.0], [3.0, 4.0]]
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().dtype == np.float32
    assert bool(pe.tensor([1.0])) and not bool(pe.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(RuntimeError, match="one element"):
        x.item()
    with pytest.raises(TypeError):
        len(pe.tensor(1.0))
    with pytest.raises(TypeError):
        iter(pe.tensor(1.0))
    assert np.asarray(x).dtype == np.float32
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert "tensor(" in repr(x) and "grad_fn" in repr(pe.ones(2, requires_grad=True) * 2)


def test_numpy_shares_memory_on_the_host():
    x = pe.zeros(3)
    x.numpy()[1] = 5.0
    assert x.tolist() == [0.0, 5.0, 0.0]


def test_detach_shares_memory_and_leaves_the_graph():
    x = pe.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.numpy(), y.numpy())
    (d * x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]  # nothing flowed through d


def test_clone_copies_and_passes_gradients():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not c.is_leaf and not np.shares_memory(c.numpy(), x.numpy())
    (c * c).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_contiguous_copies_only_when_needed():
    x = pe.tensor(rnd((3, 4), np.float64), requires_grad=True)
    assert x.contiguous() is x and x.is_contiguous()
    t = x.T
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.shape == (4, 3)
    (c * pe.arange(12.0).reshape(4, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(12.0).reshape(4, 3).T)


@pytest.mark.parametrize("cast", ["to", "double", "float", "half"])
def test_gradients_flow_through_casts(cast):
    data = [0.5, -1.5, 2.0]
    x = pe.tensor(data, dtype=pe.float64 if cast != "double" else pe.float32, requires_grad=True)
    xt = torch.tensor(data, dtype=torch.float64 if cast != "double" else torch.float32,
                      requires_grad=True)
    if cast == "to":
        y, yt = x.to(pe.float32), xt.to(torch.float32)
    else:
        y, yt = getattr(x, cast)(), getattr(xt, cast)()
    assert y.dtype == np.dtype(torch_dtype_name(yt))
    (y * y * 3).sum().backward()
    (yt * yt * 3).sum().backward()
    assert x.grad.dtype == x.dtype
    assert_close(x.grad, xt.grad, 1e-3, 1e-3)


def test_casts_to_integers_cut_the_graph_and_to_variants():
    x = pe.tensor([1.7, -2.2], requires_grad=True)
    assert x.long().dtype == np.int64 and not x.long().requires_grad
    assert x.long().tolist() == torch.tensor([1.7, -2.2]).long().tolist()
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.to(pe.float32) is x
    assert x.to("cpu", pe.float64).dtype == np.float64
    assert x.to(dtype=pe.float64, device="cpu").dtype == np.float64
    assert x.to(pe.zeros(1, dtype=pe.float64)).dtype == np.float64
    assert x.to(pe.float32, copy=True) is not x
    assert x.type_as(pe.zeros(1, dtype=pe.float64)).dtype == np.float64
    with pytest.raises(TypeError):
        x.to("cpu", pe.float32, "extra")
    with pytest.raises(TypeError):
        x.to(dtype="no such dtype")


# -- devices -----------------------------------------------------------------------------------
def test_to_cuda_emu_copies_and_gradients_come_back():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    e = x.to("cuda_emu")
    assert e.device == "cuda_emu" and isinstance(e.data, np.ndarray)
    assert not np.shares_memory(e.numpy(), x.numpy())
    y = (e * e).sum()
    assert y.device == "cuda_emu"
    y.backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    back = e.to("cpu")
    assert back.device == "cpu" and back.tolist() == [1.0, 2.0]
    assert e.to("cuda_emu") is e


def test_mixing_devices_raises_except_for_host_scalars():
    a = pe.ones(2).to("cuda_emu")
    with pytest.raises(RuntimeError, match="device"):
        a + pe.ones(2)
    s = a * pe.tensor(3.0)  # a 0-d host tensor follows the other operand, as in torch
    assert s.device == "cuda_emu" and s.tolist() == [3.0, 3.0]


def test_cuda_without_cupy_or_gpu_gives_a_clear_error():
    if pe.is_cuda_available():
        x = pe.ones(2).to("cuda")
        assert x.device == "cuda" and x.to("cpu").tolist() == [1.0, 1.0]
        return
    with pytest.raises(RuntimeError, match="cupy|GPU"):
        pe.ones(2).to("cuda")


def test_unknown_devices_raise():
    with pytest.raises(ValueError, match="unknown device"):
        pe.ones(2).to("tpu")
    with pytest.raises(ValueError, match="unknown device"):
        pe.ones(2).to("cuda_emu:0")
    with pytest.raises(ValueError, match="unknown device"):
        pe.Tensor(np.ones(2), device="gpu")


# -- in-place ops ------------------------------------------------------------------------------
def test_inplace_arithmetic_writes_into_the_buffer():
    x = pe.tensor([1.0, 2.0, 3.0])
    buf = x.numpy()
    x += 1
    x *= pe.tensor([2.0, 2.0, 2.0])
    x -= np.float64(1)
    x /= 2
    x.add_(pe.ones(3), alpha=2).sub_(1, alpha=0.5)
    assert x.numpy() is buf
    xt = torch.tensor([1.0, 2.0, 3.0])
    xt += 1
    xt *= torch.tensor([2.0, 2.0, 2.0])
    xt -= 1
    xt /= 2
    xt.add_(torch.ones(3), alpha=2).sub_(1, alpha=0.5)
    assert x.tolist() == xt.tolist()
    assert x._version == 6


def test_inplace_errors_like_torch():
    x = pe.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 2.0
    with pe.no_grad():  # an optimizer step
        x -= 0.5
    assert x.tolist() == [0.5] * 3 and x.is_leaf
    i = pe.arange(3)
    with pytest.raises(RuntimeError, match="int64"):
        i += 0.5
    with pytest.raises(RuntimeError, match="broadcast"):
        pe.ones(3).add_(pe.ones(2, 3))


def test_setitem_records_gradients_like_torch():
    w = pe.tensor([1.5, -2.0], requires_grad=True)
    wt = torch.tensor([1.5, -2.0], requires_grad=True)
    x, xt = pe.zeros(2, 3), torch.zeros(2, 3)
    x[:, 1] = w * 2
    xt[:, 1] = wt * 2
    x[0, 0] = 7.0
    xt[0, 0] = 7.0
    assert not x.is_leaf and x.requires_grad
    g = rnd((2, 3), np.float32)
    (x * pe.tensor(g)).sum().backward()
    (xt * th(g)).sum().backward()
    assert_close(x, xt, 0, 0)
    assert_close(w.grad, wt.grad, 1e-6, 1e-6)


def test_inplace_on_a_non_leaf_continues_its_history():
    x = pe.tensor([1.0, 2.0, 3.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, at = x * 2, xt * 2
    a[0] = 0.0
    at[0] = 0.0
    a *= x
    at *= xt
    a.sum().backward()
    at.sum().backward()
    assert a.tolist() == at.tolist()
    assert x.grad.tolist() == xt.grad.tolist()


def test_fill_zero_copy():
    x = pe.empty(2, 2)
    assert x.fill_(3).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert x.zero_().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    x.copy_(np.array([1.0, 2.0]))
    assert x.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    x.copy_(pe.tensor([[5, 6], [7, 8]]).to("cuda_emu"))
    assert x.tolist() == [[5.0, 6.0], [7.0, 8.0]] and x.dtype == np.float32
    w = pe.tensor([1.0, 1.0], requires_grad=True)
    y = pe.zeros(2)
    y.copy_(w * 3)
    y.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


# -- Tensor wraps arrays, tensor() copies ------------------------------------------------------
def test_tensor_constructor_wraps_and_tensor_function_copies():
    a = np.arange(3.0)
    assert pe.Tensor(a).data is a
    t = pe.tensor(a)
    assert t.dtype == np.float64 and not np.shares_memory(t.numpy(), a)
    assert pe.tensor([1, 2]).dtype == np.int64
    assert pe.tensor([1.0, 2]).dtype == np.float32
    assert pe.tensor([True]).dtype == np.bool_
    assert pe.tensor(2.5).shape == () and pe.tensor(2.5).dtype == np.float32
    assert pe.Tensor([1.0, 2.0]).dtype == np.float32
    assert pe.tensor([1, 2], dtype=pe.float64).dtype == np.float64
    assert pe.tensor(pe.ones(2), device="cuda_emu").device == "cuda_emu"


def test_tensor_deepcopy_and_pickle():
    import copy
    import pickle

    x = pe.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    c = copy.deepcopy(x)
    assert c.requires_grad and c.grad.tolist() == [2.0, 2.0]
    assert not np.shares_memory(c.numpy(), x.numpy())
    p = pickle.loads(pickle.dumps(x.to("cuda_emu").detach()))
    assert p.device == "cuda_emu" and p.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="leaf"):
        copy.deepcopy(x * 2)


def test_setitem_with_integers_and_index_arrays_follows_torch():
    x, xt = pe.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    v = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x[1, 0:2, [3, 0, 1]] = v
    xt[1, 0:2, [3, 0, 1]] = th(v)
    assert x.tolist() == xt.tolist()


def test_zero_d_reductions_any_all_contains():
    x, xt = pe.tensor(3.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    v, i = x.max(0)
    vt, it = xt.max(0)
    assert v.shape == () and i.shape == () and v.item() == vt.item() and i.item() == it.item()
    v.backward()
    assert x.grad.item() == 1.0
    assert x.argmax(0).item() == xt.argmax(0).item() == 0
    assert x.sum(0).item() == 3.0 and x.sum(-1).shape == ()
    b = pe.tensor([0.0, 2.0])
    assert b.any().item() and not b.all().item() and b.any().dtype == np.bool_
    assert 2.0 in b and 5.0 not in b


def test_data_attribute_holds_an_array():
    x = pe.ones(2)
    x.data = pe.zeros(2)  # a tensor assigned to .data is unwrapped, as torch code expects
    assert isinstance(x.data, np.ndarray) and x.tolist() == [0.0, 0.0]
    assert pe.Tensor(pe.ones(2).to("cuda_emu")).device == "cuda_emu"


# -- property-based: random broadcastable shapes and op chains ----------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _broadcast_pair(draw):
    """Two shapes that broadcast: each dim of the longer shape is shared, or 1 on one side."""
    ndim = draw(st.integers(0, 4))
    full = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    a = [n if draw(st.booleans()) else 1 for n in full]
    b = [n if draw(st.booleans()) else 1 for n in full]
    a = a[draw(st.integers(0, ndim)):]  # drop leading dims on either side
    b = b[draw(st.integers(0, ndim)):]
    return tuple(a), tuple(b)


@settings(max_examples=40, deadline=None)
@given(shapes=_broadcast_pair(), ops=st.lists(st.sampled_from(sorted(BINARY)), min_size=1,
                                              max_size=3), seed=st.integers(0, 2 ** 16))
def test_random_broadcast_chains_match_torch(shapes, ops, seed):
    a = rnd(shapes[0], np.float64, seed=seed)
    b = rnd(shapes[1], np.float64, seed=seed + 1, away_from_zero=True)

    def chain(x, y):
        out = x
        for name in ops:
            out = BINARY[name](out, y)
        return out * x

    compare_with_torch(chain, chain, [a, b], op="elementwise")


def test_comparisons_and_inplace_ops_refuse_two_devices():
    a, b = pe.ones(2), pe.ones(2).to("cuda_emu")
    with pytest.raises(RuntimeError, match="device"):
        a == b
    with pytest.raises(RuntimeError, match="device"):
        a += b
    with pytest.raises(RuntimeError, match="device"):
        a[0:2] = b
    a.copy_(b * 3)  # copy_ moves across devices, as in torch
    assert a.tolist() == [3.0, 3.0] and a.device == "cpu"
