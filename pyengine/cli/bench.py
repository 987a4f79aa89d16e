"""``pyengine bench``: every implementation of the kernels against PyTorch on the benchmark
shape set, on the harness of :mod:`pyengine.bench.harness` (each implementation in its own
process, validated against the numpy reference before it is timed, ceilings measured first).

    pyengine bench --quick                      # a short summary, under 90 s
    pyengine bench --ops conv2d --backends cpu,torch --threads 2 --json out.json --plots plots/
    pyengine bench --compare out.json           # marks rows more than 10% slower than before
"""
from __future__ import annotations

import json
import os
import sys

# --quick: a few cases of each family, the backend `auto` picks on host tensors vs PyTorch.
QUICK_SHAPES = ("mnist_c2", "res_c4", "pointwise", "max2x2", "global", "softmax_4096x1000",
                "cross_entropy_4096x1000")


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def quick_implementations():
    """The backend that ``auto`` runs on host tensors (first available of cpu, numba, numpy)
    with all its algorithms, and PyTorch NCHW."""
    import pyengine as pe
    best = next(n for n in pe.backends.AUTO_ORDER["cpu"] if n in pe.backends.available())
    return [f"pe:{best}", "torch"]


def _progress_bar():
    """A callable(done, total, label) drawing a tqdm bar on stderr; closes itself at the end."""
    from tqdm import tqdm
    bar = None

    def update(done, total, label):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="bench", unit="run", file=sys.stderr, leave=False)
        bar.set_postfix_str(label)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return update


def run(args) -> int:
    """Run the harness as the arguments say, print the table (or the summary), write the
    requested files; returns 1 when a row failed validation, else 0."""
    from pyengine.bench import harness, report as rep
    progress = None if args.no_progress else _progress_bar()
    if args.quick:
        impls, shapes, min_time = quick_implementations(), list(QUICK_SHAPES), 0.1
    else:
        impls, shapes, min_time = _csv(args.impls), _csv(args.shapes), args.min_time
    result = harness.run(_csv(args.ops), impls, shapes, args.threads, min_time,
                         progress=progress, cold_jit=args.cold_jit,
                         backends=_csv(args.backends), device=args.device)
    if args.compare:
        rep.compare(result, args.compare, args.regression)
    print(rep.format_summary(result) if args.quick and not args.compare
          else rep.format_table(result))
    written = []
    if args.json:
        _write(args.json, json.dumps(result, indent=1))
        written.append(args.json)
    if args.markdown:
        _write(args.markdown, rep.to_markdown(result))
        written.append(args.markdown)
    if args.plots:
        written += rep.write_plots(result, args.plots)
    if written:
        print("wrote " + ", ".join(written))
    regressed = [r for r in result["results"] if r.get("regressed")]
    if regressed:
        print(f"{len(regressed)} rows regressed by more than {args.regression:.0%}")
    return 1 if any(not r.get("validated") for r in result["results"]) else 0


def _write(path, text):
    """Write ``text`` atomically (pyengine.serialization.atomic_file)."""
    from pyengine.serialization import atomic_file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_file(path) as f:
        f.write(text.encode())


def _positive_int(text):
    n = int(text)
    if n < 1:
        raise ValueError(f"must be >= 1, got {n}")
    return n


def add_parser(sub) -> None:
    """Register ``pyengine bench``."""
    from pyengine.bench.harness import FAMILY_OPS
    from pyengine.bench.report import REGRESSION
    from pyengine.device import DEVICES
    p = sub.add_parser("bench", help="time every kernel implementation against PyTorch",
                       description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="a few cases, the backend auto uses vs PyTorch, as a short summary")
    p.add_argument("--ops", default=",".join(FAMILY_OPS),
                   help=f"op families, comma-separated (default {','.join(FAMILY_OPS)})")
    p.add_argument("--backends", default=None,
                   help="backends to time, comma-separated: cpu, numba, numpy, cuda_emu, torch, "
                        "torch_cl (default all on the device)")
    p.add_argument("--impls", default=None,
                   help="implementations (or prefixes) to keep, e.g. pe:cpu:winograd,torch")
    p.add_argument("--shapes", default=None, help="case names to keep, comma-separated")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="whose kernels: the host backends, the emulated CUDA kernels (PyTorch's "
                        "CPU kernels as baseline), or the GPU's against PyTorch/cuDNN (TF32 off, "
                        "and on for conv2d as torch_tf32; CUDA events, larger batches)")
    p.add_argument("--threads", type=_positive_int, default=2,
                   help="threads for every implementation, PyTorch's included (default 2)")
    p.add_argument("--min-time", type=float, default=0.25,
                   help="seconds of timed repeats per case (default 0.25)")
    p.add_argument("--cold-jit", action="store_true",
                   help="start every worker with an empty numba cache: 'jit ms' is then the "
                        "whole compile time of a first call")
    p.add_argument("--json", default=None, help="write the full report as JSON here")
    p.add_argument("--markdown", default=None, help="write a Markdown report here")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="write PNG plots here (speed-up per op family, roofline)")
    p.add_argument("--compare", default=None, metavar="OLD.json",
                   help="compare with an earlier --json report; marks regressions")
    p.add_argument("--regression", type=float, default=REGRESSION,
                   help=f"slow-down that counts as a regression (default {REGRESSION})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
