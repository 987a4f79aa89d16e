"""The command line: train (checkpoints, exact resume), evaluate, info, python -m pyengine.

Training runs on a small synthetic IDX dataset written to a temporary folder (the real
Fashion-MNIST run is in test_training.py), so these tests stay fast.
"""
import subprocess
import sys

import numpy as np
import pytest

import pyengine as pe
from pyengine.cli import main
from pyengine.data.idx import write_idx


@pytest.fixture(autouse=True)
def _auto_backend():
    yield
    pe.set_backend("auto")


@pytest.fixture
def data_root(tmp_path):
    """A tiny Fashion-MNIST-shaped dataset: class k images are brighter in row band k."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 160), ("t10k", 64)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k:2 * k + 4, :] += 150
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels)
    return tmp_path


def _train(data_root, ckpt, *extra):
    return main(["train", "--data-root", str(data_root), "--checkpoint", str(ckpt),
                 "--batch-size", "40", "--lr", "0.02", "--no-progress", *extra])


def test_train_writes_checkpoint_and_evaluate_reads_it(data_root, tmp_path, capsys):
    ckpt = tmp_path / "model.pe"
    assert _train(data_root, ckpt, "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert "epoch 1:" in out and "epoch 2:" in out and "test accuracy" in out
    state = pe.load(str(ckpt))
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert state["recipe"]["model"] == "simple_cnn"
    # The synthetic task is easy: two epochs must learn something real.
    assert state["history"][-1]["test_accuracy"] > 30.0
    assert main(["evaluate", str(ckpt), "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {state['history'][-1]['test_accuracy']:.2f}%" in out


def test_resume_continues_exactly(data_root, tmp_path):
    straight, resumed = tmp_path / "a.pe", tmp_path / "b.pe"
    assert _train(data_root, straight, "--epochs", "2") == 0
    assert _train(data_root, resumed, "--epochs", "1") == 0
    assert _train(data_root, resumed, "--epochs", "2", "--resume") == 0
    a, b = pe.load(str(straight)), pe.load(str(resumed))
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert [h["test_accuracy"] for h in a["history"]] == [h["test_accuracy"] for h in b["history"]]
    for k, v in a["model"].items():
        np.testing.assert_array_equal(v.numpy(), b["model"][k].numpy(), err_msg=k)


@pytest.mark.skipif("cuda_emu" not in pe.backends.available(),
                    reason="pyengine._cuda_emu is not built")
def test_train_on_the_cuda_emu_device_matches_cpu(data_root, tmp_path):
    """The GPU path (device tensors, Module.to, optimizer updates, the CUDA kernels) on the
    emulated device: a few batches give the cpu device's losses and weights."""
    emu, cpu = tmp_path / "emu.pe", tmp_path / "cpu.pe"
    few = ("--epochs", "1", "--limit-batches", "3", "--limit-test-batches", "1")
    assert _train(data_root, emu, *few, "--device", "cuda_emu") == 0
    assert _train(data_root, cpu, *few) == 0
    a, b = pe.load(str(emu)), pe.load(str(cpu))
    # float32 sums in other orders (the emulated GEMMs): measured 8e-8 relative on the loss and
    # 7.5e-7 absolute on weights of magnitude <= 0.33 after the three steps.
    np.testing.assert_allclose(a["history"][0]["train_loss"], b["history"][0]["train_loss"],
                               rtol=1e-6)
    for k, v in a["model"].items():
        np.testing.assert_allclose(v.numpy(), b["model"][k].numpy(), rtol=1e-5, atol=2e-6,
                                   err_msg=k)


def test_resume_of_another_model_is_refused(data_root, tmp_path):
    ckpt = tmp_path / "m.pe"
    pe.save({"format": "pyengine-train-checkpoint", "recipe": {"model": "other"}}, str(ckpt))
    assert _train(data_root, ckpt, "--epochs", "1", "--resume") == 1


def test_bad_arguments_give_errors_not_tracebacks(data_root, tmp_path, capsys):
    assert _train(data_root, tmp_path / "x.pe", "--epochs", "0") == 1
    assert "--epochs" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.pe")]) == 1
    with pytest.raises(SystemExit):
        main(["train", "--optimizer", "nope"])


def test_info_lists_backends_and_coverage(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backends available" in out and "numpy" in out and "conv2d" in out
    assert "CUDA:" in out and "threads:" in out
    numba_line = next(line for line in out.splitlines() if line.startswith("numba:"))
    if "numba" in pe.backends.available():
        status = pe.backends.get("numba").cache_status()
        assert ("JIT cache warm" in numba_line) == status["warm"], numba_line
        assert f"{status['kernels_cached']}/{status['kernels']} kernels cached" in numba_line
    else:
        assert "unavailable" in numba_line


def test_python_m_pyengine_runs():
    proc = subprocess.run([sys.executable, "-m", "pyengine", "info"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pyengine" in proc.stdout
