"""``pyengine info``: version, backends (and why others are missing), op coverage, CPU, threads,
CUDA."""
from __future__ import annotations

import platform


def cpu_features() -> dict:
    """Model name and the SIMD flags that matter to our kernels, from /proc/cpuinfo."""
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"model": model, "flags": [f for f in wanted if f in flags]}


def cuda_status() -> str:
    """The CUDA device in use, or why there is none."""
    import pyengine as pe
    reasons = pe.backends.unavailable()
    if "cuda" in reasons:
        return f"unavailable: {reasons['cuda']}"
    return "available"


def collect() -> dict:
    """Everything ``pyengine info`` prints, as a dict."""
    import pyengine as pe
    from pyengine.threads import blas_num_threads, get_num_threads
    out = {"version": pe.__version__, "python": platform.python_version(),
           "backends": pe.backends.available(), "unavailable": pe.backends.unavailable(),
           "coverage": pe.backends.coverage(), "cpu": cpu_features(),
           "threads": get_num_threads(), "blas_threads": blas_num_threads(), "cuda": cuda_status()}
    try:
        from pyengine import _cpu
        out["native_build"] = dict(_cpu.build_info())
    except ImportError as exc:
        out["native_build"] = f"not built ({exc})"
    out["numba"] = numba_status()
    return out


def numba_status():
    """The numba backend's JIT cache (``NumbaBackend.cache_status()``), or why numba is out."""
    from pyengine import backends
    reason = backends.unavailable().get("numba")
    if reason is not None:
        return f"unavailable: {reason}"
    from pyengine.backends.numba_cpu import NumbaBackend
    return NumbaBackend.cache_status()


def describe_numba(status) -> str:
    """One line for ``pyengine info``: is numba's on-disk cache warm (first calls load) or cold
    (each kernel compiles on its first call, seconds each)."""
    if isinstance(status, str):
        return status
    state = "warm" if status["warm"] else "cold (kernels compile on first call)"
    return (f"numba {status['numba']}, JIT cache {state}: {status['kernels_cached']}/"
            f"{status['kernels']} kernels cached, {status['signatures_cached']} signatures, "
            f"in {', '.join(status['cache_dirs']) or '-'}")


def run(args) -> int:
    """Print the report."""
    info = collect()
    print(f"pyengine {info['version']} (Python {info['python']})")
    print(f"backends available: {', '.join(info['backends'])}")
    for name, why in info["unavailable"].items():
        print(f"  {name}: {why}")
    print(f"CPU: {info['cpu']['model']}; SIMD: {' '.join(info['cpu']['flags']) or 'none detected'}")
    nb = info["native_build"]
    if isinstance(nb, dict):
        keys = ", ".join(f"{k}={v}" for k, v in nb.items())
        print(f"native build: {keys}")
    else:
        print(f"native build: {nb}")
    print(f"numba: {describe_numba(info['numba'])}")
    print(f"threads: {info['threads']} (numpy's BLAS: {info['blas_threads'] or 'not found'})")
    print(f"CUDA: {info['cuda']}")
    print("op coverage (dtypes each backend implements itself; '-' falls through):")
    ops = list(next(iter(info["coverage"].values())).keys())
    names = list(info["coverage"].keys())
    print(f"  {'op':22}" + "".join(f"{n:>18}" for n in names))
    for op in ops:
        cells = ["/".join(d.replace("float", "f") for d in info["coverage"][n][op]) or "-"
                 for n in names]
        print(f"  {op:22}" + "".join(f"{c:>18}" for c in cells))
    return 0


def add_parser(sub) -> None:
    """Register ``pyengine info``."""
    p = sub.add_parser("info", help="version, backends, op coverage, CPU features, CUDA")
    p.set_defaults(func=run)
