"""Our SGEMM (pyengine._cpu.sgemm) against numpy's (OpenBLAS) and torch.mm, in GFLOP/s.

    python -m benchmarks.bench_gemm [--threads 2] [--sizes 2048x2048x2048,64x3136x576]

Each implementation runs in its own process (OpenMP runtimes keep spinning after parallel
work and slow whatever runs next), with the same thread count; times are medians of repeats,
and the best of numpy and torch at 2048^3 is the harness's compute ceiling. Shapes are
M x N x K for C (M x N) = A (M x K) B (K x N), row-major, no transposes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from pyengine.bench.harness import time_call

# The harness's ceiling, a mid-size square, and GEMMs that CNN layers run: a 3x3 conv of 64
# channels on 56x56 (im2col view), a 1x1 conv, a linear layer.
DEFAULT_SIZES = ("2048x2048x2048", "1024x1024x1024", "512x512x512", "64x3136x576",
                 "256x3136x64", "128x1000x4096")
IMPLS = ("pyengine", "numpy", "torch")


def parse_size(text):
    m, n, k = (int(v) for v in text.lower().split("x"))
    return m, n, k


def worker(impl, sizes, threads, min_time):
    """{size: GFLOP/s} for one implementation, in this process."""
    rng = np.random.default_rng(0)
    if impl == "pyengine":
        import pyengine._cpu as cpu
        cpu.set_num_threads(threads)
    elif impl == "torch":
        import torch
        torch.set_num_threads(threads)
    out = {}
    for size in sizes:
        m, n, k = parse_size(size)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        if impl == "pyengine":
            fn = lambda: cpu.sgemm(a, b, c)  # noqa: E731
        elif impl == "numpy":
            fn = lambda: np.matmul(a, b, out=c)  # noqa: E731
        else:
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            fn = lambda: torch.mm(ta, tb, out=tc)  # noqa: E731
        ms, _ = time_call(fn, min_time=min_time)
        out[size] = 2.0 * m * n * k / (ms * 1e6)
    return out


def run(sizes=DEFAULT_SIZES, threads=2, min_time=0.5, impls=IMPLS):
    """{impl: {size: GFLOP/s}}, each implementation timed in its own process."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "PYENGINE_NUM_THREADS"):
        env[var] = str(threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for impl in impls:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_gemm", "--worker", impl,
                               "--sizes", ",".join(sizes), "--threads", str(threads),
                               "--min-time", str(min_time)],
                              capture_output=True, text=True, env=env, cwd=root)
        if proc.returncode != 0:
            results[impl] = {"error": proc.stderr.strip().splitlines()[-1:]}
            continue
        results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def format_table(results, sizes, threads):
    lines = [f"SGEMM GFLOP/s, {threads} threads (C = A B, row-major; M x N x K)",
             f"{'size':>16} " + " ".join(f"{i:>10}" for i in results) + "   ours / best other"]
    for size in sizes:
        row = [results[i].get(size) for i in results]
        cells = " ".join(f"{v:10.1f}" if isinstance(v, float) else f"{'-':>10}" for v in row)
        ours = results.get("pyengine", {}).get(size)
        others = [results[i].get(size) for i in results if i != "pyengine"]
        others = [v for v in others if isinstance(v, float)]
        ratio = f"{ours / max(others):8.2f}x" if isinstance(ours, float) and others else "-"
        lines.append(f"{size:>16} {cells}   {ratio}")
    for impl, r in results.items():
        if "error" in r:
            lines.append(f"{impl} failed: {r['error']}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="MxNxK,... (comma-separated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of repeats per size")
    ap.add_argument("--impls", default=",".join(IMPLS), help="pyengine,numpy,torch")
    args = ap.parse_args(argv)
    sizes = tuple(s for s in args.sizes.split(",") if s)
    if args.worker:
        print(json.dumps(worker(args.worker, sizes, args.threads, args.min_time)))
        return 0
    results = run(sizes, args.threads, args.min_time, tuple(args.impls.split(",")))
    print(format_table(results, sizes, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
