"""Tests of pyengine.data: IDX files, dataset discovery and download, DataLoader, transforms.

No test touches the network: an autouse fixture makes any http(s) request fail, and the download
path is exercised with a replaced ``fetch_url`` that copies local files.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine import data
from pyengine.data import datasets as ds_mod
from pyengine.data import transforms as T
from pyengine.data.idx import read_idx, write_idx

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
HAVE_DEBIAN = all(os.path.isfile(os.path.join(DEBIAN_DIR, f)) for f in (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
needs_debian = pytest.mark.skipif(not HAVE_DEBIAN, reason="the Debian package "
                                  "dataset-fashion-mnist is not installed")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open an http(s) URL fails the test loudly."""
    real = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        full = url.full_url if isinstance(url, urllib.request.Request) else url
        if not str(full).startswith("file:"):
            raise AssertionError(f"test tried to use the network: {full}")
        return real(url, *args, **kwargs)
    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A fresh HOME (so ~/.cache/pyengine is empty), no PYENGINE_DATA, no system folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PYENGINE_DATA", raising=False)
    monkeypatch.setattr(data.FashionMNIST, "system_dirs", ())
    monkeypatch.setattr(data.MNIST, "system_dirs", ())
    return tmp_path


def make_split_files(folder, n_train=7, n_test=5, seed=0, names="gz"):
    """Write small fake MNIST-layout files; returns {base name: array}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for base, arr in arrays.items():
        if names == "gz":
            write_idx(os.path.join(folder, base + ".gz"), arr)
        elif names == "raw":
            write_idx(os.path.join(folder, base), arr)
        elif names == "dotted":
            write_idx(os.path.join(folder, base.replace("-idx", ".idx")), arr)
    return arrays


# -- IDX ----------------------------------------------------------------------------------------
IDX_CASES = [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
             (np.float32, 0x0D), (np.float64, 0x0E)]


@pytest.mark.parametrize("dtype,code", IDX_CASES)
@pytest.mark.parametrize("compress", [False, True])
def test_idx_roundtrip_every_type(tmp_path, dtype, code, compress):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    arr = (rng.integers(info.min, info.max, (3, 4, 5), endpoint=True).astype(dtype) if info
           else (rng.standard_normal((3, 4, 5)) * 1e3).astype(dtype))
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, arr)
    raw = gzip.decompress(path.read_bytes()) if compress else path.read_bytes()
    assert raw[:4] == bytes([0, 0, code, 3])
    assert struct.unpack(">3I", raw[4:16]) == (3, 4, 5)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_idx_reads_hand_made_big_endian_bytes(tmp_path):
    # written byte by byte, independently of write_idx
    values = [1, -2, 300, -32768, 32767, 0]
    blob = bytes([0, 0, 0x0B, 2]) + struct.pack(">2I", 2, 3) + struct.pack(">6h", *values)
    (tmp_path / "h.idx").write_bytes(blob)
    out = read_idx(tmp_path / "h.idx")
    assert out.dtype == np.int16 and out.shape == (2, 3)
    assert out.ravel().tolist() == values
    doubles = [1.5, -0.25]
    blob = bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 2) + struct.pack(">2d", *doubles)
    (tmp_path / "d.idx").write_bytes(blob)
    assert read_idx(tmp_path / "d.idx").tolist() == doubles


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed-but-plain-name", arr, compress=True)
    write_idx(tmp_path / "plain-but-named.gz", arr, compress=False)
    assert (tmp_path / "compressed-but-plain-name").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-but-plain-name"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-but-named.gz"), arr)


def test_idx_result_is_writable(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((2, 2), np.uint8))
    out = read_idx(tmp_path / "a.gz")
    out[0, 0] = 7  # a read-only buffer would raise here
    assert out[0, 0] == 7


def _idx_bytes(arr):
    return (bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case,blob,message", [
    ("empty", b"", "truncated"),
    ("short magic", b"\x00\x00", "truncated"),
    ("bad magic", b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
    ("bad type", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown element type"),
    ("cut header", b"\x00\x00\x08\x03" + struct.pack(">I", 5), "truncated"),
    ("cut data", _idx_bytes(np.zeros((4, 5)))[:-3], "truncated"),
    ("extra data", _idx_bytes(np.zeros((4, 5))) + b"\x00", "header"),
])
def test_idx_bad_files_raise_value_error_naming_file(tmp_path, compress, case, blob, message):
    path = tmp_path / f"bad-{case.replace(' ', '_')}.idx"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_truncated_and_damaged_gzip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    good = gzip.compress(_idx_bytes(arr))
    for cut in (3, 20, len(good) // 2, len(good) - 4):
        path = tmp_path / f"cut{cut}.gz"
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError) as err:
            read_idx(path)
        assert str(path) in str(err.value)
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="flipped.gz"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="path"):
        read_idx(123)


# -- finding the data ---------------------------------------------------------------------------
def test_search_order_root_env_cache_system(isolated, monkeypatch):
    root, env = isolated / "root", isolated / "env"
    cache = isolated / "home" / ".cache" / "pyengine" / "fashion-mnist"
    system = isolated / "system"
    arrays = {name: make_split_files(folder, seed=i)
              for i, (name, folder) in enumerate([("root", root), ("env", env),
                                                   ("cache", cache), ("system", system)])}
    monkeypatch.setenv("PYENGINE_DATA", str(env))
    monkeypatch.setattr(data.FashionMNIST, "system_dirs", (str(system),))

    def labels_from(name):
        return arrays[name]["train-labels-idx1-ubyte"]

    ds = data.FashionMNIST(root=root, download=False)
    np.testing.assert_array_equal(ds.targets, labels_from("root"))
    assert ds.root == str(root)
    ds = data.FashionMNIST(download=False)
    np.testing.assert_array_equal(ds.targets, labels_from("env"))
    shutil.rmtree(env)
    ds = data.FashionMNIST(download=False)
    np.testing.assert_array_equal(ds.targets, labels_from("cache"))
    shutil.rmtree(cache)
    ds = data.FashionMNIST(download=False)
    np.testing.assert_array_equal(ds.targets, labels_from("system"))


def test_env_subfolder_and_alternative_names(isolated, monkeypatch):
    env = isolated / "env"
    arrays = make_split_files(env / "fashion-mnist", names="raw")
    monkeypatch.setenv("PYENGINE_DATA", str(env))
    ds = data.FashionMNIST(train=False, download=False)
    np.testing.assert_array_equal(ds.images, arrays["t10k-images-idx3-ubyte"])
    arrays = make_split_files(isolated / "dotted", names="dotted", seed=3)
    ds = data.FashionMNIST(root=isolated / "dotted", train=True, download=False)
    np.testing.assert_array_equal(ds.images, arrays["train-images-idx3-ubyte"])


def test_mnist_uses_its_own_env_subfolder(isolated, monkeypatch):
    env = isolated / "env"
    make_split_files(env)  # bare files: Fashion-MNIST's by convention, not MNIST's
    monkeypatch.setenv("PYENGINE_DATA", str(env))
    assert len(data.FashionMNIST(download=False)) == 7
    with pytest.raises(RuntimeError, match="not found"):
        data.MNIST(download=False)
    arrays = make_split_files(env / "mnist", n_train=4, seed=9)
    ds = data.MNIST(download=False)
    np.testing.assert_array_equal(ds.targets, arrays["train-labels-idx1-ubyte"])
    assert ds.classes[3] == "3 - three"


def test_dataset_item_api(isolated):
    arrays = make_split_files(isolated / "d")
    ds = data.FashionMNIST(root=isolated / "d", train=True, download=False)
    assert len(ds) == 7 and ds.images.dtype == np.uint8 and ds.images.shape == (7, 28, 28)
    assert ds.targets.dtype == np.int64
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    image, label = ds[2]
    assert image.dtype == np.float32 and image.shape == (1, 28, 28)
    assert isinstance(label, int) and label == arrays["train-labels-idx1-ubyte"][2]
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"][2]).float().div(255)
    np.testing.assert_array_equal(image[0], expected.numpy())  # torchvision's scaling, exactly
    assert 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_array_equal(ds[-1][0], ds[6][0])
    with pytest.raises(IndexError):
        ds[7]
    with pytest.raises(TypeError, match="index"):
        ds[1.0]
    with pytest.raises(TypeError, match="train"):
        data.FashionMNIST(root=isolated / "d", train="yes")


def test_dataset_transform_applies_to_items(isolated):
    make_split_files(isolated / "d")
    plain = data.FashionMNIST(root=isolated / "d", download=False)
    norm = data.FashionMNIST(root=isolated / "d", download=False,
                             transform=T.Normalize(0.5, 0.25))
    np.testing.assert_allclose(norm[3][0], (plain[3][0] - 0.5) / 0.25, rtol=1e-6)


def test_dataset_rejects_inconsistent_files(isolated):
    folder = isolated / "bad"
    make_split_files(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(6, np.uint8))  # 7 images
    with pytest.raises(ValueError, match="labels"):
        data.FashionMNIST(root=folder, download=False)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(7, 10, np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        data.FashionMNIST(root=folder, download=False)


# -- downloading (with a fake fetch) ------------------------------------------------------------
def _digests(path):
    blob = open(path, "rb").read()
    return {"md5": hashlib.md5(blob).hexdigest(), "sha256": hashlib.sha256(blob).hexdigest(),
            "raw_sha256": hashlib.sha256(gzip.decompress(blob)).hexdigest()}


@pytest.fixture
def fake_server(isolated, monkeypatch):
    """Serve fake Fashion-MNIST files from a local folder through a replaced fetch_url."""
    served = isolated / "served"
    arrays = make_split_files(served)
    resources = {f: _digests(served / f) for f in os.listdir(served)}
    monkeypatch.setattr(data.FashionMNIST, "resources", resources)
    monkeypatch.setattr(data.FashionMNIST, "mirrors", ("https://a.invalid/", "https://b.invalid/"))
    calls = []
    routes = {}  # url -> local file, default: the served file of the same name

    def fake_fetch(url, dest, timeout=60.0):
        calls.append(url)
        source = routes.get(url, served / url.rsplit("/", 1)[1])
        if source is None:
            raise urllib.error.URLError("no network in tests")
        shutil.copyfile(source, dest)
    monkeypatch.setattr(ds_mod, "fetch_url", fake_fetch)
    return {"arrays": arrays, "calls": calls, "routes": routes, "served": served,
            "cache": isolated / "home" / ".cache" / "pyengine" / "fashion-mnist"}


def test_download_verifies_and_caches(fake_server):
    ds = data.FashionMNIST(train=True)
    np.testing.assert_array_equal(ds.images, fake_server["arrays"]["train-images-idx3-ubyte"])
    assert fake_server["calls"] == ["https://a.invalid/train-images-idx3-ubyte.gz",
                                    "https://a.invalid/train-labels-idx1-ubyte.gz"]
    assert sorted(os.listdir(fake_server["cache"])) == ["train-images-idx3-ubyte.gz",
                                                        "train-labels-idx1-ubyte.gz"]
    assert ds.root == str(fake_server["cache"])
    data.FashionMNIST(train=True)  # found in the cache now: no new fetch
    assert len(fake_server["calls"]) == 2


def test_download_checksum_mismatch_leaves_nothing(fake_server, isolated):
    wrong = isolated / "wrong.gz"
    write_idx(wrong, np.ones((7, 28, 28), np.uint8))
    for mirror in ("https://a.invalid/", "https://b.invalid/"):
        fake_server["routes"][mirror + "train-images-idx3-ubyte.gz"] = wrong
    with pytest.raises(RuntimeError, match="checksum mismatch") as err:
        data.FashionMNIST(train=True)
    assert "https://b.invalid/train-images-idx3-ubyte.gz" in str(err.value)
    cache = fake_server["cache"]
    assert not cache.exists() or os.listdir(cache) == []  # no partial or unverified file


def test_download_falls_back_to_next_mirror(fake_server, isolated):
    wrong = isolated / "wrong.gz"
    wrong.write_bytes(b"not even gzip")
    fake_server["routes"]["https://a.invalid/train-images-idx3-ubyte.gz"] = wrong
    fake_server["routes"]["https://a.invalid/train-labels-idx1-ubyte.gz"] = None  # offline
    ds = data.FashionMNIST(train=True)
    np.testing.assert_array_equal(ds.targets, fake_server["arrays"]["train-labels-idx1-ubyte"])
    assert fake_server["calls"][-1] == "https://b.invalid/train-labels-idx1-ubyte.gz"
    assert sorted(os.listdir(fake_server["cache"])) == ["train-images-idx3-ubyte.gz",
                                                        "train-labels-idx1-ubyte.gz"]


def test_no_network_error_says_where_and_how(fake_server):
    for mirror in ("https://a.invalid/", "https://b.invalid/"):
        fake_server["routes"][mirror + "t10k-images-idx3-ubyte.gz"] = None
    with pytest.raises(RuntimeError) as err:
        data.FashionMNIST(train=False)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "PYENGINE_DATA" in message
    assert os.path.join(".cache", "pyengine", "fashion-mnist") in message
    assert "no network in tests" in message


def test_download_false_never_fetches(fake_server):
    with pytest.raises(RuntimeError, match="download=False"):
        data.FashionMNIST(download=False)
    assert fake_server["calls"] == []


def test_fetch_url_copies_a_file_url(tmp_path):
    # the real fetch function, on a file: URL (no network)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3000))
    ds_mod.fetch_url(src.as_uri(), str(tmp_path / "dst.bin"))
    assert (tmp_path / "dst.bin").read_bytes() == src.read_bytes()


@needs_debian
def test_checksum_constants_match_debian_copy():
    for name, expected in data.FashionMNIST.resources.items():
        with gzip.open(os.path.join(DEBIAN_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == expected["raw_sha256"], name


@needs_debian
def test_real_fashion_mnist_from_debian(isolated, monkeypatch):
    monkeypatch.setattr(data.FashionMNIST, "system_dirs", (DEBIAN_DIR,))
    train, test = data.FashionMNIST(train=True), data.FashionMNIST(train=False)
    assert train.root == DEBIAN_DIR
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert train.targets[0] == 9 and train.classes[9] == "Ankle boot"
    loader = data.DataLoader(train, batch_size=128, shuffle=True, seed=0)
    seen = np.zeros(10, np.int64)
    count = 0
    for images, labels in loader:
        count += 1
        seen += np.bincount(labels.numpy(), minlength=10)
    assert count == 469 == len(loader) and seen.tolist() == [6000] * 10
    assert images.shape == (60000 - 468 * 128, 1, 28, 28)


# -- DataLoader ---------------------------------------------------------------------------------
def identity_dataset(n=50, seed=0):
    """Images whose label is their index, so a batch tells which items it holds."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return data.ArrayDataset(images, np.arange(n))


def test_loader_batches_shapes_and_values():
    ds = identity_dataset(50)
    loader = data.DataLoader(ds, batch_size=16)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    x, y = batches[0]
    assert isinstance(x, pe.Tensor) and isinstance(y, pe.Tensor)
    assert x.dtype == np.float32 and x.shape == (16, 1, 28, 28)
    assert y.dtype == np.int64 and y.shape == (16,)
    assert batches[-1][0].shape == (2, 1, 28, 28)
    for x, y in batches:
        np.testing.assert_array_equal(x.numpy()[:, 0], ds.images[y.numpy()] / np.float32(255))
    order = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(order, np.arange(50))
    dropped = data.DataLoader(ds, batch_size=16, drop_last=True)
    assert len(dropped) == 3 and [len(y) for _, y in dropped] == [16, 16, 16]


def _epoch_order(loader):
    return np.concatenate([y.numpy() for _, y in loader])


def test_loader_shuffle_is_a_permutation_and_follows_the_documented_seed():
    loader = data.DataLoader(identity_dataset(50), batch_size=7, shuffle=True, seed=123)
    first, second = _epoch_order(loader), _epoch_order(loader)
    assert sorted(first.tolist()) == list(range(50))
    assert not np.array_equal(first, second)  # a new order each epoch
    for epoch, got in ((0, first), (1, second)):
        seq = np.random.SeedSequence([123, epoch]).spawn(2)[0]
        np.testing.assert_array_equal(got, np.random.default_rng(seq).permutation(50))
    assert loader.epoch == 2


def test_loader_set_epoch_replays_an_epoch():
    a = data.DataLoader(identity_dataset(40), batch_size=8, shuffle=True, seed=7)
    orders = [_epoch_order(a) for _ in range(4)]
    b = data.DataLoader(identity_dataset(40), batch_size=8, shuffle=True, seed=7)
    b.set_epoch(2)
    np.testing.assert_array_equal(_epoch_order(b), orders[2])
    np.testing.assert_array_equal(_epoch_order(b), orders[3])
    c = data.DataLoader(identity_dataset(40), batch_size=8, shuffle=True, seed=0)
    c.load_state_dict({"seed": 7, "epoch": 1})
    assert c.state_dict() == {"seed": 7, "epoch": 1}
    np.testing.assert_array_equal(_epoch_order(c), orders[1])
    np.testing.assert_array_equal(c.order(1), orders[1])


def test_loader_seed_none_follows_pyengine_generator():
    pe.manual_seed(11)
    a = _epoch_order(data.DataLoader(identity_dataset(30), batch_size=4, shuffle=True))
    pe.manual_seed(11)
    b = _epoch_order(data.DataLoader(identity_dataset(30), batch_size=4, shuffle=True))
    pe.manual_seed(12)
    c = _epoch_order(data.DataLoader(identity_dataset(30), batch_size=4, shuffle=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


class _NoItemAccess(data.ArrayDataset):
    def __getitem__(self, index):
        raise AssertionError("the vectorised path must not call __getitem__")


class _ItemOnly:
    """A dataset with only __len__ / __getitem__ (images as pe.Tensor, labels as ints)."""

    def __init__(self, images, labels):
        self._images, self._labels = images, labels

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, i):
        return pe.Tensor(self._images[i][None] / np.float32(255)), int(self._labels[i])


def test_vectorised_and_generic_paths_agree():
    ref = identity_dataset(33, seed=4)
    fast = _NoItemAccess(ref.images, ref.targets)
    slow = _ItemOnly(ref.images, ref.targets)
    flip = T.RandomHorizontalFlip(0.5)
    fast_batches = list(data.DataLoader(fast, batch_size=5, shuffle=True, seed=3, transform=flip))
    slow_batches = list(data.DataLoader(slow, batch_size=5, shuffle=True, seed=3, transform=flip))
    assert len(fast_batches) == len(slow_batches) == 7
    for (xf, yf), (xs, ys) in zip(fast_batches, slow_batches):
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())


def test_loader_transforms_reproducible_and_vary_by_epoch():
    ds = identity_dataset(20)
    aug = T.Compose([T.RandomCrop(28, padding=3), T.RandomHorizontalFlip()])

    def run(epoch):
        loader = data.DataLoader(ds, batch_size=20, seed=5, transform=aug)
        loader.set_epoch(epoch)
        return next(iter(loader))[0].numpy()
    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))
    # the dataset's own transform runs too, before the loader's
    ds.transform = T.Normalize(0.5, 0.5)
    x = next(iter(data.DataLoader(ds, batch_size=20)))[0].numpy()
    np.testing.assert_allclose(x, (ds.images[:, None] / np.float32(255) - 0.5) / 0.5, rtol=1e-6)


def test_loader_argument_errors():
    ds = identity_dataset(5)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            data.DataLoader(ds, batch_size=bad)
    with pytest.raises(ValueError, match="seed"):
        data.DataLoader(ds, seed=-1)
    with pytest.raises(TypeError, match="dataset"):
        data.DataLoader(42)
    with pytest.raises(TypeError, match="shuffle"):
        data.DataLoader(ds, shuffle="yes")
    with pytest.raises(ValueError, match="epoch"):
        data.DataLoader(ds).set_epoch(-2)
    with pytest.raises(ValueError, match="state"):
        data.DataLoader(ds).load_state_dict({"epoch": 1})


def test_loader_batches_own_their_data():
    images = np.random.default_rng(0).random((6, 1, 4, 4), dtype=np.float32)
    ds = data.ArrayDataset(images.copy(), np.arange(6))
    for x, y in data.DataLoader(ds, batch_size=3):
        x.numpy()[...] = -1.0
        y.numpy()[...] = -1
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.targets, np.arange(6))


def test_loader_empty_dataset():
    empty = data.ArrayDataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    loader = data.DataLoader(empty, batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader) == []


def test_array_dataset_validation():
    with pytest.raises(ValueError, match="length"):
        data.ArrayDataset(np.zeros((3, 4, 4), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="shape"):
        data.ArrayDataset(np.zeros((3, 4), np.uint8), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="targets"):
        data.ArrayDataset(np.zeros((3, 4, 4), np.uint8), np.zeros(3, np.float32))


# -- transforms ---------------------------------------------------------------------------------
def test_to_tensor_matches_torchvision_scaling():
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    out = T.ToTensor()(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, torch.from_numpy(x).float().div(255).numpy())
    np.testing.assert_array_equal(T.ToTensor()(out), out)  # idempotent on floats


def test_normalize_per_channel():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 5, 6), dtype=np.float32)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    out = T.Normalize(mean, std)(x)
    assert out.dtype == np.float32
    expected = (x.astype(np.float64) - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(T.Normalize(mean, std)(x[1]), out[1])  # one (C, H, W) image
    with pytest.raises(ValueError, match="std"):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="channels"):
        T.Normalize([0.1, 0.2], [1.0, 1.0])(x)


def _loop_crop(x, size, padding, rng):
    """The obvious per-image crop, drawing offsets as RandomCrop documents."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    b, _, hp, wp = xp.shape
    oy = rng.integers(0, hp - size + 1, size=b)
    ox = rng.integers(0, wp - size + 1, size=b)
    return np.stack([xp[i, :, oy[i]:oy[i] + size, ox[i]:ox[i] + size] for i in range(b)])


def test_random_crop_matches_per_image_loop():
    x = np.random.default_rng(0).random((64, 2, 9, 9), dtype=np.float32)
    out = T.RandomCrop(7, padding=2)(x, np.random.default_rng(42))
    np.testing.assert_array_equal(out, _loop_crop(x, 7, 2, np.random.default_rng(42)))
    assert out.shape == (64, 2, 7, 7)
    # offsets really vary: several distinct crops of the same image
    same = np.repeat(x[:1], 64, axis=0)
    crops = T.RandomCrop(9, padding=2)(same, np.random.default_rng(1))
    assert len({c.tobytes() for c in crops}) > 10
    np.testing.assert_array_equal(T.RandomCrop(9)(x), x)  # no padding, full size: identity
    with pytest.raises(ValueError, match="larger"):
        T.RandomCrop(10)(x)
    with pytest.raises(ValueError, match="padding"):
        T.RandomCrop(7, padding=-1)


def test_random_horizontal_flip():
    x = np.random.default_rng(0).random((200, 1, 4, 5), dtype=np.float32)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(x), x)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    out = T.RandomHorizontalFlip(0.5)(x, np.random.default_rng(3))
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 60 < flipped.sum() < 140
    again = T.RandomHorizontalFlip(0.5)(x, np.random.default_rng(3))
    np.testing.assert_array_equal(out, again)
    with pytest.raises(ValueError, match="p"):
        T.RandomHorizontalFlip(1.5)


def test_compose_threads_one_generator_and_accepts_plain_callables():
    x = np.random.default_rng(0).random((8, 1, 6, 6), dtype=np.float32)
    crop, flip = T.RandomCrop(6, padding=1), T.RandomHorizontalFlip()
    out = T.Compose([crop, flip, lambda a: a * 2])(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    np.testing.assert_array_equal(out, flip(crop(x, rng), rng) * 2)
    pe.manual_seed(4)
    a = T.Compose([crop, flip])(x)
    pe.manual_seed(4)
    np.testing.assert_array_equal(a, T.Compose([crop, flip])(x))
    with pytest.raises(TypeError, match="callable"):
        T.Compose([1])
    with pytest.raises(ValueError, match="shape"):
        flip(np.zeros((2, 3)))
