"""Shared machinery of the pytest-benchmark modules (``pytest benchmarks/ --benchmark-only``).

Each module is parametrised over implementation (every (backend, algorithm) pair of the host
backends that the kernel interface lists, their auto choice, PyTorch NCHW and channels_last) x
the shape set of ``pyengine.bench.shapes`` x direction, with the inputs, calls and work counts
of ``pyengine.bench.harness``, so a new backend or algorithm appears here without new
benchmark code. Every implementation's result is checked against the numpy reference before it
is timed. Threads: PYENGINE_BENCH_THREADS (default 2) for pyengine and PyTorch alike. All
implementations share one process here; ``pyengine bench`` isolates each in its own process and
is the one to quote.
"""
from __future__ import annotations

import functools
import os

import pytest

import pyengine as pe
from pyengine.bench import harness
from pyengine.bench.shapes import SHAPE_SETS

THREADS = int(os.environ.get("PYENGINE_BENCH_THREADS", "2"))


def pytest_configure(config):
    import torch
    torch.set_num_threads(THREADS)
    pe.set_num_threads(THREADS)


def cases(family):
    """pytest params (impl, shape, direction) of a family, with readable ids."""
    out = []
    # The host implementations (the emulated CUDA kernels are for correctness, not speed), and
    # every CUDA kernel version when a GPU is present.
    impls = harness.select_implementations(family, device="cpu")
    if "cuda" in pe.backends.available():
        impls += [i for i in harness.select_implementations(family, device="cuda")
                  if i.startswith("pe:")]
    for impl in impls:
        for shape in SHAPE_SETS[family]:
            for d in harness.directions(family, shape):
                out.append(pytest.param(impl, shape, d, id=f"{impl}-{shape.name}-{d}"))
    return out


@functools.lru_cache(maxsize=None)
def _inputs(family, shape):
    return harness.make_inputs(family, shape)


@functools.lru_cache(maxsize=None)
def _reference(family, shape):
    return harness.reference_outputs(family, shape)


def bench_case(benchmark, family, impl, shape, direction):
    """Validate ``impl`` on one case against the numpy reference, then time it."""
    a = _inputs(family, shape)
    if impl.startswith("pe:cuda:"):
        import cupy
        from pyengine.bench import gpu
        call = harness.implementation_calls(impl, family, shape,
                                            gpu.to_device(a, for_torch=False))[direction]

        def fn():  # the kernels are asynchronous: time them to completion
            out = call()
            cupy.cuda.get_current_stream().synchronize()
            return out
    else:
        fn = harness.implementation_calls(impl, family, shape, a)[direction]
    out = fn()
    harness.check_outputs(out, _reference(family, shape)[direction])
    flops, nbytes = harness.work(family, shape, direction, out)
    benchmark.extra_info.update(flops=flops, bytes=nbytes, threads=THREADS)
    # The numpy reference is slow on the big shapes: fewer rounds keep the suite short.
    rounds = 3 if impl.startswith("pe:numpy") else 10
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1)


def family_benchmark(family):
    """The parametrised pytest-benchmark test of one op family (each bench_<family>.py module
    binds it to a test_ name)."""
    @pytest.mark.parametrize("impl,shape,direction", cases(family))
    def test(benchmark, impl, shape, direction):
        bench_case(benchmark, family, impl, shape, direction)
    test.__name__ = f"test_{family}"
    return test
