"""What ``pyengine bench`` makes of a harness report: the text table, the short summary, a
Markdown report, PNG plots (speed-up over PyTorch per op family, a roofline), and the comparison
with an earlier run's JSON that marks regressions.

A report is the dict :func:`pyengine.bench.harness.run` returns: 'threads', 'device',
'ceilings' {'gflops', 'gflops_source', 'gbps'} and 'results', one row per case x direction x
implementation with 'ms', 'flops', 'bytes', 'gflops'/'gbps', 'pct_ceiling', 'speedup_vs_torch',
'first_ms', 'jit_ms' (and 'vs_old' / 'regressed' once compared).
"""
from __future__ import annotations

import json
import math
import os

REGRESSION = 0.10  # a row is a regression when it runs this fraction slower than before


def _key(r):
    return (r["family"], r["case"], r["direction"], r["impl"])


def compare(report, old, threshold=REGRESSION):
    """Mark each row of ``report`` against the same row of ``old`` (a report, or the path of
    its JSON): 'vs_old' = old ms / new ms (above 1 is faster now), 'regressed' when the new
    time exceeds the old by more than ``threshold``. Returns the regressed rows."""
    if isinstance(old, (str, os.PathLike)):
        with open(old) as f:
            old = json.load(f)
    before = {_key(r): r["ms"] for r in old.get("results", []) if r.get("validated")}
    regressed = []
    for r in report["results"]:
        ms = before.get(_key(r))
        if ms is None or not r.get("validated"):
            continue
        r["vs_old"] = ms / r["ms"]
        r["regressed"] = r["ms"] > ms * (1 + threshold)
        if r["regressed"]:
            regressed.append(r)
    return regressed


def _ratio(x):
    return f"{x:.2f}x" if x else "-"


def _header(report):
    c = report["ceilings"]
    return (f"ceilings: {c['gflops']:.0f} GFLOP/s ({c['gflops_source']} 2048^3), "
            f"{c['gbps']:.1f} GB/s copy; threads={report['threads']}, "
            f"device={report.get('device', 'cpu')}")


def format_table(report):
    """The report as a plain-text table (a 'vs old' column once :func:`compare` ran)."""
    compared = any("vs_old" in r for r in report["results"])
    lines = [_header(report),
             f"{'family':8} {'case':24} {'direction':16} {'impl':22} {'ms':>9} {'GFLOP/s|GB/s':>13}"
             f" {'%ceil':>6} {'vs torch':>8} {'1st ms':>8} {'jit ms':>8}"
             + (f" {'vs old':>8}" if compared else "")]
    for r in report["results"]:
        if not r.get("validated"):
            lines.append(f"{r['family']:8} {r['case']:24} {r['direction']:16} {r['impl']:22} "
                         f"FAILED: {r.get('error', '?')[:80]}")
            continue
        rate = r.get("gflops") or r.get("gbps") or 0.0
        unit = "GF" if r.get("gflops") else "GB"
        jit = f"{r['jit_ms']:.0f}" if r.get("jit_ms") else "-"
        line = (f"{r['family']:8} {r['case']:24} {r['direction']:16} {r['impl']:22} "
                f"{r['ms']:9.3f} {rate:10.1f} {unit} {r.get('pct_ceiling', 0):5.1f}% "
                f"{_ratio(r.get('speedup_vs_torch')):>8} {r.get('first_ms', math.nan):8.1f} "
                f"{jit:>8}")
        if compared:
            line += f" {_ratio(r.get('vs_old')):>8}" + (" REGRESSED" if r.get("regressed") else "")
        lines.append(line)
    return "\n".join(lines)


def best_rows(report):
    """{(case, direction): the row to quote for us}: the backend's own choice ('pe:<b>:auto',
    what users get) where it ran, else our fastest validated row (a backend with one
    algorithm)."""
    best = {}
    for r in report["results"]:
        if not (r["impl"].startswith("pe:") and r.get("validated")):
            continue
        key = (r["case"], r["direction"])
        old = best.get(key)
        auto = r["impl"].endswith(":auto")
        old_auto = old is not None and old["impl"].endswith(":auto")
        if old is None or (auto and not old_auto) or (auto == old_auto and r["ms"] < old["ms"]):
            best[key] = r
    return best


def format_summary(report):
    """One line per case and direction: ours (the auto choice, else the fastest) vs PyTorch."""
    c = report["ceilings"]
    lines = [f"benchmark summary ({report['threads']} threads; ceilings {c['gflops']:.0f} GFLOP/s,"
             f" {c['gbps']:.1f} GB/s)",
             f"  {'case':26} {'direction':16} {'ours':24} {'ms':>8} {'torch ms':>9} {'speed-up':>8}"]
    for (case, direction), r in best_rows(report).items():
        up = r.get("speedup_vs_torch")   # against the baseline harness._add_ratios chose
        lines.append(f"  {case:26} {direction:16} {r['impl']:24} {r['ms']:8.3f} "
                     f"{(r['ms'] * up if up else math.nan):9.3f} {_ratio(up):>8}")
    for r in report["results"]:
        if not r.get("validated"):
            lines.append(f"  FAILED {r['impl']} {r['case']} {r['direction']}: {r.get('error')}")
    return "\n".join(lines)


def geomean(values):
    """Geometric mean of positive numbers (None for none)."""
    values = [v for v in values if v]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def to_markdown(report):
    """The report as Markdown: the ceilings, per family the geomean speed-up over PyTorch of
    what users get (:func:`best_rows`), then every row."""
    best = best_rows(report)
    out = ["# pyengine benchmark", "", _header(report), "", "## Ours (auto) vs PyTorch (NCHW)", "",
           "| family | direction | geomean speed-up | slowest case |", "|---|---|---|---|"]
    groups = {}
    for (case, direction), r in best.items():
        if r.get("speedup_vs_torch"):
            groups.setdefault((r["family"], direction), []).append(r)
    for (family, direction), rows in groups.items():
        worst = min(rows, key=lambda r: r["speedup_vs_torch"])
        out.append(f"| {family} | {direction} | {_ratio(geomean(r['speedup_vs_torch'] for r in rows))}"
                   f" | {worst['case']} {_ratio(worst['speedup_vs_torch'])} |")
    out += ["", "## Every row", "",
            "| family | case | direction | impl | ms | GFLOP/s | GB/s | % ceiling | vs torch |"
            " first call ms | JIT ms |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if not r.get("validated"):
            out.append(f"| {r['family']} | {r['case']} | {r['direction']} | {r['impl']} | "
                       f"failed: {r.get('error', '?')} | | | | | | |")
            continue
        gf = f"{r['gflops']:.1f}" if r.get("gflops") else "-"
        out.append(f"| {r['family']} | {r['case']} | {r['direction']} | {r['impl']} | "
                   f"{r['ms']:.3f} | {gf} | {r.get('gbps') or 0:.1f} | "
                   f"{r.get('pct_ceiling', 0):.1f} | {_ratio(r.get('speedup_vs_torch'))} | "
                   f"{r.get('first_ms', math.nan):.1f} | {r.get('jit_ms') or 0:.0f} |")
    return "\n".join(out) + "\n"


def write_plots(report, directory):
    """PNG plots into ``directory``: ``speedup_<family>.png`` (speed-up over PyTorch by case
    and implementation, log scale) and ``roofline.png`` (conv rows against the compute and
    bandwidth ceilings; memory-bound rows as achieved bandwidth). Returns the paths written.
    Needs matplotlib (the 'bench' extra); ImportError says so."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'pyengine[bench]'") from exc
    os.makedirs(directory, exist_ok=True)
    rows = [r for r in report["results"] if r.get("validated")]
    paths = []
    for family in sorted({r["family"] for r in rows}):
        fam = [r for r in rows if r["family"] == family and r.get("speedup_vs_torch")
               and r["impl"] != "torch"]
        if not fam:
            continue
        directions = sorted({r["direction"] for r in fam})
        impls = sorted({r["impl"] for r in fam})
        width = 0.8 / len(impls)
        most = max(len({r["case"] for r in fam if r["direction"] == d}) for d in directions)
        fig, axes = plt.subplots(len(directions), 1, squeeze=False, figsize=(
            min(18.0, max(7.0, 0.12 * most * len(impls) + 1.5)), 3.4 * len(directions)))
        for ax, direction in zip(axes[:, 0], directions):
            cases = sorted({r["case"] for r in fam if r["direction"] == direction})
            for k, impl in enumerate(impls):
                by_case = {r["case"]: r["speedup_vs_torch"] for r in fam
                           if r["impl"] == impl and r["direction"] == direction}
                xs = [i + (k - (len(impls) - 1) / 2) * width for i, c in enumerate(cases)
                      if c in by_case]
                ax.bar(xs, [by_case[c] for c in cases if c in by_case], width, label=impl)
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xticks(range(len(cases)))
            ax.set_xticklabels(cases, fontsize=8, rotation=15, ha="right")
            ax.set_ylabel("speed-up over PyTorch")
            ax.set_title(f"{family} {direction}, {report['threads']} threads (PyTorch NCHW = 1)",
                         fontsize=9)
        # Below the plots, clear of the bars (savefig's tight box takes it in).
        axes[-1, 0].legend(fontsize=7, ncol=min(5, len(impls)), loc="upper center",
                           bbox_to_anchor=(0.5, -0.3))
        fig.tight_layout()
        path = os.path.join(directory, f"speedup_{family}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    c = report["ceilings"]
    compute = [r for r in rows if r.get("flops") and r.get("bytes")]
    memory = [r for r in rows if not r.get("flops") and r.get("gbps")]
    panels = [kind for kind, have in (("compute", compute), ("memory", memory)) if have]
    if not panels:
        return paths
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 0.5, 4.5),
                             squeeze=False)
    for ax, kind in zip(axes[0], panels):
        if kind == "compute":
            _roofline_panel(ax, compute, c)
        else:
            _bandwidth_panel(ax, memory, c)
    fig.tight_layout()
    path = os.path.join(directory, "roofline.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _roofline_panel(ax, rows, c):
    """GFLOP/s against FLOP per compulsory byte, under the compute and bandwidth ceilings."""
    ai = [r["flops"] / r["bytes"] for r in rows]
    lo, hi = min(ai) / 2, max(ai) * 2
    xs = [lo * (hi / lo) ** (i / 99) for i in range(100)]
    ax.plot(xs, [min(c["gflops"], c["gbps"] * x) for x in xs], color="black",
            label=f"ceiling ({c['gflops']:.0f} GFLOP/s, {c['gbps']:.0f} GB/s)")
    for impl in sorted({r["impl"] for r in rows}):
        pts = [(r["flops"] / r["bytes"], r["gflops"]) for r in rows if r["impl"] == impl]
        ax.scatter(*zip(*pts), s=14, label=impl)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOP / byte (compulsory traffic)")
    ax.set_ylabel("GFLOP/s (direct-convolution FLOPs)")
    ax.set_title("roofline: conv2d (Winograd can pass the ceiling)", fontsize=9)
    ax.legend(fontsize=6)


def _bandwidth_panel(ax, rows, c):
    """Achieved GB/s of the memory-bound ops against the copy bandwidth."""
    labels = sorted({f"{r['case']} {r['direction']}" for r in rows})
    for impl in sorted({r["impl"] for r in rows}):
        pts = [(labels.index(f"{r['case']} {r['direction']}"), r["gbps"])
               for r in rows if r["impl"] == impl]
        ax.scatter(*zip(*pts), s=14, label=impl)
    ax.axhline(c["gbps"], color="black", linewidth=0.8, label="copy bandwidth (DRAM)")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=6)
    ax.set_ylabel("GB/s (compulsory traffic)")
    ax.set_title("memory-bound ops (above the line: served from cache)", fontsize=9)
    ax.legend(fontsize=6)
