"""The GPU side of the harness (``pyengine bench --device cuda``): device inputs, CUDA-event
timing, the GPU ceilings, PyTorch's TF32 switch, and the shape set scaled up so every case runs
for at least ~100 us on an H100-class GPU.

Timing: a warm-up call, then each repeat between two CUDA events recorded on the stream the
implementation runs on (cupy's current stream for pyengine's kernels, PyTorch's current stream
for PyTorch), median of the repeats. Ceilings: device-to-device copy bandwidth of a 1 GiB array
(bytes read + written) and torch.mm at 8192^3 with TF32 off (fp32) and on (tf32).
"""
from __future__ import annotations

import dataclasses

# Batch multipliers of the CPU shape set on the GPU (the CPU set's pooling and softmax cases run
# in ~10 us on an H100; these bring every case past 100 us).
BATCH_SCALE = {"conv2d": 4, "pool2d": 16, "softmax": 16}


def scaled(family, shape):
    """``shape`` with its batch multiplied by BATCH_SCALE[family] (same name)."""
    k = BATCH_SCALE[family]
    if family == "softmax":
        return dataclasses.replace(shape, shape=(shape.shape[0] * k,) + tuple(shape.shape[1:]))
    return dataclasses.replace(shape, n=shape.n * k)


def set_torch_tf32(enabled):
    """PyTorch's TF32 switches for cuDNN convolutions and cuBLAS matmuls."""
    import torch
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def to_device(arrays, for_torch):
    """The input dict on the GPU: torch tensors for PyTorch, cupy arrays for pyengine."""
    if for_torch:
        import torch
        return {k: torch.from_numpy(v).cuda() for k, v in arrays.items()}
    import cupy
    return {k: cupy.asarray(v) for k, v in arrays.items()}


def event_clock(for_torch):
    """A clock for :func:`pyengine.bench.harness.time_call`: one call's milliseconds between
    two CUDA events on the stream it runs on (PyTorch's current stream, or cupy's)."""
    if for_torch:
        import torch
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        elapsed = start.elapsed_time
    else:
        import cupy
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        elapsed = lambda e: cupy.cuda.get_elapsed_time(start, e)  # noqa: E731

    def clock(fn):
        start.record()
        fn()
        end.record()
        end.synchronize()
        return elapsed(end)
    return clock


def time_call(fn, for_torch, min_time=0.25):
    """Median milliseconds of ``fn()`` by CUDA events (warm-up 2, 10 to 200 repeats)."""
    from .harness import time_call as timed
    return timed(fn, min_time=min_time, min_repeats=10, max_repeats=200, warmup=2,
                 clock=event_clock(for_torch))


def measure_ceilings():
    """{'gflops': fp32 GEMM GFLOP/s, 'gflops_tf32', 'gbps': copy bandwidth, sources}."""
    import torch
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    out = {}
    for key, tf32 in (("gflops", False), ("gflops_tf32", True)):
        set_torch_tf32(tf32)
        ms, _ = time_call(lambda: torch.mm(a, b), for_torch=True, min_time=0.5)
        out[key] = 2 * n ** 3 / (ms * 1e6)
    set_torch_tf32(False)
    src = torch.empty(2 ** 28, device="cuda")   # 1 GiB
    dst = torch.empty_like(src)
    ms, _ = time_call(lambda: dst.copy_(src), for_torch=True, min_time=0.5)
    out.update(gbps=2 * src.numel() * 4 / (ms * 1e6), gflops_source="torch.mm 8192^3",
               device=torch.cuda.get_device_name())
    return out
