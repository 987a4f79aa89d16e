"""``pyengine bench`` and its harness: implementation selection, validation, the report files
and the comparison with an earlier run. One real (small) run; the rest on synthetic reports."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pyengine as pe
from pyengine.bench import harness, report
from pyengine.cli import main


def _row(impl, ms, case="c", direction="forward", family="softmax", **kw):
    return dict(family=family, case=case, direction=direction, impl=impl, ms=ms,
                validated=True, **kw)


def _report(rows):
    return {"threads": 2, "device": "cpu", "results": rows,
            "ceilings": {"gflops": 100.0, "gflops_source": "numpy", "gbps": 20.0}}


def test_compare_marks_regressions_and_speedups():
    old = _report([_row("pe:cpu:direct", 1.0), _row("torch", 1.0),
                   _row("pe:cpu:direct", 1.0, case="gone")])
    new = _report([_row("pe:cpu:direct", 1.25), _row("torch", 0.5), _row("pe:numba:direct", 3.0)])
    regressed = report.compare(new, old, threshold=0.10)
    rows = {r["impl"]: r for r in new["results"]}
    assert [r["impl"] for r in regressed] == ["pe:cpu:direct"]
    assert rows["pe:cpu:direct"]["vs_old"] == pytest.approx(0.8) and rows["pe:cpu:direct"]["regressed"]
    assert rows["torch"]["vs_old"] == pytest.approx(2.0) and not rows["torch"]["regressed"]
    assert "vs_old" not in rows["pe:numba:direct"]          # no earlier row: nothing to say
    table = report.format_table(new)
    assert "vs old" in table and "REGRESSED" in table.splitlines()[2]


def test_summary_and_markdown_pick_our_best_against_torch():
    rows = [_row("pe:cpu:a", 2.0, speedup_vs_torch=2.0), _row("pe:cpu:b", 1.0, speedup_vs_torch=4.0),
            _row("torch", 4.0, speedup_vs_torch=1.0),
            _row("pe:cpu:a", 1.0, case="d", speedup_vs_torch=1.0), _row("torch", 1.0, case="d")]
    r = _report(rows)
    summary = report.format_summary(r)
    assert "pe:cpu:b" in summary and "4.00x" in summary and "pe:cpu:a " not in summary.split("\n")[2]
    md = report.to_markdown(r)
    assert "| softmax | forward | 2.00x | d 1.00x |" in md       # geomean of 4x and 1x


def test_summary_quotes_the_auto_choice_over_a_faster_algorithm():
    rows = [_row("pe:cpu:fast", 1.0), _row("pe:cpu:auto", 2.0), _row("torch", 2.0)]
    assert report.best_rows(_report(rows))[("c", "forward")]["impl"] == "pe:cpu:auto"


def test_geomean():
    assert report.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert report.geomean([]) is None


def test_select_implementations_by_device_and_backend():
    cpu = harness.select_implementations("pool2d")
    assert "torch" in cpu and "torch_cl" in cpu
    assert any(n.startswith("pe:numpy:") for n in cpu)
    assert not any(n.startswith("pe:cuda_emu:") for n in cpu)
    only = harness.select_implementations("pool2d", backends=["numpy", "torch"])
    assert set(only) == {n for n in cpu if n.startswith("pe:numpy:")} | {"torch"}
    if "cuda_emu" in pe.backends.available():
        emu = harness.select_implementations("softmax", device="cuda_emu")
        assert any(n.startswith("pe:cuda_emu:") for n in emu)
        assert not any(n.startswith("pe:cpu:") for n in emu)
    with pytest.raises(ValueError, match="device"):
        harness.select_implementations("pool2d", device="tpu")
    if "cuda" not in pe.backends.available():
        with pytest.raises(RuntimeError, match="cuda device is unavailable"):
            harness.select_implementations("conv2d", device="cuda")
    with pytest.raises(ValueError, match="families"):
        harness.run(("nope",))


def test_gpu_shapes_scale_the_batch_only():
    from pyengine.bench import gpu
    for family in ("conv2d", "pool2d", "softmax"):
        cpu, cuda = harness.shapes_for(family), harness.shapes_for(family, "cuda")
        assert [s.name for s in cpu] == [s.name for s in cuda]
        for a, b in zip(cpu, cuda):
            k = gpu.BATCH_SCALE[family]
            if family == "softmax":
                assert b.shape == (a.shape[0] * k,) + tuple(a.shape[1:])
            else:
                assert b.n == a.n * k and b.x_shape[1:] == a.x_shape[1:]


def test_validation_rejects_a_wrong_result():
    ref = [np.arange(6, dtype=np.float32)]
    harness.check_outputs([ref[0] + 1e-6], ref)
    with pytest.raises(AssertionError, match="max error"):
        harness.check_outputs([ref[0] * 1.01], ref)
    with pytest.raises(AssertionError, match="shape"):
        harness.check_outputs([ref[0][:5]], ref)


def test_bench_command_end_to_end(tmp_path, capsys):
    out_json, md, plots = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "plots"
    args = ["bench", "--ops", "softmax", "--shapes", "softmax_4096x1000,softmax_seg",
            "--backends", "numpy,torch", "--min-time", "0.01", "--no-progress"]
    assert main(args + ["--json", str(out_json), "--markdown", str(md), "--plots", str(plots)]) == 0
    table = capsys.readouterr().out
    assert "ceilings:" in table and "pe:numpy:direct" in table and "torch" in table
    rep = json.loads(out_json.read_text())
    rows = {(r["impl"], r["direction"]): r for r in rep["results"]
            if r["case"] == "softmax_4096x1000"}
    assert {(r["impl"], r["case"], r["direction"]) for r in rep["results"]} == {
        (i, c, d) for i in ("pe:numpy:direct", "torch") for c in ("softmax_4096x1000",
                                                                  "softmax_seg")
        for d in ("forward", "backward")}
    for r in rep["results"]:
        assert r["validated"] and r["ms"] > 0 and r["first_ms"] > 0 and r["bytes"] > 0
    fwd = rows[("pe:numpy:direct", "forward")]
    assert fwd["speedup_vs_torch"] == pytest.approx(rows[("torch", "forward")]["ms"] / fwd["ms"])
    assert "# pyengine benchmark" in md.read_text()
    for name in ("speedup_softmax.png", "roofline.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run compared with the first: every row gets a 'vs old' ratio.
    assert main(args + ["--compare", str(out_json)]) == 0
    assert "vs old" in capsys.readouterr().out
