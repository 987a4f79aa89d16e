"""Shared test machinery: PyTorch comparison, directional gradient check, backend enumeration.

- ``compare_with_torch(pe_fn, torch_fn, arrays, ...)`` runs an op in pyengine and in PyTorch on
  the same inputs, checks the forward result and every input gradient (one upstream gradient,
  random but shared).
- ``gradcheck(fn, arrays)`` checks a float64 op's analytic gradient against central differences
  along one random direction per input (Chainer's check_backward).
- ``noncontiguous(a)`` returns a strided view holding the same values.
- ``implementations(op, dtype)`` lists (backend, algo) pairs other than the reference, so the
  shared tests cover every backend and algorithm without a copy of the suite.
"""
from __future__ import annotations

import numpy as np
import torch

import pyengine as pe
from pyengine import backends

from .tolerances import tolerance

torch.set_num_threads(2)


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view (every other element of a twice-as-wide buffer) equal to ``a``."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    buf = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), dtype=a.dtype)
    view = buf[..., ::2]
    view[...] = a
    assert not view.flags.c_contiguous or a.shape[-1] <= 1
    return view


def assert_close(actual, expected, atol, rtol, name="result", scale=None):
    """|a - e| <= atol + rtol * scale (scale defaults to |e|); NaNs must match NaNs.

    Prints the first mismatches, as llm.c does, so a failure says where it is.
    """
    a = np.asarray(actual.numpy() if isinstance(actual, pe.Tensor) else actual, dtype=np.float64)
    e = np.asarray(expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected,
                   dtype=np.float64)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != expected {e.shape}"
    s = np.abs(e) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), \
        f"{name}: NaN pattern differs ({int(nan_a.sum())} NaN vs {int(nan_e.sum())} expected)"
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities pass through a == e
        ok = nan_e | (a == e) | (np.abs(a - e) <= atol + rtol * s)
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        lines = [f"  at {tuple(i)}: got {a[tuple(i)]!r}, expected {e[tuple(i)]!r}" for i in bad]
        raise AssertionError(f"{name}: {int((~ok).sum())} of {ok.size} elements differ "
                             f"(atol={atol}, rtol={rtol})\n" + "\n".join(lines))


def _to_torch(a, requires_grad):
    t = torch.from_numpy(np.array(a))  # copy: torch must not see pyengine's buffers
    if requires_grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def compare_with_torch(pe_fn, torch_fn, arrays, op, grad=True, seed=0, grad_inputs=None):
    """Run ``pe_fn(*tensors)`` and ``torch_fn(*tensors)`` on the same arrays and compare.

    ``arrays``: numpy arrays (any layout; non-contiguous ones stay non-contiguous for pyengine).
    ``grad_inputs``: indices of the arrays to differentiate (default: every floating one).
    Tolerances come from the table in tolerances.py for (op, dtype of the first array).
    Returns (pyengine output, torch output).
    """
    rng = np.random.default_rng(seed)
    dtype = np.asarray(arrays[0]).dtype
    atol, rtol = tolerance(op, dtype)
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"]
    pe_in = [pe.Tensor(a, requires_grad=grad and i in grad_inputs) for i, a in enumerate(arrays)]
    th_in = [_to_torch(a, grad and i in grad_inputs) for i, a in enumerate(arrays)]
    out = pe_fn(*pe_in)
    ref = torch_fn(*th_in)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    for k, (o, r) in enumerate(zip(outs, refs)):
        assert o.dtype == np.dtype(str(r.dtype).replace("torch.", "")), \
            f"{op} output {k}: dtype {o.dtype} != torch's {r.dtype}"
        assert_close(o, r, atol, rtol, name=f"{op} output {k}")
    if grad and grad_inputs:
        g = rng.standard_normal(outs[0].shape).astype(dtype)
        outs[0].backward(pe.tensor(g))
        refs[0].backward(torch.from_numpy(g))
        for i in grad_inputs:
            assert_close(pe_in[i].grad, th_in[i].grad, atol, rtol, name=f"{op} grad of input {i}")
    return out, ref


def gradcheck(fn, arrays, grad_inputs=None, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Directional finite-difference check of ``fn`` (pe.Tensors in, one pe.Tensor out), float64.

    Projects the output on a random direction r and the inputs along random directions v:
    analytic sum_i <grad_i, v_i> vs (L(x + eps v) - L(x - eps v)) / 2 eps, L = <fn(x), r>.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.array(a) for a in arrays]
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    for i in grad_inputs:
        assert arrays[i].dtype == np.float64, "gradcheck runs in float64"
    inputs = [pe.Tensor(a.copy(), requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    y = fn(*inputs)
    r = rng.standard_normal(y.shape)
    y.backward(pe.tensor(r))
    dirs = {i: rng.standard_normal(arrays[i].shape) for i in grad_inputs}
    analytic = sum(float((inputs[i].grad.numpy() * dirs[i]).sum()) for i in grad_inputs)

    def loss(sign):
        shifted = [pe.Tensor(a + sign * eps * dirs[i] if i in dirs else a.copy())
                   for i, a in enumerate(arrays)]
        with pe.no_grad():
            return float((fn(*shifted).numpy() * r).sum())

    numeric = (loss(+1) - loss(-1)) / (2 * eps)
    assert abs(analytic - numeric) <= atol + rtol * max(abs(numeric), abs(analytic)), \
        f"gradcheck: analytic {analytic!r} vs numeric {numeric!r}"


def check_backends_match(op, dtype, run, label=None, tol_op=None):
    """Every (backend, algorithm) implementing ``op`` for ``dtype`` against numpy_ref.

    ``run(algo)`` computes the outputs to compare (forward result, gradients...) as arrays on
    whichever backend is chosen when it is called; it runs once under the reference, then once
    per implementation with that backend chosen. Skips (saying why) when only the reference
    implements the op for this dtype.
    """
    import pytest
    impls = implementations(op, dtype)
    if not impls:
        pytest.skip(f"no backend other than numpy implements {op} for {np.dtype(dtype)}")
    atol, rtol = tolerance(tol_op or op, dtype)
    with pe.use_backend("numpy"):
        expected = run("direct")
    for backend, algo in impls:
        with pe.use_backend(backend):
            got = run(algo)
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, atol, rtol, name=f"{backend}/{algo} {label or op} output {k}")


def round_tf32(a):
    """``a`` rounded to TF32 as the tensor cores read it after __float_to_tf32: 10 mantissa
    bits, to nearest, ties away from zero; NaN and infinity unchanged. Returns float32."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    finite = (u & np.uint32(0x7F800000)) != np.uint32(0x7F800000)
    rounded = (u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)
    return np.where(finite, rounded, u).astype(np.uint32).view(np.float32)


def computes_in_tf32(algo):
    """Whether an algorithm multiplies TF32-rounded operands (its name says tf32)."""
    return algo is not None and "tf32" in algo


def implementations(op, dtype=np.float32):
    """(backend, algo) pairs other than the reference that implement ``op`` for ``dtype``."""
    return [(b, a) for b, a in backends.implementations(op, dtype) if b != "numpy"]
