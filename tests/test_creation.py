"""Creation functions and interop against PyTorch: dtypes, shapes, values, keywords, seeding,
and zero-copy exchange (from_numpy, as_tensor, DLPack both ways)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pyengine as pe


def torch_dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32,
                np.dtype(np.bool_): torch.bool, np.dtype(np.float16): torch.float16,
                np.dtype(np.uint8): torch.uint8}

SIZES = [((2, 3), (2, 3)), (((2, 3),), (2, 3)), (([4],), (4,)), ((), ()), (((),), ()),
         ((0, 3), (0, 3)), ((np.int64(2),), (2,))]


# -- zeros / ones / full / empty ---------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_size_forms_match_torch(name, size):
    args, shape = size
    if args == ():
        with pytest.raises(TypeError):
            getattr(torch, name)()
        with pytest.raises(TypeError, match="size"):
            getattr(pe, name)()
        return
    th_args = tuple(int(a) if isinstance(a, np.integer) else a for a in args)
    out, ref = getattr(pe, name)(*args), getattr(torch, name)(*th_args)
    assert out.shape == tuple(ref.shape) == shape
    assert out.dtype == torch_dtype(ref) == np.float32
    if name in ("zeros", "ones"):
        np.testing.assert_array_equal(out.numpy(), ref.numpy())


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_dtype_keyword(name, dtype):
    out = getattr(pe, name)(2, 2, dtype=dtype)
    ref = getattr(torch, name)(2, 2, dtype=TORCH_DTYPES[dtype])
    assert out.dtype == torch_dtype(ref)
    if name != "empty":
        np.testing.assert_array_equal(out.numpy(), ref.numpy())


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_device_and_requires_grad_keywords(name):
    out = getattr(pe, name)(2, 3, device="cuda_emu", requires_grad=True)
    assert out.device == "cuda_emu" and out.requires_grad and out.is_leaf
    assert isinstance(out.data, np.ndarray)
    out.sum().backward()
    assert out.grad.tolist() == [[1.0] * 3] * 2 and out.grad.device == "cuda_emu"


def test_factories_reject_bad_arguments():
    with pytest.raises(RuntimeError, match="negative"):
        pe.zeros(2, -1)
    with pytest.raises(TypeError):
        pe.ones(2.5)
    with pytest.raises(RuntimeError, match="floating"):
        pe.zeros(2, dtype=pe.int64, requires_grad=True)
    with pytest.raises(ValueError, match="unknown device"):
        pe.zeros(2, device="tpu")
    with pytest.raises(TypeError):
        pe.zeros(2, dtype="not a dtype")
    with pytest.raises(RuntimeError, match="floating"):
        pe.randn(2, dtype=pe.int64)


@pytest.mark.parametrize("value", [3, 2.5, True, -1])
def test_full_infers_dtype_like_torch(value):
    out, ref = pe.full((2, 3), value), torch.full((2, 3), value)
    assert out.dtype == torch_dtype(ref)
    assert out.tolist() == ref.tolist()
    assert pe.full((2,), value, dtype=pe.float64).dtype == np.float64
    assert pe.full(4, value).shape == (4,)
    assert pe.full([2, 2], pe.tensor(1.5)).tolist() == [[1.5, 1.5], [1.5, 1.5]]


def test_like_functions_keep_dtype_and_device():
    base = pe.arange(6).reshape(2, 3).to("cuda_emu")
    for name, expect in [("zeros_like", 0), ("ones_like", 1), ("empty_like", None)]:
        out = getattr(pe, name)(base)
        assert out.shape == (2, 3) and out.dtype == np.int64 and out.device == "cuda_emu"
        if expect is not None:
            assert (out.numpy() == expect).all()
    f = pe.full_like(base, 7)
    assert f.dtype == np.int64 and f.tolist() == [[7] * 3] * 2
    z = pe.zeros_like(base, dtype=pe.float32, device="cpu", requires_grad=True)
    assert z.dtype == np.float32 and z.device == "cpu" and z.requires_grad
    r = pe.rand_like(pe.zeros(3, 2, dtype=pe.float64))
    assert r.shape == (3, 2) and r.dtype == np.float64
    n = pe.randn_like(np.zeros((4,), dtype=np.float32))
    assert n.shape == (4,) and n.dtype == np.float32


# -- eye ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,), (1, 1)])
def test_eye_matches_torch(args):
    out, ref = pe.eye(*args), torch.eye(*args)
    assert out.dtype == torch_dtype(ref)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    assert pe.eye(*args, dtype=pe.int64).dtype == np.int64


# -- arange ------------------------------------------------------------------------------------
ARANGE_CASES = [
    (5,), (0,), (2, 7), (10, 0, -3), (-3, 4, 2), (0, 10, 3), (1, 2, 5),
    (5.0,), (0, 1, 0.1), (1, 2.5, 0.5), (-1, 1, 0.3), (0.5, 10), (10, 0, -0.7),
    (0, 3, 1.0), (-2.5, 2.5, 0.25), (0, 0.01, 0.001), (1e3, 1e3 + 1, 0.1),
]


@pytest.mark.parametrize("args", ARANGE_CASES, ids=str)
def test_arange_matches_torch_exactly(args):
    out, ref = pe.arange(*args), torch.arange(*args)
    assert out.dtype == torch_dtype(ref), (out.dtype, ref.dtype)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


@pytest.mark.parametrize("dtype", [pe.float64, pe.float32, pe.int32, pe.int64])
def test_arange_dtype_keyword_matches_torch(dtype):
    for args in [(5,), (1, 4), (0, 6, 2)]:
        out = pe.arange(*args, dtype=dtype)
        ref = torch.arange(*args, dtype=TORCH_DTYPES[np.dtype(dtype)])
        assert out.dtype == torch_dtype(ref)
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    out = pe.arange(0, 1, 0.1, dtype=pe.float64)
    np.testing.assert_array_equal(out.numpy(), torch.arange(0, 1, 0.1,
                                                            dtype=torch.float64).numpy())


def test_arange_keywords_and_errors():
    x = pe.arange(0.0, 3.0, device="cuda_emu", requires_grad=True)
    assert x.device == "cuda_emu" and x.requires_grad
    assert pe.arange(np.int64(3)).tolist() == [0, 1, 2]
    assert pe.arange(pe.tensor(3)).tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError, match="nonzero"):
        pe.arange(0, 5, 0)
    with pytest.raises(RuntimeError, match="inconsistent"):
        pe.arange(0, 5, -1)
    with pytest.raises(RuntimeError, match="floating"):
        pe.arange(3, requires_grad=True)


# -- random ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rand", "randn"])
def test_random_reproducible_with_manual_seed(name):
    f = getattr(pe, name)
    pe.manual_seed(123)
    a = f(3, 4)
    b = f(3, 4)
    pe.manual_seed(123)
    c = f((3, 4))
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    assert not np.array_equal(a.numpy(), b.numpy())
    pe.manual_seed(123)
    d = f(3, 4, device="cuda_emu")
    np.testing.assert_array_equal(a.numpy(), d.numpy())  # the same numbers on every device


def test_random_dtypes_and_ranges():
    pe.manual_seed(0)
    u = pe.rand(20000, dtype=pe.float64)
    assert u.dtype == np.float64 and 0 <= u.numpy().min() and u.numpy().max() < 1
    assert abs(u.numpy().mean() - 0.5) < 0.01
    n = pe.randn(20000)
    assert abs(n.numpy().mean()) < 0.03 and abs(n.numpy().std() - 1) < 0.03
    h = pe.randn(5, dtype=pe.float16)
    assert h.dtype == np.float16
    gen = np.random.default_rng(7)
    g1 = pe.randn(3, generator=gen)
    g2 = pe.randn(3, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(g1.numpy(), g2.numpy())


def test_randint_forms_and_ranges():
    pe.manual_seed(0)
    a = pe.randint(10, (1000,))
    assert a.dtype == np.int64 and a.shape == (1000,)
    assert a.numpy().min() >= 0 and a.numpy().max() <= 9 and len(np.unique(a.numpy())) == 10
    b = pe.randint(-3, 3, (2, 500))
    assert b.shape == (2, 500) and b.numpy().min() == -3 and b.numpy().max() == 2
    c = pe.randint(5, size=(4,), dtype=pe.int32)
    assert c.dtype == np.int32
    d = pe.randint(0, 5, (3,), dtype=pe.float32)
    assert d.dtype == np.float32
    assert pe.randint(3, 4, ()).item() == 3
    pe.manual_seed(5)
    e1 = pe.randint(100, (20,))
    pe.manual_seed(5)
    np.testing.assert_array_equal(e1.numpy(), pe.randint(100, (20,)).numpy())
    with pytest.raises(TypeError, match="size"):
        pe.randint(10)
    with pytest.raises(RuntimeError, match="empty range"):
        pe.randint(5, 5, (2,))
    with pytest.raises(RuntimeError, match="floating"):
        pe.randint(5, (2,), requires_grad=True)


# -- from_numpy / as_tensor --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.bool_])
def test_from_numpy_shares_memory(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    t = pe.from_numpy(a)
    ref = torch.from_numpy(a)
    assert t.dtype == torch_dtype(ref) and t.shape == (2, 3) and t.device == "cpu"
    a[1, 2] = 1
    assert t.numpy()[1, 2] == 1
    t.numpy()[0, 0] = 1
    assert a[0, 0] == 1


def test_from_numpy_keeps_strides_and_rejects_non_arrays():
    a = np.arange(12.0).reshape(3, 4)[:, ::2]
    t = pe.from_numpy(a)
    assert not t.is_contiguous() and t.tolist() == a.tolist()
    with pytest.raises(TypeError):
        pe.from_numpy([1, 2, 3])
    with pytest.raises(TypeError):
        pe.from_numpy(np.array(["a"]))


def test_as_tensor_shares_when_it_can():
    a = np.arange(3.0)
    t = pe.as_tensor(a)
    assert t.data is a
    c = pe.as_tensor(a, dtype=pe.float32)
    assert c.dtype == np.float32 and not np.shares_memory(c.numpy(), a)
    assert pe.as_tensor([1, 2]).dtype == np.int64
    x = pe.ones(2)
    assert pe.as_tensor(x) is x
    assert pe.as_tensor(x, device="cuda_emu").device == "cuda_emu"


# -- DLPack ------------------------------------------------------------------------------------
DLPACK_DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_, np.float16]


@pytest.mark.parametrize("dtype", DLPACK_DTYPES)
def test_torch_from_dlpack_of_pe_tensor_shares_memory(dtype):
    t = pe.zeros(2, 3, dtype=dtype)
    tt = torch.from_dlpack(t)
    assert tuple(tt.shape) == (2, 3) and torch_dtype(tt) == np.dtype(dtype)
    tt[1, 2] = 1
    assert t.numpy()[1, 2] == 1
    t.numpy()[0, 1] = 1
    assert tt[0, 1].item() == 1


@pytest.mark.parametrize("dtype", DLPACK_DTYPES)
def test_pe_from_dlpack_of_torch_tensor_shares_memory(dtype):
    tt = torch.zeros(2, 3, dtype=TORCH_DTYPES[np.dtype(dtype)])
    t = pe.from_dlpack(tt)
    assert t.shape == (2, 3) and t.dtype == np.dtype(dtype) and t.device == "cpu"
    t.numpy()[1, 0] = 1
    assert tt[1, 0].item() == 1
    tt[0, 2] = 1
    assert t.numpy()[0, 2] == 1


def test_dlpack_with_strided_and_0d_tensors():
    tt = torch.arange(12.0).reshape(3, 4).t()  # non-contiguous
    t = pe.from_dlpack(tt)
    assert t.shape == (4, 3) and t.tolist() == tt.tolist()
    tt[0, 0] = 100.0  # still the same memory
    assert t.numpy()[0, 0] == 100.0
    x = pe.tensor(np.arange(12.0).reshape(3, 4)).T
    xt = torch.from_dlpack(x)
    assert xt.tolist() == x.tolist()
    s = pe.tensor(3.5)
    assert torch.from_dlpack(s).item() == 3.5 and torch.from_dlpack(s).shape == ()
    assert pe.from_dlpack(torch.tensor(2.0)).shape == ()


def test_dlpack_protocol_details():
    t = pe.ones(3)
    assert t.__dlpack_device__() == (1, 0)
    assert pe.ones(2).to("cuda_emu").__dlpack_device__() == (1, 0)  # host memory
    a = np.from_dlpack(t)
    a[0] = 9
    assert t.tolist()[0] == 9
    assert pe.from_dlpack(np.arange(3)).tolist() == [0, 1, 2]
    assert pe.from_dlpack(t).numpy() is t.numpy() or \
        np.shares_memory(pe.from_dlpack(t).numpy(), t.numpy())
    with pytest.raises(RuntimeError, match="detach"):
        torch.from_dlpack(pe.ones(2, requires_grad=True))
    assert torch.from_dlpack(pe.ones(2, requires_grad=True).detach()).tolist() == [1.0, 1.0]
    with pytest.raises(TypeError):
        pe.from_dlpack([1, 2, 3])


@pytest.mark.gpu
def test_dlpack_with_cupy_on_cuda():
    if not pe.is_cuda_available():
        pytest.skip("needs cupy and an NVIDIA GPU")
    import cupy

    c = cupy.zeros((2, 3), dtype=cupy.float32)
    t = pe.from_dlpack(c)
    assert t.device == "cuda" and t.data.data.ptr == c.data.ptr
    back = cupy.from_dlpack(t)
    back[0, 0] = 5
    assert float(c[0, 0]) == 5.0
    x = pe.randn(3, 4, device="cuda", requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)
