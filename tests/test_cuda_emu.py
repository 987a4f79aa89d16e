"""The CUDA emulator and the CUDA backends beyond the shared suite.

The shared ``test_backends_match_reference`` tests already run every CUDA kernel through
``cuda_emu`` against numpy_ref. This file adds what they cannot see:

- the emulator itself: a planted missing ``__syncthreads`` gives wrong results, the fixed
  kernel is right for many seeds; warp shuffles, votes, poisoned shared memory, atomics;
  barrier misuses raise instead of hanging;
- every kernel version pinned by name (softmax's versions are not reachable through
  ``F.softmax``), the split-K weight gradients, and results that are bitwise identical for
  every thread order (the kernels' reductions are deterministic);
- the optimizer kernels and the bias-fused activation, against numpy;
- the real module (``pyengine._cuda``) when it was built: it imports without a GPU and says why
  CUDA is unusable;
- ``@pytest.mark.gpu``: the same kernel comparisons on a real GPU with cupy (``pytest -m gpu``).

Shapes stay small: the emulator runs every CUDA thread on a host fiber.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import pyengine as pe
from pyengine import backends
from pyengine.params import ActivationParams, Conv2dParams, LossParams, Pool2dParams

from .helpers import assert_close
from .tolerances import tolerance

emu_module = pytest.importorskip("pyengine._cuda_emu",
                                 reason="pyengine._cuda_emu is not built")
testing = emu_module.testing


@pytest.fixture
def emu():
    """The cuda_emu backend; the emulator's seed is restored afterwards."""
    if "cuda_emu" not in backends.available():
        pytest.skip(f"cuda_emu unavailable: {backends.unavailable().get('cuda_emu')}")
    seed = emu_module.get_seed()
    yield backends.get("cuda_emu")
    emu_module.set_seed(seed)


# ---------------------------------------------------------------------------------------------
# the emulator
# ---------------------------------------------------------------------------------------------
def _block_sums(x):
    n = x.size
    padded = np.zeros(-(-n // 256) * 256, dtype=np.float64)
    padded[:n] = x
    return padded.reshape(-1, 256).sum(axis=1)


def test_missing_syncthreads_is_caught():
    x = np.random.default_rng(0).standard_normal(256 * 5 + 77).astype(np.float32)
    expected = _block_sums(x)
    wrong_seeds = 0
    for seed in range(8):
        emu_module.set_seed(seed)
        out = np.empty(6, np.float32)
        testing.block_reduce(x, out, barriers=False)
        wrong_seeds += not np.allclose(out, expected, rtol=1e-5, atol=1e-4)
    assert wrong_seeds > 0, "the shuffled order never exposed the missing __syncthreads"


def test_fixed_reduction_is_right_for_every_seed():
    x = np.random.default_rng(1).standard_normal(256 * 5 + 77).astype(np.float32)
    expected = _block_sums(x)
    results = []
    for seed in range(32):
        emu_module.set_seed(seed)
        out = np.empty(6, np.float32)
        testing.block_reduce(x, out, barriers=True)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
        results.append(out)
    for r in results[1:]:  # a correct kernel does not depend on the order of its threads
        np.testing.assert_array_equal(r, results[0])


def test_broken_reduction_reproduces_with_its_seed():
    x = np.random.default_rng(2).standard_normal(256 * 3).astype(np.float32)
    outs = []
    for _ in range(2):
        emu_module.set_seed(12345)
        out = np.empty(3, np.float32)
        testing.block_reduce(x, out, barriers=False)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_seed_from_environment():
    code = "import pyengine._cuda_emu as m; print(m.get_seed())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYENGINE_EMU_SEED": "77"}, check=True)
    assert out.stdout.strip() == "77"


@pytest.mark.parametrize("warps", [1, 3, 32])
def test_warp_shuffle_reduction(warps):
    x = np.random.default_rng(warps).standard_normal(32 * warps * 4 + 5).astype(np.float32)
    out = np.empty(-(-x.size // (32 * warps)), np.float32)
    testing.warp_reduce(x, out, warps)
    padded = np.zeros(out.size * 32 * warps)
    padded[:x.size] = x
    np.testing.assert_allclose(out, padded.reshape(out.size, -1).sum(axis=1), rtol=1e-5,
                               atol=1e-5)


def test_votes_and_xor_shuffle():
    v = testing.votes().reshape(2, 4)
    for warp in v:  # ballot of odd lanes, any(lane == 5), all(lane < 32), lane 6 ^ 1
        assert list(warp) == [0xAAAAAAAA, 1, 1, 7]


def test_dynamic_shared_memory_starts_poisoned():
    assert (testing.read_uninitialised_shared(8) == 0xFFFFFFFF).all()


def test_atomics_across_blocks():
    assert testing.atomic_count(200) == 200 * 128


@pytest.mark.parametrize("kind,match", [
    (0, r"stuck: 16 of 32 threads wait at __syncthreads but 16 have exited"),
    (1, r"__shfl_down_sync with mask 0x0000ffff: lane 8 of warp 0 reads lane 16"),
    (2, r"lane 31"),
])
def test_barrier_misuse_raises(kind, match):
    with pytest.raises(RuntimeError, match=match):
        testing.misuse(kind)


# ---------------------------------------------------------------------------------------------
# kernel cases shared by the emulator tests and the GPU tests
# ---------------------------------------------------------------------------------------------
def _rng(seed):
    return np.random.default_rng(seed)


def _conv_case(x_shape, w_shape, params, algo):
    rng = _rng(hash((x_shape, w_shape)) % 2**32)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)

    def run(be, to, algo=algo):
        p = params
        y = be.conv2d_forward(to(x), to(w), to(b), p, algo=algo)
        dy = to(_rng(3).standard_normal(y.shape).astype(np.float32))
        return {"y": y, "dx": be.conv2d_backward_data(dy, to(w), x.shape, p, algo=algo),
                "dw": be.conv2d_backward_weight(dy, to(x), w.shape, p, algo=algo),
                "db": be.conv2d_backward_bias(dy)}
    return "conv2d", run


def _softmax_case(shape, dim, log, algo):
    x = (_rng(4).standard_normal(shape) * 4).astype(np.float32)
    x.reshape(-1)[::7] = 30.0
    dy = _rng(5).standard_normal(shape).astype(np.float32)
    name = "log_softmax" if log else "softmax"

    def run(be, to):
        kw = {} if be.name == "numpy" else {"algo": algo}
        y = getattr(be, name + "_forward")(to(x), dim, **kw)
        return {"y": y, "dx": getattr(be, name + "_backward")(y, to(dy), dim, **kw)}
    return name, run


def _linear_case(m, k, n):
    rng = _rng(m * 7 + k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    dy = rng.standard_normal((m, n)).astype(np.float32)

    def run(be, to):
        return {"y": be.linear_forward(to(x), to(w), to(b)),
                "dx": be.linear_backward_data(to(dy), to(w)),
                "dw": be.linear_backward_weight(to(dy), to(x)),
                "db": be.linear_backward_bias(to(dy))}
    return "linear", run


def _pool_case(shape, kw):
    p = Pool2dParams(**kw)
    x = (_rng(6).permutation(int(np.prod(shape))).reshape(shape) / 100).astype(np.float32)

    def run(be, to):
        y, idx = be.max_pool2d_forward(to(x), p)
        dy = to(_rng(7).standard_normal(y.shape).astype(np.float32))
        a = be.avg_pool2d_forward(to(x), p)
        return {"max": y, "idx": idx, "dmax": be.max_pool2d_backward(dy, idx, x.shape, p),
                "avg": a, "davg": be.avg_pool2d_backward(dy, x.shape, p),
                "unpool": be.max_unpool2d_forward(y, idx, x.shape[2:]),
                "adaptive": be.adaptive_avg_pool2d_forward(to(x), (3, 5)),
                "dadaptive": be.adaptive_avg_pool2d_backward(
                    to(_rng(8).standard_normal(x.shape[:2] + (3, 5)).astype(np.float32)),
                    x.shape)}
    return "max_pool2d", run


def _loss_case(m, c, reduction, smoothing):
    rng = _rng(m + c)
    logits = (rng.standard_normal((m, c)) * 3).astype(np.float32)
    target = rng.integers(0, c, m).astype(np.int64)
    target[::5] = -100
    weight = rng.uniform(0.5, 2, c).astype(np.float32)
    p = LossParams(reduction=reduction, label_smoothing=smoothing)
    dloss = np.linspace(-1, 1, m if reduction == "none" else 1).astype(np.float32)
    dloss = dloss if reduction == "none" else dloss.reshape(())

    def run(be, to):
        loss, lse = be.cross_entropy_forward(to(logits), to(target), to(weight), p)
        return {"loss": loss, "lse": lse,
                "dlogits": be.cross_entropy_backward(to(dloss), to(logits), to(target),
                                                     to(weight), lse, p)}
    return "cross_entropy", run


def _batch_norm_case(shape):
    rng = _rng(9)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)

    def run(be, to):
        y, mean, invstd = be.batch_norm_forward_train(to(x), to(w), to(b), 1e-5)
        dx, dw, db = be.batch_norm_backward(to(dy), to(x), to(w), mean, invstd, True)
        return {"y": y, "mean": mean, "invstd": invstd, "dx": dx, "dw": dw, "db": db}
    return "batch_norm", run


CASES = {
    "conv-gemm-splitk": _conv_case((3, 6, 21, 19), (5, 6, 3, 3),
                                   Conv2dParams(pad_top=1, pad_bottom=1, pad_left=1,
                                                pad_right=1), "implicit_gemm_tiled"),
    "conv-gemm-large-tile": _conv_case((2, 8, 9, 7), (70, 4, 2, 3),
                                       Conv2dParams(stride_h=2, dilation_w=2, groups=2,
                                                    pad_top=1), "implicit_gemm_tiled"),
    "conv-depthwise": _conv_case((2, 6, 11, 10), (12, 1, 3, 3),
                                 Conv2dParams(groups=6, stride_w=2, pad_left=1, pad_right=1,
                                              pad_top=1, pad_bottom=1), "direct_depthwise"),
    "conv-depthwise-as-gemm": _conv_case((2, 6, 11, 10), (12, 1, 3, 3),
                                         Conv2dParams(groups=6), "implicit_gemm_tiled"),
    "softmax-warp-strided": _softmax_case((3, 37, 5), 1, False, "warp_per_row"),
    "softmax-block-strided": _softmax_case((3, 37, 5), 1, False, "block_per_row"),
    "log-softmax-warp": _softmax_case((7, 1500), 1, True, "warp_per_row"),
    "log-softmax-block": _softmax_case((7, 1500), 1, True, "block_per_row"),
    "softmax-block-short": _softmax_case((5, 3), 1, False, "block_per_row"),
    "linear-splitk": _linear_case(1000, 17, 9),
    "linear-large": _linear_case(70, 33, 65),
    "pool": _pool_case((2, 3, 11, 9), dict(kernel_h=3, kernel_w=2, stride_h=2, stride_w=1,
                                           pad_h=1, pad_w=1, ceil_mode=True)),
    "cross-entropy-mean-smooth": _loss_case(37, 45, "mean", 0.1),
    "cross-entropy-none": _loss_case(9, 1100, "none", 0.0),
    "batch-norm": _batch_norm_case((5, 3, 37)),
}


def _compare(op, got, ref, scales=None):
    atol, rtol = tolerance(op, np.float32)
    for key, r in ref.items():
        g = got[key]
        if key == "idx":
            np.testing.assert_array_equal(g, r, err_msg=key)
        else:
            assert_close(g, r, atol, rtol, name=f"{op} {key}",
                         scale=None if scales is None else scales[key])


def _reference(op, run):
    ref = run(backends.get("numpy"), lambda a: a)
    scales = None
    if op == "conv2d":  # rtol scaled by |x|.|w|, as tests/test_conv2d.py does
        scales = run(backends.get("numpy"), lambda a: np.abs(a.astype(np.float64))
                     if a.dtype.kind == "f" else a)
    return ref, scales


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_versions_match_reference(emu, case):
    op, run = CASES[case]
    ref, scales = _reference(op, run)
    _compare(op, run(emu, lambda a: a), ref, scales)


@pytest.mark.parametrize("case", ["conv-gemm-splitk", "conv-depthwise", "softmax-block-strided",
                                  "log-softmax-warp", "linear-splitk",
                                  "cross-entropy-mean-smooth", "batch-norm", "pool"])
def test_results_do_not_depend_on_thread_order(emu, case):
    _, run = CASES[case]
    results = []
    for seed in (0, 1, 99):
        emu_module.set_seed(seed)
        results.append(run(emu, lambda a: a))
    for other in results[1:]:
        for key, value in results[0].items():
            np.testing.assert_array_equal(other[key], value, err_msg=f"{case} {key}")


def test_algorithms_are_listed_and_selectable(emu):
    assert emu.algorithms("conv2d") == ("implicit_gemm_tiled", "direct_depthwise",
                                        "implicit_gemm_tf32")
    assert emu.algorithms("softmax") == ("warp_per_row", "block_per_row")
    assert emu.algorithms("log_softmax") == ("warp_per_row", "block_per_row")
    assert emu.algorithms("linear") == ("direct",)
    assert ("cuda_emu", "direct_depthwise") in backends.implementations("conv2d")
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown algorithm 'fastest'.*'warp_per_row'"):
        emu.softmax_forward(x, 1, algo="fastest")
    with pytest.raises(ValueError, match="unknown algorithm 'winograd'"):
        emu.conv2d_forward(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32),
                           None, Conv2dParams(), algo="winograd")


def test_supports_float32_only_and_falls_through_for_pad(emu):
    assert emu.supports("conv2d", np.float32) and not emu.supports("conv2d", np.float64)
    assert not emu.supports("pad", np.float32)
    with pe.use_backend("cuda_emu"):
        y = pe.functional.pad(pe.tensor(np.ones((1, 2, 2), np.float32)), (1, 1))
    assert y.shape == (1, 2, 4)


def test_bindings_check_their_arguments(emu):
    native = emu._native
    x = np.ones((2, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(TypeError, match="x must be a float32 array"):
        native.conv2d_forward(x.astype(np.float64), w, None, np.empty((2, 4, 3, 3), np.float32),
                              Conv2dParams())
    with pytest.raises(ValueError, match=r"y has shape \(2, 4, 5, 5\), expected \(2, 4, 3, 3\)"):
        native.conv2d_forward(x, w, None, np.empty((2, 4, 5, 5), np.float32), Conv2dParams())
    with pytest.raises(ValueError, match="C-contiguous"):
        native.softmax_forward(x[..., ::2], np.empty((2, 3, 5, 3), np.float32), 1)
    with pytest.raises(ValueError, match="must not overlap"):
        native.softmax_forward(x, x, 1)


def test_bias_activation_forward(emu):
    x = _rng(10).standard_normal((2, 3, 7)).astype(np.float32)
    b = _rng(11).standard_normal(3).astype(np.float32)
    for kind in ("relu", "leaky_relu", "sigmoid", "tanh"):
        y = np.empty_like(x)
        emu._native.bias_activation_forward(x, b, y, kind, 0.2)
        p = ActivationParams(kind, 0.2)
        ref = backends.get("numpy").activation_forward(x + b[None, :, None], p)
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def _sgd_reference(p, g, buf, lr, momentum, dampening, wd, nesterov, maximize, first):
    g = -g if maximize else g
    if wd:
        g = g + wd * p
    if momentum:
        buf = g.copy() if first else buf * momentum + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


@pytest.mark.parametrize("momentum,dampening,wd,nesterov,maximize", [
    (0.0, 0.0, 0.0, False, False), (0.9, 0.1, 1e-2, False, True), (0.9, 0.0, 1e-3, True, False)])
def test_sgd_kernel(emu, momentum, dampening, wd, nesterov, maximize):
    rng = _rng(12)
    p = rng.standard_normal(1000).astype(np.float32)
    buf = np.zeros_like(p)
    ref_p, ref_buf = p.astype(np.float64), buf.astype(np.float64)
    for step in range(3):
        g = rng.standard_normal(1000).astype(np.float32)
        emu._native.sgd_update(p, g, buf if momentum else None, lr=0.1, momentum=momentum,
                               dampening=dampening, weight_decay=wd, nesterov=nesterov,
                               maximize=maximize, first_step=step == 0)
        ref_p, ref_buf = _sgd_reference(ref_p, g.astype(np.float64), ref_buf, 0.1, momentum,
                                        dampening, wd, nesterov, maximize, step == 0)
    np.testing.assert_allclose(p, ref_p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("amsgrad,decoupled,maximize", [(False, False, False),
                                                        (True, True, False),
                                                        (False, True, True)])
def test_adam_kernel_matches_pyengine_optim(emu, amsgrad, decoupled, maximize):
    rng = _rng(13)
    start = rng.standard_normal(500).astype(np.float32)
    grads = [rng.standard_normal(500).astype(np.float32) for _ in range(3)]
    param = pe.nn.Parameter(pe.tensor(start.copy()))
    opt = pe.optim.Adam([param], lr=0.01, weight_decay=0.1, amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled)
    p = start.copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, 1):
        param.grad = pe.tensor(g)
        opt.step()
        emu._native.adam_update(p, g, m, v, vmax if amsgrad else None, step=step, lr=0.01,
                                weight_decay=0.1, amsgrad=amsgrad, maximize=maximize,
                                decoupled_weight_decay=decoupled)
    np.testing.assert_allclose(p, param.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# the real module, built by nvcc
# ---------------------------------------------------------------------------------------------
def test_runs_on_reads_cmake_architectures():
    from pyengine.backends.cuda import runs_on
    assert runs_on("90", 9, 0) and runs_on("90", 10, 0) and runs_on("90", 12, 0)
    assert not runs_on("90", 8, 9)
    assert runs_on("80-real", 8, 6) and not runs_on("80-real", 9, 0)
    assert runs_on("75-real,90-virtual", 10, 0) and not runs_on("90a", 10, 0)
    assert runs_on("75;80;86;89;90;100;120", 8, 9)


def test_real_module_imports_without_gpu_and_says_why():
    try:
        native = importlib.import_module("pyengine._cuda")
    except ImportError:
        assert "not built" in backends.unavailable().get("cuda", "not built")
        pytest.skip("pyengine._cuda was not built (no nvcc)")
    info = native.build_info()
    assert info["emulated"] is False and info["archs"]
    assert set(native.CONV2D_ALGORITHMS) == set(emu_module.CONV2D_ALGORITHMS)
    report = native.probe()
    if report["device_count"] > 0 and "cuda" in backends.available():
        pytest.skip("a GPU is present: covered by the gpu tests")
    reason = backends.unavailable()["cuda"]
    assert report["error_name"] or report["device_count"] == 0 or "cupy" in reason
    assert any(word in reason for word in ("cupy", "driver", "GPU", "kernel image"))
    # A kernel call says what is wrong instead of crashing: host arrays are refused.
    with pytest.raises(TypeError, match="device array"):
        native.softmax_forward(np.ones(3, np.float32), np.ones(3, np.float32), 0)


def test_real_module_import_makes_no_cuda_call():
    # In a fresh process, load the extension file alone (not the pyengine package, whose
    # registry probes the device when cupy is installed) and check through /proc that the
    # import did not load the driver library.
    code = ("import glob, importlib.util, os, sys\n"
            "pkg = importlib.util.find_spec('pyengine').submodule_search_locations[0]\n"
            "found = glob.glob(os.path.join(pkg, '_cuda.*.so'))\n"
            "if not found:\n    print('absent'); sys.exit()\n"
            "spec = importlib.util.spec_from_file_location('pyengine._cuda', found[0])\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "print('libcuda' in open('/proc/self/maps').read())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    if out == "absent":
        pytest.skip("pyengine._cuda was not built")
    assert out == "False"


# ---------------------------------------------------------------------------------------------
# a real GPU (pytest -m gpu)
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def gpu():
    if "cuda" not in backends.available():
        pytest.skip(f"cuda unavailable: {backends.unavailable().get('cuda')}")
    import cupy
    return backends.get("cuda"), cupy


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpu_kernel_versions_match_reference(gpu, case):
    be, cupy = gpu
    op, run = CASES[case]
    ref, scales = _reference(op, run)
    got = run(be, cupy.asarray)
    cupy.cuda.get_current_stream().synchronize()
    _compare(op, {k: cupy.asnumpy(v) for k, v in got.items()}, ref, scales)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpu_matches_emulator_closely(gpu, emu, case):
    be, cupy = gpu
    op, run = CASES[case]
    got = {k: cupy.asnumpy(v) for k, v in run(be, cupy.asarray).items()}
    want = run(emu, lambda a: a)
    _, scales = _reference(op, run)
    _compare(op, got, want, scales)


@pytest.mark.gpu
def test_gpu_runs_the_functional_ops(gpu):
    be, cupy = gpu
    x = pe.Tensor(np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32))
    w = pe.Tensor(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32))
    y_ref = pe.functional.conv2d(x, w, padding=1).numpy()
    y = pe.functional.conv2d(x.to("cuda"), w.to("cuda"), padding=1)
    assert y.device == "cuda"
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-4, atol=1e-4)
