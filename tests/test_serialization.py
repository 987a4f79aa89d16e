"""Tests of pe.save / pe.load: round trips, refusals, atomic writes, damaged and foreign files."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine import serialization

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int8, np.uint8, np.uint16,
          np.bool_, np.complex64]


def _array(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    if np.dtype(dtype).kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _assert_same(a, b):
    """Equal structure, types, dtypes and values (NaN equal to NaN)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, pe.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (a != a and b != b))
    elif isinstance(a, dict):
        assert list(a) == list(b)  # same keys, same order
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b
        if isinstance(a, float):
            assert math.copysign(1.0, a) == math.copysign(1.0, b)


def _roundtrip(obj, tmp_path, name="obj.pe"):
    path = tmp_path / name
    pe.save(obj, path)
    return pe.load(path)


# -- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_tensor_and_array_roundtrip_every_dtype(tmp_path, dtype):
    obj = {"tensor": pe.Tensor(_array(dtype, (3, 4))), "array": _array(dtype, (2, 5), seed=1),
           "scalar_tensor": pe.Tensor(_array(dtype, ())), "empty": _array(dtype, (0, 3))}
    _assert_same(obj, _roundtrip(obj, tmp_path))


def test_views_and_fortran_arrays_roundtrip(tmp_path):
    base = _array(np.float32, (6, 8))
    obj = [base[::2, 1::3], np.asfortranarray(base), pe.Tensor(base.T), base.astype(">f8")]
    out = _roundtrip(obj, tmp_path)
    for got, want in zip(out, obj):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert out[3].dtype == np.dtype(">f8")


def test_requires_grad_and_plain_values(tmp_path):
    obj = {
        "w": pe.Tensor(_array(np.float32, (2, 2))).requires_grad_(True),
        "ints": [0, -1, 2 ** 100, -(2 ** 70)],
        "floats": (0.1, -0.0, float("inf"), float("-inf"), float("nan"), 5e-324,
                   1.7976931348623157e308),
        "text": ["", "héllo ✓", "quote\"and\\slash"],
        "flags": [True, False, None],
        "empties": [[], (), {}, ""],
        "nested": {"a": [{"b": (1, [2, {"c": None}])}]},
        "np_scalars": [np.float32(1.25), np.int64(-3), np.bool_(True), np.float64("nan")],
    }
    out = _roundtrip(obj, tmp_path)
    _assert_same(obj, out)
    assert out["w"].requires_grad and out["w"].is_leaf


def test_dict_keys_of_every_kind_keep_order(tmp_path):
    obj = {"z": 1, 0: "int", 3: "three", 2.5: "float", True: "bool", None: "none", "a": 2}
    out = _roundtrip(obj, tmp_path)
    assert list(out.items()) == list(obj.items())
    assert type(list(out)[1]) is int and type(list(out)[4]) is bool


def test_torch_shaped_training_checkpoint(tmp_path):
    """A checkpoint shaped like a real one: state dicts taken from a PyTorch model and Adam."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    for _ in range(2):
        model(torch.randn(2, 1, 28, 28)).sum().backward()
        opt.step()
        sched.step()

    def convert(x):
        if isinstance(x, torch.Tensor):
            return pe.Tensor(x.detach().numpy().copy())
        if isinstance(x, dict):
            return {k: convert(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(convert(v) for v in x)
        return x
    pe.manual_seed(3)
    ckpt = {"model": convert(model.state_dict()), "optimizer": convert(opt.state_dict()),
            "scheduler": convert(sched.state_dict()), "epoch": 2,
            "rng": pe.random.get_rng_state(), "history": [{"loss": 0.5, "acc": 81.25}]}
    out = _roundtrip(ckpt, tmp_path, "ckpt.pe")
    _assert_same(ckpt, out)
    assert out["model"]["1.num_batches_tracked"].dtype == np.int64
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(out["optimizer"]["state"]) == {0, 1, 2, 3, 4, 5}
    # the restored RNG state continues the same stream
    expected = pe.random.default_generator().random(5)
    pe.manual_seed(99)
    pe.random.set_rng_state(out["rng"])
    np.testing.assert_array_equal(pe.random.default_generator().random(5), expected)


def test_format_is_a_zip_with_a_versioned_json_manifest_and_npy_arrays(tmp_path):
    path = tmp_path / "f.pe"
    pe.save({"w": pe.Tensor(np.arange(3, dtype=np.float32)), "n": 1}, path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.namelist() == ["manifest.json", "arrays/0.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    assert manifest["format"] == "pyengine.save"
    assert manifest["version"] == serialization.FORMAT_VERSION == 1
    assert manifest["arrays"] == [{"name": "arrays/0.npy", "dtype": "<f4", "shape": [3]}]
    with np.load(path, allow_pickle=False) as npz:  # numpy can inspect the arrays
        np.testing.assert_array_equal(npz["arrays/0"], np.arange(3, dtype=np.float32))


def test_map_location(tmp_path):
    path = tmp_path / "m.pe"
    pe.save({"w": pe.Tensor(np.ones(2, np.float32))}, path)
    assert pe.load(path, map_location="cpu")["w"].device == "cpu"
    with pytest.raises(ValueError, match="device"):
        pe.load(path, map_location="tpu")


# -- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,where", [
    ({"a": [1, np.array([object()], dtype=object)]}, r"obj\['a'\]\[1\]"),
    ({"a": {"b": {1, 2}}}, r"obj\['a'\]\['b'\]"),
    ({"a": lambda: 0}, r"obj\['a'\]"),
    ([b"bytes"], r"obj\[0\]"),
    ({("tuple", "key"): 1}, "dict key"),
    ({"s": np.array(["text"])}, r"obj\['s'\]"),
])
def test_unsupported_values_are_refused_before_writing(tmp_path, bad, where):
    path = tmp_path / "never.pe"
    with pytest.raises(TypeError, match=where):
        pe.save(bad, path)
    assert os.listdir(tmp_path) == []


def test_cycles_and_bad_paths_are_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        pe.save(loop, tmp_path / "loop.pe")
    shared = [1, 2]
    out = _roundtrip({"x": shared, "y": shared}, tmp_path)  # shared, not cyclic: fine
    assert out == {"x": [1, 2], "y": [1, 2]}
    with pytest.raises(TypeError, match="path"):
        pe.save({}, 3)
    with pytest.raises(TypeError, match="path"):
        pe.load(None)
    with pytest.raises(FileNotFoundError):
        pe.load(tmp_path / "missing.pe")


# -- atomic writes ------------------------------------------------------------------------------
class _Boom(Exception):
    pass


def test_interrupted_save_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pe"
    good = {"w": pe.Tensor(np.arange(4, dtype=np.float32)), "epoch": 1}
    pe.save(good, path)
    before = path.read_bytes()
    real_write = serialization._write_array
    calls = []

    def write_then_fail(zf, name, arr):
        calls.append(name)
        if len(calls) == 2:
            raise _Boom("disk full, say")
        real_write(zf, name, arr)
    monkeypatch.setattr(serialization, "_write_array", write_then_fail)
    new = {"w": pe.Tensor(np.zeros(4, np.float32)), "v": np.ones(3), "epoch": 2}
    with pytest.raises(_Boom):
        pe.save(new, path)
    assert len(calls) == 2  # it failed in the middle of writing arrays
    assert path.read_bytes() == before
    _assert_same(pe.load(path), good)
    assert os.listdir(tmp_path) == ["ckpt.pe"]


@pytest.mark.parametrize("stage", ["_seal", "fsync", "replace"])
def test_failure_at_any_later_stage_leaves_no_temp(tmp_path, monkeypatch, stage):
    path = tmp_path / "ckpt.pe"
    pe.save({"epoch": 1}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # not an Exception: the cleanup must still run
    if stage == "_seal":
        monkeypatch.setattr(serialization, "_seal", fail)
    else:
        monkeypatch.setattr(serialization.os, stage, fail)
    with pytest.raises(KeyboardInterrupt):
        pe.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.pe"]
    assert pe.load(path) == {"epoch": 1}


def test_save_replaces_and_creates(tmp_path):
    path = tmp_path / "c.pe"
    pe.save({"epoch": 1}, path)
    pe.save({"epoch": 2}, str(path))
    assert pe.load(str(path)) == {"epoch": 2}
    assert os.listdir(tmp_path) == ["c.pe"]
    (tmp_path / "plain").write_bytes(b"")  # permissions follow the umask, like any new file
    assert os.stat(path).st_mode == os.stat(tmp_path / "plain").st_mode


# -- damaged and foreign files ------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.pe"
    obj = {"w": pe.Tensor(_array(np.float32, (4, 5))), "b": np.arange(3), "epoch": 7,
           "name": "simple_cnn"}
    pe.save(obj, path)
    return path, path.read_bytes(), obj


def test_truncation_anywhere_is_a_clear_error(saved, tmp_path):
    path, blob, _ = saved
    cuts = sorted({0, 1, 3, 4, 30, len(blob) // 3, len(blob) // 2, len(blob) - 100,
                   len(blob) - 81, len(blob) - 80, len(blob) - 64, len(blob) - 1})
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.pe"
        bad.write_bytes(blob[:cut])
        with pytest.raises(ValueError) as err:
            pe.load(bad)
        assert str(bad) in str(err.value), cut
        assert any(w in str(err.value) for w in ("truncated", "not a pyengine", "corrupt")), cut


def test_every_flipped_byte_is_detected(saved, tmp_path):
    path, blob, obj = saved
    bad = tmp_path / "flipped.pe"
    for pos in range(len(blob)):
        damaged = bytearray(blob)
        damaged[pos] ^= 0x20
        bad.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="flipped.pe"):
            pe.load(bad)
    _assert_same(pe.load(path), obj)  # the original is fine


@pytest.mark.parametrize("content,message", [
    (b"", "not a pyengine file"),
    (os.urandom(5000), "not a pyengine file"),
    (pickle.dumps({"w": np.ones(3)}), "pickle"),
    (b"PK\x03\x04" + os.urandom(300), "truncated, or a zip file not written by pe.save"),
])
def test_foreign_files(tmp_path, content, message):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        pe.load(path)
    assert str(path) in str(err.value)


def test_plain_npz_and_torch_files_are_refused(tmp_path):
    np.savez(tmp_path / "a.npz", w=np.ones(3))
    torch.save({"w": torch.ones(3)}, tmp_path / "t.pt")
    for name in ("a.npz", "t.pt"):
        with pytest.raises(ValueError, match="not written by pe.save"):
            pe.load(tmp_path / name)


def _sealed_zip(path, members: dict):
    """A zip with pyengine's checksum trailer around arbitrary members (a crafted file)."""
    with open(path, "w+b") as f:
        with zipfile.ZipFile(f, "w") as zf:
            zf.comment = serialization._TRAILER_PREFIX + b"0" * 64
            for name, blob in members.items():
                zf.writestr(name, blob)
        serialization._seal(f)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _manifest(root, arrays=(), version=1, fmt="pyengine.save"):
    return json.dumps({"format": fmt, "version": version, "root": root,
                       "arrays": list(arrays)}).encode()


@pytest.mark.parametrize("case,members,message", [
    ("no manifest", {"x.npy": _npy(np.ones(2))}, "without manifest.json"),
    ("not json", {"manifest.json": b"{nope"}, "not a valid pyengine file"),
    ("other format", {"manifest.json": _manifest({"t": "none"}, fmt="other")}, "does not describe"),
    ("newer version", {"manifest.json": _manifest({"t": "none"}, version=2)}, "newer pyengine"),
    ("unknown node", {"manifest.json": _manifest({"t": "pickle", "v": "x"})}, "unknown node"),
    ("bad reference", {"manifest.json": _manifest({"t": "ndarray", "array": 3})}, "out of range"),
    ("missing member", {"manifest.json": _manifest(
        {"t": "ndarray", "array": 0},
        [{"name": "arrays/0.npy", "dtype": "<f8", "shape": [2]}])}, "arrays/0.npy"),
    ("object dtype", {"manifest.json": _manifest(
        {"t": "ndarray", "array": 0}, [{"name": "a.npy", "dtype": "|O", "shape": [1]}]),
        "a.npy": _npy(np.array([None], dtype=object), allow_pickle=True)}, "unsupported dtype"),
    ("lying header", {"manifest.json": _manifest(
        {"t": "ndarray", "array": 0}, [{"name": "a.npy", "dtype": "<f8", "shape": [10 ** 12]}]),
        "a.npy": _npy(np.ones(2)).replace(b"(2,)", b"(1000000000000,)")}, "data bytes"),
    ("shape mismatch", {"manifest.json": _manifest(
        {"t": "ndarray", "array": 0}, [{"name": "a.npy", "dtype": "<f8", "shape": [3]}]),
        "a.npy": _npy(np.ones(2))}, "header says"),
])
def test_crafted_files_with_a_valid_checksum(tmp_path, monkeypatch, case, members, message):
    def no_unpickling(*args, **kwargs):
        raise AssertionError("pe.load must never unpickle")
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    path = tmp_path / "crafted.pe"
    _sealed_zip(path, members)
    with pytest.raises(ValueError, match=message) as err:
        pe.load(path)
    assert str(path) in str(err.value)
