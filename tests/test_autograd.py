"""The autograd engine: graph recording, gradient accumulation, backward's arguments and errors,
grad modes, graph shapes (diamond, deep chain), custom Functions, in-place checks, and float64
gradient checks of composite expressions against central differences.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine.autograd import Function

from .helpers import assert_close, gradcheck


def rnd(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- requires_grad -----------------------------------------------------------------------------
def test_requires_grad_on_integer_tensors_raises_like_torch():
    for make in [lambda: pe.arange(3).requires_grad_(), lambda: pe.tensor([1, 2],
                                                                          requires_grad=True),
                 lambda: pe.zeros(2, dtype=pe.int64, requires_grad=True),
                 lambda: pe.Tensor(np.array([True]), requires_grad=True)]:
        with pytest.raises(RuntimeError, match="floating"):
            make()
    x = pe.arange(3)
    with pytest.raises(RuntimeError, match="floating"):
        x.requires_grad = True


def test_requires_grad_flags_and_leaves():
    x = pe.ones(2)
    assert not x.requires_grad and x.is_leaf and x.grad_fn is None
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    assert "Mul" in repr(y.grad_fn)
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    x.requires_grad = False
    assert not (x * 2).requires_grad
    # an op on tensors that do not require grad records nothing
    z = pe.ones(2) + pe.ones(2)
    assert z.is_leaf and not z.requires_grad


def test_integer_outputs_of_differentiable_inputs_do_not_require_grad():
    x = pe.tensor([1.0, 5.0, 2.0], requires_grad=True)
    assert not x.argmax().requires_grad
    assert not (x > 1).requires_grad
    assert not x.max(0).indices.requires_grad


# -- accumulation ------------------------------------------------------------------------------
def test_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = pe.tensor([1.0, 2.0, 3.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x + x.exp() * x).sum().backward()
    (xt * xt + xt.exp() * xt).sum().backward()
    assert_close(x.grad, xt.grad, 1e-6, 1e-6)


def test_gradients_accumulate_across_backward_calls():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_grad_keeps_the_leaf_dtype_when_ops_promote():
    x = pe.tensor([1.0, 2.0], requires_grad=True)  # float32
    y = x * pe.tensor([1.0, 1.0], dtype=pe.float64)  # float64 result
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]


# -- backward's arguments and errors -----------------------------------------------------------
def test_backward_with_a_gradient_argument():
    x = pe.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    xt = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    g = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)
    (x * x).backward(pe.tensor(g))
    (xt * xt).backward(torch.from_numpy(g))
    assert_close(x.grad, xt.grad, 0, 0)
    x.grad = None
    (x * x).backward(g)  # a plain array works too
    assert_close(x.grad, xt.grad, 0, 0)


def test_backward_of_a_leaf_sets_its_grad():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    x.backward(pe.tensor([3.0, 4.0]))
    assert x.grad.tolist() == [3.0, 4.0]


def test_backward_errors_like_torch():
    x = pe.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        (x * 2).backward()  # non-scalar without gradient
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        (x * 2).backward(pe.ones(2))  # gradient of the wrong shape
    with pytest.raises(RuntimeError, match="does not require grad"):
        pe.ones(3).sum().backward()
    with pytest.raises(NotImplementedError):
        (x * 2).sum().backward(create_graph=True)


def test_second_backward_without_retain_graph_raises():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()  # Mul saves its inputs
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    # torch raises here too
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    yt = (xt * xt).sum()
    yt.backward()
    with pytest.raises(RuntimeError):
        yt.backward()


def test_second_backward_through_ops_that_saved_nothing_works_like_torch():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_retain_graph_allows_a_second_backward():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)


# -- retain_grad -------------------------------------------------------------------------------
def test_retain_grad_on_intermediate_and_root_tensors():
    x = pe.tensor([1.0, 2.0, 3.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, at = x * 2, xt * 2
    b, bt = a * a, at * at
    a.retain_grad()  # after `a` was used: still works, as in torch
    at.retain_grad()
    c, ct = b.sum(), bt.sum()
    c.retain_grad()
    ct.retain_grad()
    assert a.retains_grad and not x.retains_grad
    c.backward()
    ct.backward()
    assert_close(a.grad, at.grad, 0, 0)
    assert c.grad.item() == ct.grad.item() == 1.0
    assert b.grad is None  # not retained
    assert_close(x.grad, xt.grad, 0, 0)


def test_retain_grad_accumulates_when_used_twice_and_errors_without_grad():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    a.retain_grad()
    (a * 3 + a * 4).sum().backward()
    assert a.grad.tolist() == [7.0, 7.0]
    with pytest.raises(RuntimeError, match="require grad"):
        pe.ones(2).retain_grad()
    x.retain_grad()  # a no-op on a leaf


# -- grad modes --------------------------------------------------------------------------------
def test_no_grad_context_and_enable_grad_inside():
    x = pe.ones(2, requires_grad=True)
    with pe.no_grad():
        y = x * 2
        assert not pe.is_grad_enabled()
        with pe.enable_grad():
            z = x * 2
            assert pe.is_grad_enabled()
        assert not pe.is_grad_enabled()
    assert pe.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad


def test_no_grad_as_decorator_with_and_without_parentheses():
    x = pe.ones(2, requires_grad=True)

    @pe.no_grad()
    def f(t):
        return t * 2

    @pe.no_grad
    def g(t):
        return t * 2

    @pe.enable_grad()
    def h(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    with pe.no_grad():
        assert h(x).requires_grad
    assert pe.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ValueError):
        with pe.no_grad():
            raise ValueError("boom")
    assert pe.is_grad_enabled()


def test_set_grad_enabled():
    x = pe.ones(2, requires_grad=True)
    with pe.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert pe.is_grad_enabled()
    pe.set_grad_enabled(False)
    try:
        assert not pe.is_grad_enabled()
    finally:
        pe.set_grad_enabled(True)
    assert pe.is_grad_enabled()

    @pe.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert pe.is_grad_enabled()  # decorating changes nothing
    assert not f(x).requires_grad
    with pe.no_grad():
        f(x)
        assert not pe.is_grad_enabled()  # the caller's mode comes back
    assert pe.is_grad_enabled()


# -- graph shapes ------------------------------------------------------------------------------
def test_diamond_graph_matches_torch():
    data = rnd((3, 4), seed=1)
    x = pe.tensor(data, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)

    def diamond(t, lib):
        a = t * 2
        left = lib.exp(a) if lib is torch else a.exp()
        right = a * a
        top = left * right + a
        return (top / (right + 1)).sum()

    diamond(x, pe).backward()
    diamond(xt, torch).backward()
    assert_close(x.grad, xt.grad, 1e-12, 1e-10)


def test_deep_chain_has_no_recursion_limit():
    x = pe.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 5000], rtol=1e-3)
    del y
    gc.collect()


def test_very_deep_chain_is_freed_without_crashing():
    x = pe.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(50000):
        y = y + 1.0
    del y  # dropping a long chain of nodes must not overflow the C stack
    gc.collect()


def test_intermediate_tensors_are_freed_when_not_saved():
    x = pe.ones(1000, requires_grad=True)
    a = x + 1  # Add saves nothing: the graph must not keep `a` alive
    ref = weakref.ref(a)
    y = (a + 2).sum()
    del a
    gc.collect()
    assert ref() is None
    y.backward()
    assert x.grad.tolist() == [1.0] * 1000


def test_branches_that_do_not_require_grad_get_no_gradient():
    w = pe.tensor([1.0, 2.0], requires_grad=True)
    c = pe.tensor([3.0, 4.0])
    (w * c + c * c).sum().backward()
    assert w.grad.tolist() == [3.0, 4.0] and c.grad is None


def test_unused_outputs_get_zero_gradients():
    x = pe.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    values, _ = x.max(1)
    (values[0] * 2).backward()
    assert x.grad.tolist() == [[0.0, 2.0], [0.0, 0.0]]


# -- custom Functions --------------------------------------------------------------------------
class _Cube(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g * 3 * ctx.scale * x ** 2, None


class _WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g[:1]


class _TooFew(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * y

    @staticmethod
    def backward(ctx, g):
        return (g,)


def test_custom_function():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    y = _Cube.apply(x, 2.0)
    assert y.tolist() == [2.0, 16.0]
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]


def test_custom_function_errors_name_shapes_and_counts():
    x = pe.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(1,\).*\(3,\)"):
        _WrongShape.apply(x).sum().backward()
    y = pe.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1"):
        _TooFew.apply(x, y).sum().backward()


def test_needs_input_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    Probe.apply(pe.ones(2, requires_grad=True), pe.ones(2))
    assert seen["needs"] == (True, False)


# -- in-place modification of saved arrays -----------------------------------------------------
def test_modifying_a_saved_input_in_place_is_caught_at_backward():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    c = pe.tensor([3.0, 4.0])
    y = (x * c).sum()  # Mul saved c
    c += 1
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_modifying_a_saved_output_in_place_is_caught_like_torch():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    a = x.exp()  # Exp saves its output
    with pe.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="in-place"):
        a.sum().backward()


def test_modifying_an_unsaved_input_in_place_is_allowed():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    c = pe.tensor([3.0, 4.0])
    y = (x + c).sum()  # Add saves nothing
    c += 1
    y.backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_modifying_a_view_of_a_saved_array_is_caught():
    x = pe.tensor([1.0, 2.0], requires_grad=True)
    c = pe.tensor([[3.0, 4.0]])
    y = (x * c[0]).sum()  # c[0] is a view of c's buffer
    c[0, 1] = 10.0
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


# -- float64 gradient checks of composite expressions ------------------------------------------
def _pos(shape, seed):
    return np.abs(rnd(shape, seed)) + 0.5


EXPRESSIONS = {
    "poly": (lambda x, y: (x * x * y - 3 * x / y + 2.5).sum(1), [(3, 4), (4,)]),
    "exp-log": (lambda x, y: (x.exp() * y).log() + x.sqrt(), [(2, 3), (2, 3)]),
    "matmul chain": (lambda x, y: (x @ y).abs().mean(0) ** 1.5, [(3, 4), (4, 5)]),
    "batched matmul": (lambda x, y: (x @ y).sum((0, 2)), [(2, 3, 4), (4, 5)]),
    "index + cat": (lambda x, y: pe.cat([x[:, [0, 0, 2]], y.T[::2, ::-1]], 0) * 2,
                    [(4, 3), (3, 4)]),
    "views": (lambda x, y: (x.reshape(2, -1).T.flatten() * y.permute(1, 0).reshape(-1)),
              [(2, 3), (3, 2)]),
    "max + stack": (lambda x, y: pe.stack([x.max(1).values, y.max(0, keepdim=True).values[0]]),
                    [(3, 4), (4, 3)]),
    "pow tensor": (lambda x, y: (x ** y).sum(-1, keepdim=True) / y.sum(), [(2, 3), (3,)]),
    "broadcast": (lambda x, y: (x - y) / (x * y + 10.0) - 1 / x, [(2, 1, 3), (4, 1)]),
    "casts": (lambda x, y: (x.float() * y.float()).double().sum(0), [(3, 2), (2,)]),
    "setitem": (lambda x, y: _setitem_expr(x, y), [(3, 4), (4,)]),
    "inplace": (lambda x, y: _inplace_expr(x, y), [(3, 4), (4,)]),
    "expand": (lambda x, y: x.expand(3, 2, 4) * y, [(2, 1), (3, 1, 4)]),
}


def _setitem_expr(x, y):
    out = pe.zeros(3, 4, dtype=pe.float64)
    out[1] = y * y
    out[[0, 2]] = x[:2] * 3
    return out * x


def _inplace_expr(x, y):
    a = x * 1.5
    a += y
    a *= x
    a[0, 1:] = y[:3]
    return a.exp()


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_gradcheck_composite_expressions(name):
    fn, shapes = EXPRESSIONS[name]
    # "casts" goes through float32, so central differences are accurate to float32 only
    eps, atol, rtol = (1e-3, 1e-3, 1e-3) if name == "casts" else (1e-6, 1e-6, 1e-4)
    gradcheck(fn, [_pos(s, seed=i) for i, s in enumerate(shapes)], eps=eps, atol=atol,
              rtol=rtol)
