"""Datasets: in-memory image arrays, and Fashion-MNIST / MNIST read from their IDX files.

A dataset holds all its images in memory: ``ds.images`` (uint8, N x H x W or N x C x H x W) and
``ds.targets`` (int64, N), which the DataLoader slices whole batches from, and answers
``ds[i] -> (image, label)`` with the image as float32 (C, H, W) scaled to [0, 1].

Where the files are looked for, in order (the first folder holding both files of the split wins):

1. ``root`` if given (and ``root/<name>``), else ``$PYENGINE_DATA`` (Fashion-MNIST: the folder
   itself and ``$PYENGINE_DATA/fashion-mnist``; MNIST: ``$PYENGINE_DATA/mnist`` only, because both
   datasets use the same file names and a bare folder cannot say which one it holds);
2. ``~/.cache/pyengine/<name>`` (where downloads go);
3. the system copy: Debian's ``dataset-fashion-mnist`` package installs the four original files
   as ``/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz``.

In each folder a file may be stored as ``train-images-idx3-ubyte`` or with ``.gz`` (either way
gzip is recognised by content), or with LeCun's dotted names (``train-images.idx3-ubyte``).

Only when no folder has the files and ``download=True`` are they downloaded, from the dataset's
public URLs, into ``~/.cache/pyengine/<name>``; each file is checked against the checksums below
before it is moved (atomically) into place.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import numbers
import os
import secrets
import shutil
import urllib.request

import numpy as np

from .idx import read_idx
from .transforms import apply_transform, to_float

SYSTEM_DATA_DIR = "/usr/share/datasets"
DATA_ENV = "PYENGINE_DATA"


def cache_root() -> str:
    """The folder downloads go to: ``~/.cache/pyengine``."""
    return os.path.join(os.path.expanduser("~"), ".cache", "pyengine")


class ArrayDataset:
    """Images and integer labels held in numpy arrays.

    ``images``: (N, H, W) or (N, C, H, W), uint8 (scaled to [0, 1] on access) or floating point
    (used as they are); ``targets``: N integer labels. ``transform`` is a batch-aware transform
    from :mod:`pyengine.data.transforms` (or any callable taking a float (B, C, H, W) array); the
    DataLoader applies it to whole batches, ``ds[i]`` to a batch of one.
    """

    def __init__(self, images, targets, transform=None, classes=None):
        images = np.asarray(images)
        targets = np.asarray(targets)
        if images.ndim not in (3, 4):
            raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W), "
                             f"got {images.shape}")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
        if targets.ndim != 1 or targets.dtype.kind not in "iu":
            raise ValueError(f"targets must be a 1-d integer array, got shape {targets.shape} "
                             f"and dtype {targets.dtype}")
        if len(targets) != len(images):
            raise ValueError(f"images ({len(images)}) and targets ({len(targets)}) differ in "
                             f"length")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {transform!r}")
        self.images = images
        self.targets = targets.astype(np.int64, copy=False)
        self.transform = transform
        if classes is not None:
            self.classes = list(classes)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index):
        """``(image, label)``: float32 (C, H, W) in [0, 1] (after ``transform``), and an int."""
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} images")
        index = int(index) % n
        image = self.images[index]
        image = to_float(image[None] if image.ndim == 2 else image)
        if self.transform is not None:
            image = apply_transform(self.transform, image[None], None)[0]
        return image, int(self.targets[index])

    def __repr__(self):
        return (f"{type(self).__name__}({len(self)} images of shape {self.images.shape[1:]}, "
                f"{self.images.dtype})")


# -- downloading --------------------------------------------------------------------------------
def fetch_url(url: str, dest: str, timeout: float = 60.0) -> None:
    """Download ``url`` into the file ``dest`` (the one function that touches the network).

    Tests replace it (monkeypatch) with a local copy, so they never use the network.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "pyengine"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)
        f.flush()
        os.fsync(f.fileno())


def _hashes(path: str) -> dict:
    """MD5 and SHA-256 of the file, and SHA-256 of its content after gunzip."""
    md5, sha, raw_sha = hashlib.md5(usedforsecurity=False), hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                raw_sha.update(block)
        raw = raw_sha.hexdigest()
    except (OSError, EOFError) as exc:
        raw = f"<not a valid gzip file: {exc}>"
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "raw_sha256": raw}


def _check(path: str, expected: dict) -> None:
    """Raise ValueError unless every checksum in ``expected`` matches the file."""
    got = _hashes(path)
    for key in ("md5", "sha256", "raw_sha256"):
        if expected.get(key) and got[key] != expected[key]:
            raise ValueError(f"checksum mismatch ({key}): expected {expected[key]}, "
                             f"got {got[key]}")


def download_file(urls, dest: str, expected: dict) -> str:
    """Fetch ``dest``'s file from the first of ``urls`` that delivers a verified copy.

    The file is written to a temporary name beside ``dest`` and renamed into place only after
    its checksums match, so ``dest`` is never a partial or unverified file. Raises RuntimeError
    listing every URL tried and why it failed.
    """
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    problems = []
    for url in urls:
        # a name of our own, not tempfile.mkstemp, whose files are private (0600)
        tmp = os.path.join(folder, f".{os.path.basename(dest)}.{secrets.token_hex(6)}.part")
        try:
            fetch_url(url, tmp)
            _check(tmp, expected)
            os.replace(tmp, dest)
            return dest
        # URLError and timeouts are OSErrors; a connection cut mid-body is an HTTPException
        except (OSError, http.client.HTTPException, ValueError) as exc:
            problems.append(f"  {url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError(f"could not download {os.path.basename(dest)}:\n" + "\n".join(problems))


# -- Fashion-MNIST and MNIST --------------------------------------------------------------------
def _candidates(base: str):
    """The names one IDX file may have: as published, gunzipped, or with LeCun's dotted names."""
    dotted = base.replace("-idx", ".idx")
    return (base + ".gz", base, dotted + ".gz", dotted)


class _IDXDataset(ArrayDataset):
    """An MNIST-layout dataset: a train and a test split, one IDX file of images and one of labels.

    Subclasses set ``name`` (folder name), ``classes``, ``env_subdirs``, ``system_dirs``,
    ``mirrors`` (base URLs, tried in order) and ``resources`` (checksums of each .gz file).
    """

    name = ""
    env_subdirs: tuple = ()
    system_dirs: tuple = ()
    mirrors: tuple = ()
    resources: dict = {}
    install_hint = ""
    splits = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root=None, train: bool = True, transform=None, download: bool = True):
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path or None, got {type(root).__name__}")
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        if not isinstance(download, bool):
            raise TypeError(f"download must be a bool, got {type(download).__name__}")
        self.train = train
        image_path, label_path = self._locate(root, download)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{image_path!r}: expected uint8 images of shape (N, H, W), got "
                             f"{images.dtype} of shape {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8 or len(labels) != len(images):
            raise ValueError(f"{label_path!r}: expected {len(images)} uint8 labels to match "
                             f"{image_path!r}, got {labels.dtype} of shape {labels.shape}")
        if labels.size and int(labels.max()) >= len(self.classes):
            raise ValueError(f"{label_path!r}: label {int(labels.max())} out of range for "
                             f"{len(self.classes)} classes")
        self.root = os.path.dirname(image_path)
        self.files = (image_path, label_path)
        super().__init__(images, labels, transform=transform, classes=self.classes)

    @classmethod
    def search_dirs(cls, root=None) -> list:
        """The folders looked in, in order (see the module docstring)."""
        if root is not None:
            root = os.fspath(root)
            dirs = [root, os.path.join(root, cls.name)]
        else:
            env = os.environ.get(DATA_ENV)
            dirs = []
            if env:
                dirs = [os.path.join(env, sub) if sub else env for sub in cls.env_subdirs]
        dirs.append(os.path.join(cache_root(), cls.name))
        dirs.extend(cls.system_dirs)
        return dirs

    @staticmethod
    def _find_in(folder: str, base: str):
        for name in _candidates(base):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
        return None

    def _locate(self, root, download: bool):
        bases = self.splits[self.train]
        dirs = self.search_dirs(root)
        for folder in dirs:
            paths = [self._find_in(folder, b) for b in bases]
            if all(paths):
                return paths
        where = "\n".join(f"  {d}" for d in dirs)
        if not download:
            raise RuntimeError(f"{type(self).__name__}: files {', '.join(bases)} (.gz) not found "
                               f"in:\n{where}\n(download=False). {self.install_hint}")
        target = os.path.join(cache_root(), self.name)
        paths = []
        try:
            for base in bases:
                gz = base + ".gz"
                dest = os.path.join(target, gz)
                if not os.path.isfile(dest):
                    download_file([m + gz for m in self.mirrors], dest, self.resources[gz])
                paths.append(dest)
        except RuntimeError as exc:
            raise RuntimeError(f"{type(self).__name__}: the data is not on this machine and "
                               f"could not be downloaded.\nLooked in:\n{where}\n"
                               f"{exc}\n{self.install_hint}") from None
        return paths


class FashionMNIST(_IDXDataset):
    """Zalando's Fashion-MNIST: 28x28 grey images of 10 kinds of clothing, 60000 + 10000.

    ``FashionMNIST(root=None, train=True, transform=None, download=True)``; see the module
    docstring for where the files are looked for. ``ds.images`` (uint8, N x 28 x 28),
    ``ds.targets`` (int64), ``ds.classes`` (names of labels 0-9), ``ds[i] -> (float32 (1, 28, 28)
    in [0, 1], int)``.
    """

    name = "fashion-mnist"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    env_subdirs = ("", "fashion-mnist")
    system_dirs = (os.path.join(SYSTEM_DATA_DIR, "fashion-mnist"),)
    # The README's download links first, then the copy in the project's repository.
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/"
               "fashion/")
    # What was verified: "md5" is the publisher's checksum of each .gz, copied from the upstream
    # README that Debian ships (/usr/share/doc/dataset-fashion-mnist/README.md.gz). "raw_sha256"
    # (of the IDX content after gunzip) was computed here from Debian's copy; that copy was
    # recompressed (its .gz bytes differ from the published ones, so no SHA-256 of the original
    # .gz could be computed and none is given), but its content hashes are the same as those that
    # other projects publish for the original files.
    resources = {
        "train-images-idx3-ubyte.gz": {
            "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "raw_sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
        "train-labels-idx1-ubyte.gz": {
            "md5": "25c81989df183df01b3e8a0aad5dffbe",
            "raw_sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
        "t10k-images-idx3-ubyte.gz": {
            "md5": "bef4ecab320f06d8554ea6380940ec79",
            "raw_sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "bb300cfdad3c16e7a12a480ee83cd310",
            "raw_sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    }
    install_hint = ("To get the data: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
                    "or put the four *-idx?-ubyte.gz files in a folder and set PYENGINE_DATA to "
                    "it (or pass root=).")


class MNIST(_IDXDataset):
    """LeCun, Cortes and Burges' MNIST handwritten digits: 28x28 grey images, 60000 + 10000.

    Same interface as :class:`FashionMNIST`; its folder name is ``mnist``. No Debian package
    ships MNIST, so there is no system folder.
    """

    name = "mnist"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]
    env_subdirs = ("mnist",)
    system_dirs = ()
    # The original site first (it often refuses automated downloads), then the copies that
    # PyTorch's and TensorFlow's dataset loaders use; all serve the same bytes.
    mirrors = ("http://yann.lecun.com/exdb/mnist/",
               "https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
    # What was verified: nothing here could be computed on this machine (no copy of MNIST is
    # installed and downloads are not possible). The MD5s are the ones torchvision and many other
    # loaders check; the SHA-256 sums of the .gz files and of their gunzipped content are the ones
    # published, identically, by several independent projects. A download must match all three.
    resources = {
        "train-images-idx3-ubyte.gz": {
            "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "raw_sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
        "train-labels-idx1-ubyte.gz": {
            "md5": "d53e105ee54ea40749a09fcbcd1e9432",
            "sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "raw_sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
        "t10k-images-idx3-ubyte.gz": {
            "md5": "9fb629c4189551a2d022fa330f9573f3",
            "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "raw_sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "ec29112dd5afa0611ce80d1b7f02629c",
            "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "raw_sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    }
    install_hint = ("To get the data: put the four MNIST *-idx?-ubyte.gz files in "
                    "$PYENGINE_DATA/mnist (or pass root=).")


__all__ = ["ArrayDataset", "FashionMNIST", "MNIST", "fetch_url", "download_file", "cache_root"]
