"""The timing harness: every implementation of an op family on the same shapes, validated first.

How it measures (design.md, "Performance"):
- Each implementation runs in its own worker process (OpenMP runtimes keep spinning after
  parallel work and slow whatever runs next), with the same thread count for all.
- Before timing, each pyengine implementation's result is checked against numpy_ref on the same
  inputs (the reference runs once per case, its result cached for the run); PyTorch's result is
  checked too, so every row times the same computation.
- Times are medians of repeats (at least ``min_repeats`` and ``min_time`` seconds of work);
  PyTorch runs its whole sequence twice and keeps its better median (its speed on some shapes
  depends on what ran before in its process).
- Ceilings measured in the same run: compute = the best of numpy's sgemm and torch.mm at 2048^3,
  bandwidth = a large array copy (bytes read + written).
- First calls apart from run time: every row records its first call's wall time (``first_ms``),
  and numba rows the JIT compile time inside it (``jit_ms``, from numba's compile events; 0 when
  the kernels load from numba's on-disk cache). ``--cold-jit`` gives the workers an empty numba
  cache, so ``jit_ms`` is the full compile cost a user pays once.

Implementations are named ``pe:<backend>:<algo>`` (every (backend, algo) pair that
``pe.backends.implementations`` lists), ``torch`` (NCHW) and ``torch_cl`` (channels_last).
Users run it through ``pyengine bench`` (pyengine/cli/bench.py); this module's command line is
the worker that the runner starts, one process per implementation:

    python -m pyengine.bench.harness --worker --impl pe:cpu:auto --family conv2d --shapes vgg ...
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..device import DEVICES
from .shapes import SHAPE_SETS


def shapes_for(family, device="cpu"):
    """The shape set of ``family`` on ``device`` (the GPU's batches scaled up, bench/gpu.py)."""
    if device == "cuda":
        from . import gpu
        return [gpu.scaled(family, s) for s in SHAPE_SETS[family]]
    return list(SHAPE_SETS[family])


FAMILY_OPS = {  # benchmark family -> kernel-interface ops whose implementations are timed
    "conv2d": ("conv2d",),
    "pool2d": ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"),
    "softmax": ("softmax", "log_softmax", "cross_entropy"),
}


# -- timing ------------------------------------------------------------------------------------
class JitCompileTimer:
    """Seconds numba spent compiling inside a ``with`` block (its "numba:compile" events,
    nested compiles counted once); 0.0 when numba is absent or nothing compiled."""

    def __enter__(self):
        self.seconds, self._rec = 0.0, None
        try:
            from numba.core import event
        except ImportError:
            return self
        self._rec = event.install_recorder("numba:compile")
        self._recorder = self._rec.__enter__()
        return self

    def __exit__(self, *exc):
        if self._rec is None:
            return False
        self._rec.__exit__(*exc)
        depth, start = 0, 0.0
        for ts, ev in self._recorder.buffer:
            if ev.is_start:
                start = ts if depth == 0 else start
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    self.seconds += ts - start
        return False


def wall_clock(fn):
    """Milliseconds of one ``fn()`` by the host's clock."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def time_call(fn, min_time=0.25, min_repeats=5, max_repeats=50, warmup=1, clock=wall_clock):
    """Median milliseconds of ``fn()`` by ``clock`` (one call's ms; the GPU's is CUDA events,
    bench/gpu.py) over at least ``min_repeats`` repeats and ``min_time`` seconds, and the
    number of timed repeats."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or
                                        time.perf_counter() - start < min_time):
        times.append(clock(fn))
    return statistics.median(times), len(times)


# -- inputs and work counts ---------------------------------------------------------------------
def make_inputs(family, shape, seed=0):
    """Deterministic float32 inputs for one case (same arrays in every worker)."""
    rng = np.random.default_rng(seed)
    if family == "conv2d":
        x = rng.standard_normal(shape.x_shape, dtype=np.float32)
        w = rng.standard_normal(shape.w_shape, dtype=np.float32) * np.float32(
            1.0 / np.sqrt(shape.c // shape.groups * shape.r * shape.s))
        p, q = shape.out_hw()
        dy = rng.standard_normal((shape.n, shape.k, p, q), dtype=np.float32)
        return {"x": x, "w": w, "dy": dy}
    if family == "pool2d":
        x = rng.standard_normal(shape.x_shape, dtype=np.float32)
        return {"x": x}
    x = rng.standard_normal(shape.shape, dtype=np.float32) * np.float32(3.0)
    out = {"x": x, "dy": rng.standard_normal(shape.shape, dtype=np.float32)}
    if shape.op == "cross_entropy":
        out["target"] = rng.integers(0, shape.shape[1], size=shape.shape[0]).astype(np.int64)
    return out


def work(family, shape, direction, outputs):
    """(flops, bytes) of one case: the direct algorithm's FLOPs (0 for memory-bound families)
    and the compulsory traffic (every input read once, every output written once)."""
    out_bytes = sum(int(o.nbytes) for o in outputs)  # numpy, cupy or torch alike
    if family == "conv2d":
        x_bytes = int(np.prod(shape.x_shape)) * 4
        w_bytes = int(np.prod(shape.w_shape)) * 4
        y_bytes = shape.n * shape.k * int(np.prod(shape.out_hw())) * 4
        if direction == "forward":
            return shape.flops(), x_bytes + w_bytes + out_bytes
        return 2 * shape.flops(), y_bytes + w_bytes + x_bytes + out_bytes  # dy, w, x -> dx, dw
    in_bytes = int(np.prod(shape.x_shape if family == "pool2d" else shape.shape)) * 4
    if direction == "forward":
        return 0, in_bytes + out_bytes
    return 0, 2 * in_bytes + out_bytes  # reads dy and saved data, writes dx


# -- the calls being timed ----------------------------------------------------------------------
def pyengine_calls(backend_name, algo, family, shape, a):
    """{direction: zero-argument callable returning the output arrays} for a pyengine impl."""
    import pyengine as pe
    from pyengine.backends.base import array_module
    from pyengine.params import LossParams

    b = pe.backends.get(backend_name)
    if family == "conv2d":
        p = shape.params()
        return {
            "forward": lambda: (b.conv2d_forward(a["x"], a["w"], None, p, algo),),
            "backward": lambda: (b.conv2d_backward_data(a["dy"], a["w"], a["x"].shape, p, algo),
                                 b.conv2d_backward_weight(a["dy"], a["x"], a["w"].shape, p, algo)),
        }
    if family == "pool2d":
        x = a["x"]
        if shape.kind == "global":
            y = b.adaptive_avg_pool2d_forward(x, (1, 1))
            return {"forward": lambda: (b.adaptive_avg_pool2d_forward(x, (1, 1)),),
                    "backward": lambda: (b.adaptive_avg_pool2d_backward(y, x.shape),)}
        p = shape.params()
        if shape.kind == "max":
            y, idx = b.max_pool2d_forward(x, p)
            return {"forward": lambda: b.max_pool2d_forward(x, p),
                    "backward": lambda: (b.max_pool2d_backward(y, idx, x.shape, p),)}
        y = b.avg_pool2d_forward(x, p)
        return {"forward": lambda: (b.avg_pool2d_forward(x, p),),
                "backward": lambda: (b.avg_pool2d_backward(y, x.shape, p),)}
    x, dy = a["x"], a["dy"]
    if shape.op == "cross_entropy":
        lp = LossParams()

        def fwd_bwd():
            loss, lse = b.cross_entropy_forward(x, a["target"], None, lp)
            one = array_module(x).ones((), np.float32)
            return (b.cross_entropy_backward(one, x, a["target"], None, lse, lp),)

        return {"forward": lambda: b.cross_entropy_forward(x, a["target"], None, lp)[:1],
                "forward+backward": fwd_bwd}
    fwd = getattr(b, shape.op + "_forward")
    bwd = getattr(b, shape.op + "_backward")
    y = fwd(x, shape.dim)
    return {"forward": lambda: (fwd(x, shape.dim),),
            "backward": lambda: (bwd(y, dy, shape.dim),)}


def implementation_calls(impl, family, shape, a):
    """{direction: callable} of the implementation named ``impl`` ('pe:<backend>:<algo>',
    'torch', 'torch_cl', 'torch_tf32') on the inputs ``a``."""
    if impl.startswith("pe:"):
        _, backend, algo = impl.split(":")
        return pyengine_calls(backend, algo, family, shape, a)
    return torch_calls(impl == "torch_cl", family, shape, a)


def directions(family, shape):
    """The directions a case is timed in (the keys of its calls)."""
    if family == "softmax" and shape.op == "cross_entropy":
        return ("forward", "forward+backward")
    return ("forward", "backward")


def reference_outputs(family, shape, device="cpu"):
    """{direction: the reference's output arrays} of one case: the numpy reference; for the
    GPU's larger shapes the cpu backend (itself tested against the numpy reference) when it is
    built, so that the references take seconds, not minutes."""
    import pyengine as pe
    backend = "cpu" if device == "cuda" and "cpu" in pe.backends.available() else "numpy"
    calls = pyengine_calls(backend, "auto" if backend == "cpu" else "direct", family, shape,
                           make_inputs(family, shape))
    return {d: [np.asarray(o) for o in fn()] for d, fn in calls.items()}


def torch_calls(channels_last, family, shape, a):
    """{direction: callable} for PyTorch (NCHW, or channels_last where it applies)."""
    import torch
    import torch.nn.functional as TF

    def t(arr):
        v = arr if torch.is_tensor(arr) else torch.from_numpy(arr)
        if channels_last and v.dim() == 4 and v.is_floating_point():
            v = v.contiguous(memory_format=torch.channels_last)
        return v

    if family == "conv2d":
        x, w, dy = t(a["x"]), t(a["w"]), t(a["dy"])
        st, pd, dl = [shape.stride] * 2, [shape.pad] * 2, [shape.dilation] * 2
        return {
            "forward": lambda: (TF.conv2d(x, w, None, st, pd, dl, shape.groups),),
            "backward": lambda: torch.ops.aten.convolution_backward(
                dy, x, w, None, st, pd, dl, False, [0, 0], shape.groups, [True, True, False])[:2],
        }
    if family == "pool2d":
        x = t(a["x"])
        if shape.kind == "global":
            y = TF.adaptive_avg_pool2d(x, 1)
            return {"forward": lambda: (TF.adaptive_avg_pool2d(x, 1),),
                    "backward": lambda: (torch.ops.aten._adaptive_avg_pool2d_backward(y, x),)}
        k, s, p = [shape.kernel] * 2, [shape.stride] * 2, [shape.pad] * 2
        if shape.kind == "max":
            y, idx = TF.max_pool2d(x, k, s, p, return_indices=True)
            return {"forward": lambda: TF.max_pool2d(x, k, s, p, return_indices=True),
                    "backward": lambda: (torch.ops.aten.max_pool2d_with_indices_backward(
                        y, x, k, s, p, [1, 1], False, idx),)}
        y = TF.avg_pool2d(x, k, s, p)
        return {"forward": lambda: (TF.avg_pool2d(x, k, s, p),),
                "backward": lambda: (torch.ops.aten.avg_pool2d_backward(
                    y, x, k, s, p, False, True, None),)}
    x, dy = t(a["x"]), t(a["dy"])
    if shape.op == "cross_entropy":
        target = t(a["target"])

        def fwd_bwd():
            xl = x.detach().requires_grad_(True)
            return (torch.autograd.grad(TF.cross_entropy(xl, target), xl)[0],)

        return {"forward": lambda: (TF.cross_entropy(x, target),), "forward+backward": fwd_bwd}
    if shape.op == "softmax":
        y = torch.softmax(x, shape.dim)
        return {"forward": lambda: (torch.softmax(x, shape.dim),),
                "backward": lambda: (torch.ops.aten._softmax_backward_data(dy, y, shape.dim, x.dtype),)}
    y = torch.log_softmax(x, shape.dim)
    return {"forward": lambda: (torch.log_softmax(x, shape.dim),),
            "backward": lambda: (torch.ops.aten._log_softmax_backward_data(dy, y, shape.dim, x.dtype),)}


# -- validation ---------------------------------------------------------------------------------
def as_numpy(o):
    """A result as a numpy array, from cupy (``.get()``), torch (any device) or numpy."""
    if hasattr(o, "detach"):
        return o.detach().contiguous().cpu().numpy()
    if type(o).__module__.startswith("cupy"):
        return o.get()
    return np.asarray(o)


def check_outputs(outputs, reference, scale_atol=1e-3):
    """Max error relative to the reference's magnitude; raises AssertionError when too large."""
    for o, r in zip(outputs, reference):
        o, r = as_numpy(o), np.asarray(r)
        if o.shape != r.shape:
            raise AssertionError(f"shape {o.shape} != reference {r.shape}")
        if o.dtype.kind in "iu":
            if not np.array_equal(o, r):
                raise AssertionError("indices differ from the reference")
            continue
        tol = scale_atol * max(float(np.abs(r).max(initial=0.0)), 1e-6)
        err = float(np.abs(o.astype(np.float64) - r).max(initial=0.0))
        if not err <= tol:
            raise AssertionError(f"max error {err:.3g} exceeds {tol:.3g}")


# -- the worker: one implementation, one family, in its own process ------------------------------
def run_worker(impl, family, shape_names, threads, ref_dir, min_time, device="cpu"):
    """Validate and time ``impl`` on the named shapes of ``device``; returns a list of result
    dicts. On 'cuda' the inputs live on the GPU and CUDA events time each call."""
    shapes = [s for s in shapes_for(family, device) if s.name in shape_names]
    for_torch = impl.startswith("torch")
    passes = 2 if for_torch else 1
    results = {}
    timer = time_call
    if for_torch:
        import torch
        torch.set_num_threads(threads)
    if device == "cuda":
        from . import gpu
        timer = functools.partial(gpu.time_call, for_torch=for_torch)
        if for_torch:
            gpu.set_torch_tf32(impl == "torch_tf32")
    for p in range(passes):
        for shape in shapes:
            a = make_inputs(family, shape)
            if device == "cuda":
                a = gpu.to_device(a, for_torch)
            # Building the calls may run the forward once (the backward's input): its time
            # and compiles count toward the case's first call.
            t0 = time.perf_counter()
            with JitCompileTimer() as setup_jit:
                calls = implementation_calls(impl, family, shape, a)
            setup_s = time.perf_counter() - t0
            for direction, fn in calls.items():
                key = (shape.name, direction)
                rec = results.setdefault(key, {"family": family, "case": shape.name,
                                               "direction": direction, "impl": impl,
                                               "device": device, "threads": threads,
                                               "ms": float("inf")})
                try:
                    t0 = time.perf_counter()
                    with JitCompileTimer() as jit:
                        out = fn()
                    if p == 0:
                        rec["first_ms"] = (time.perf_counter() - t0 + setup_s) * 1e3
                        rec["jit_ms"] = (jit.seconds + setup_jit.seconds) * 1e3
                        setup_s = 0.0
                        setup_jit.seconds = 0.0
                    ref_file = os.path.join(ref_dir, f"{family}-{shape.name}-{direction}.npz")
                    with np.load(ref_file) as z:
                        ref = [z[f"arr_{i}"] for i in range(len(z.files))]
                    check_outputs(out, ref)
                    rec["validated"] = True
                    ms, reps = timer(fn, min_time=min_time)
                    if ms < rec["ms"]:
                        rec.update(ms=ms, repeats=reps)
                    flops, nbytes = work(family, shape, direction, out)
                    rec.update(flops=flops, bytes=nbytes)
                    rec["gflops"] = flops / (rec["ms"] * 1e6) if flops else None
                    rec["gbps"] = nbytes / (rec["ms"] * 1e6)
                except Exception as exc:  # report, never hide: the row shows the error
                    rec.update(validated=False, error=f"{type(exc).__name__}: {exc}")
    return list(results.values())


def write_references(family, shape_names, ref_dir, device="cpu"):
    """:func:`reference_outputs` of every named case, once, into ``ref_dir`` (one .npz each)."""
    for shape in [s for s in shapes_for(family, device) if s.name in shape_names]:
        for direction, ref in reference_outputs(family, shape, device).items():
            np.savez(os.path.join(ref_dir, f"{family}-{shape.name}-{direction}.npz"), *ref)
    return []


def measure_ceilings(threads, device="cpu"):
    """{'gflops': best sgemm GFLOP/s at 2048^3 (numpy or torch.mm), 'gbps': copy bandwidth};
    on 'cuda' the GPU's (bench/gpu.py), with 'gflops_tf32' too."""
    if device == "cuda":
        from . import gpu
        return gpu.measure_ceilings()
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    ms_np, _ = time_call(lambda: np.matmul(a, b, out=out), min_time=0.5)
    best = 2 * n ** 3 / (ms_np * 1e6)
    src = "numpy"
    try:
        import torch
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ms_t, _ = time_call(lambda: torch.mm(ta, tb), min_time=0.5)
        if 2 * n ** 3 / (ms_t * 1e6) > best:
            best, src = 2 * n ** 3 / (ms_t * 1e6), "torch.mm"
    except ImportError:
        pass
    big = rng.standard_normal(64 * 2 ** 20 // 4, dtype=np.float32)  # 64 MiB, past every cache
    dst = np.empty_like(big)
    ms_c, _ = time_call(lambda: np.copyto(dst, big), min_time=0.5)
    return {"gflops": best, "gflops_source": src, "gbps": 2 * big.nbytes / (ms_c * 1e6)}


def _worker_env(threads, numba_cache_dir=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "PYENGINE_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if numba_cache_dir:
        env["NUMBA_CACHE_DIR"] = numba_cache_dir
    return env


def _spawn(args, threads, numba_cache_dir=None):
    cmd = [sys.executable, "-m", "pyengine.bench.harness", "--worker"] + args
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=_worker_env(threads, numba_cache_dir))
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def list_implementations(family, with_torch=True, device="cpu"):
    """Every implementation name for a family: pe:<backend>:<algo> pairs (and pe:<backend>:auto
    where a backend has several algorithms), then PyTorch's
    (NCHW 'torch' and 'torch_cl' on the host; on 'cuda' 'torch' with TF32 off, and for conv2d
    'torch_tf32' with it on)."""
    import pyengine as pe
    names = []
    for op in FAMILY_OPS[family]:
        for backend, algo in pe.backends.implementations(op):
            name = f"pe:{backend}:{algo}"
            if name not in names:
                names.append(name)
            # What users get: the backend's own choice, where it has several algorithms.
            if len(pe.backends.get(backend).algorithms(op)) > 1 and \
                    f"pe:{backend}:auto" not in names:
                names.append(f"pe:{backend}:auto")
    if with_torch and device == "cuda":
        names += ["torch", "torch_tf32"] if family == "conv2d" else ["torch"]
    elif with_torch:
        names += ["torch", "torch_cl"] if family in ("conv2d", "pool2d") else ["torch"]
    return names


def select_implementations(family, impls=None, backends=None, device="cpu"):
    """The implementation names of ``family`` to time.

    ``impls``: names or prefixes to keep ('pe:cpu' keeps every cpu algorithm); ``backends``:
    backend names to keep ('torch', 'torch_cl', 'torch_tf32' name PyTorch's); ``device``:
    'cpu' (the host backends: cpu, numba, numpy), 'cuda_emu' (the emulated CUDA kernels, with
    PyTorch's CPU kernels as the baseline) or 'cuda' (the GPU kernels against PyTorch/cuDNN).
    """
    import pyengine as pe
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and "cuda" not in pe.backends.available():
        raise RuntimeError(f"the cuda device is unavailable: {pe.backends.unavailable()['cuda']}")
    on_device = set(pe.backends.AUTO_ORDER[device])
    keep = []
    for name in list_implementations(family, device=device):
        backend = name.split(":")[1] if name.startswith("pe:") else name
        if name.startswith("pe:") and backend not in on_device:
            continue
        if impls is not None and not any(name == i or name.startswith(i + ":") for i in impls):
            continue
        if backends is not None and backend not in backends:
            continue
        keep.append(name)
    return keep


def run(families=("conv2d", "pool2d", "softmax"), impls=None, shapes=None, threads=2,
        min_time=0.25, progress=None, cold_jit=False, backends=None, device="cpu"):
    """Run the harness; returns {'ceilings': ..., 'results': [...]} (each row one case x impl).

    ``impls`` / ``backends`` / ``device``: which implementations (:func:`select_implementations`);
    ``shapes``: case names to keep (default all). ``progress``: optional callable(done, total,
    label), told before each worker process starts and once at the end. ``cold_jit``: each
    worker starts from an empty numba cache (its first calls compile).
    """
    families = tuple(families)
    unknown = [f for f in families if f not in SHAPE_SETS]
    if unknown:
        raise ValueError(f"unknown op families {unknown}; expected some of {sorted(SHAPE_SETS)}")
    jobs = []
    for family in families:
        names = [s.name for s in shapes_for(family, device) if shapes is None or s.name in shapes]
        if names:
            jobs.append((family, names, select_implementations(family, impls, backends, device)))
    total = 1 + sum(1 + len(chosen) for _, _, chosen in jobs)
    done = 0

    def step(label):
        nonlocal done
        if progress:
            progress(done, total, label)
        done += 1

    report = {"threads": threads, "device": device, "ceilings": None, "results": [],
              "cold_jit": cold_jit}
    step("ceilings")
    report["ceilings"] = _spawn(["--ceilings", "--threads", str(threads), "--device", device],
                                threads)
    with tempfile.TemporaryDirectory(prefix="pyengine-bench-") as ref_dir:
        for family, names, chosen in jobs:
            step(f"{family} reference")
            _spawn(["--reference", "--family", family, "--shapes", ",".join(names),
                    "--ref-dir", ref_dir, "--threads", str(threads), "--device", device], threads)
            for impl in chosen:
                step(f"{family} {impl}")
                with tempfile.TemporaryDirectory(prefix="pyengine-numba-") as jit_dir:
                    report["results"].extend(_spawn(
                        ["--impl", impl, "--family", family, "--shapes", ",".join(names),
                         "--threads", str(threads), "--ref-dir", ref_dir, "--device", device,
                         "--min-time", str(min_time)], threads, jit_dir if cold_jit else None))
    if progress:
        progress(total, total, "done")
    _add_ratios(report)
    return report


def _add_ratios(report):
    """Speed-up over PyTorch ('torch': NCHW, TF32 off; a TF32 row against 'torch_tf32' when
    it ran) and % of the ceiling (a TF32 row against the TF32 GEMM ceiling when measured)."""
    ceil = report["ceilings"]
    torch_ms = {(r["impl"], r["family"], r["case"], r["direction"]): r["ms"]
                for r in report["results"] if r["impl"].startswith("torch") and r.get("validated")}
    for r in report["results"]:
        tf32 = "tf32" in r["impl"]
        key = (r["family"], r["case"], r["direction"])
        base = (tf32 and torch_ms.get(("torch_tf32",) + key)) or torch_ms.get(("torch",) + key)
        r["speedup_vs_torch"] = base / r["ms"] if base and r.get("validated") else None
        if r.get("gflops"):
            tf32 = tf32 and "gflops_tf32" in ceil
            r["pct_ceiling"] = 100 * r["gflops"] / ceil["gflops_tf32" if tf32 else "gflops"]
        elif r.get("gbps"):
            r["pct_ceiling"] = 100 * r["gbps"] / ceil["gbps"]


def main(argv=None):
    """The worker's command line (started by :func:`run`): prints its result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", required=True)
    ap.add_argument("--ceilings", action="store_true")
    ap.add_argument("--reference", action="store_true")
    ap.add_argument("--impl")
    ap.add_argument("--family")
    ap.add_argument("--ref-dir")
    ap.add_argument("--shapes", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.25)
    ap.add_argument("--device", default="cpu", choices=DEVICES)
    args = ap.parse_args(argv)
    if args.ceilings:
        out = measure_ceilings(args.threads, args.device)
    elif args.reference:
        out = write_references(args.family, args.shapes.split(","), args.ref_dir, args.device)
    else:
        out = run_worker(args.impl, args.family, args.shapes.split(","), args.threads,
                         args.ref_dir, args.min_time, args.device)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
