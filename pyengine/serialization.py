"""pe.save / pe.load: checkpoints and state dicts in a file format that cannot run code.

What can be saved: nested dicts, lists and tuples of ``pe.Tensor``s, numpy arrays, numpy scalars,
Python ints, floats, strings, bools and None (dict keys: str, int, float, bool or None). That
covers model and optimizer state dicts, scheduler states, epoch counters and RNG states.

The file is a zip archive (stored, not compressed):

    manifest.json     {"format": "pyengine.save", "version": 1, "root": <the structure>,
                       "arrays": [{"name": "arrays/0.npy", "dtype": "<f4", "shape": [..]}, ..]}
    arrays/<i>.npy    one numpy .npy file per tensor or array, written with allow_pickle=False

followed, as the zip's archive comment, by ``pyengine-sha256:<64 hex digits>``: the SHA-256 of
every byte before the digits. Nothing is pickled, object arrays are refused when saving and when
loading, and the structure is JSON, so loading a file never executes code. The checksum turns
any truncation or flipped byte into a clear error instead of wrong numbers. ``np.load`` can still
open the file to inspect the arrays.

Writes are atomic: the file is written under a temporary name in the same folder, flushed and
fsynced, then renamed over the target, so an interrupted save leaves the previous file intact.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import numbers
import os
import secrets
import zipfile

import numpy as np

from .device import check_device
from .tensor import Tensor

FORMAT_NAME = "pyengine.save"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_TRAILER_PREFIX = b"pyengine-sha256:"
_DIGEST_LEN = 64
_TRAILER_LEN = len(_TRAILER_PREFIX) + _DIGEST_LEN
# dtype kinds stored: bool, signed / unsigned integers, floating point, complex
_ARRAY_KINDS = "biufc"
_MAX_MANIFEST_BYTES = 1 << 28


class _Corrupt(Exception):
    """Raised while parsing a file that does not hold what pe.save writes."""


def _fspath(path) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


# -- encoding -----------------------------------------------------------------------------------
def _encode_key(key, where: str):
    if key is None or isinstance(key, (bool, str)):
        return _encode(key, where, [], set())
    if isinstance(key, numbers.Integral):
        return {"t": "int", "v": str(int(key))}
    if isinstance(key, float):
        return {"t": "float", "v": float.hex(key)}
    raise TypeError(f"pe.save: dict key {key!r} at {where} has type {type(key).__name__}; "
                    f"keys must be str, int, float, bool or None")


def _add_array(arr: np.ndarray, where: str, arrays: list) -> int:
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(f"pe.save: array at {where} has dtype {arr.dtype}; only bool, integer, "
                        f"floating-point and complex arrays can be saved (object arrays would "
                        f"need pickle)")
    arrays.append(arr)
    return len(arrays) - 1


def _encode(obj, where: str, arrays: list, active: set):
    """The JSON node for ``obj``; arrays are appended to ``arrays`` and referenced by index."""
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, Tensor):
        arr = np.asarray(obj.detach().numpy())
        return {"t": "tensor", "array": _add_array(arr, where, arrays),
                "device": obj.device, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray):
        return {"t": "ndarray", "array": _add_array(obj, where, arrays)}
    if isinstance(obj, np.generic):
        return {"t": "npscalar", "array": _add_array(np.asarray(obj), where, arrays)}
    if isinstance(obj, int):
        # as a string: JSON readers other than Python's lose integers beyond 2**53
        return {"t": "int", "v": str(obj)}
    if isinstance(obj, float):
        return {"t": "float", "v": float.hex(obj)}  # exact, and covers inf and nan
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise ValueError(f"pe.save: the object at {where} contains itself")
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = [[_encode_key(k, where), _encode(v, f"{where}[{k!r}]", arrays, active)]
                         for k, v in obj.items()]
                return {"t": "dict", "items": items}
            items = [_encode(v, f"{where}[{i}]", arrays, active) for i, v in enumerate(obj)]
            return {"t": "list" if isinstance(obj, list) else "tuple", "items": items}
        finally:
            active.discard(id(obj))
    raise TypeError(f"pe.save: cannot save {type(obj).__name__} at {where}; supported: "
                    f"dict, list, tuple, pe.Tensor, numpy arrays and scalars, int, float, str, "
                    f"bool, None")


def _write_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    """Write one array as a .npy member (never pickled)."""
    with zf.open(name, "w", force_zip64=arr.nbytes > (1 << 30)) as member:
        np.lib.format.write_array(member, arr, allow_pickle=False)


def _seal(f) -> None:
    """Replace the placeholder digits at the end of ``f`` by the SHA-256 of what precedes them."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    digest = hashlib.sha256()
    left = size - _DIGEST_LEN
    while left:
        block = f.read(min(1 << 20, left))
        if not block:
            raise OSError("file shrank while being checksummed")
        digest.update(block)
        left -= len(block)
    f.seek(size - _DIGEST_LEN)
    f.write(digest.hexdigest().encode("ascii"))


def save(obj, path) -> None:
    """Save ``obj`` (a state dict or a checkpoint: nested containers of tensors, arrays and
    plain values) to ``path``, atomically.

    >>> pe.save({"w": pe.tensor([1.0, 2.0]), "epoch": 3}, "ckpt.pe")
    >>> ckpt = pe.load("ckpt.pe")
    >>> ckpt["epoch"], ckpt["w"].dtype
    (3, dtype('float32'))

    Raises TypeError naming the offending entry (e.g. ``obj['opt'][2]``) for values it cannot
    store, before touching the file system.
    """
    path = _fspath(path)
    arrays: list = []
    root = _encode(obj, "obj", arrays, set())
    manifest = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root,
        "arrays": [{"name": f"arrays/{i}.npy", "dtype": a.dtype.str, "shape": list(a.shape)}
                   for i, a in enumerate(arrays)],
    }
    with atomic_file(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.comment = _TRAILER_PREFIX + b"0" * _DIGEST_LEN
            zf.writestr(MANIFEST, json.dumps(manifest, separators=(",", ":")))
            for entry, arr in zip(manifest["arrays"], arrays):
                _write_array(zf, entry["name"], arr)
        _seal(f)


@contextlib.contextmanager
def atomic_file(path):
    """A binary file (read-write) that replaces ``path`` only when the ``with`` block ends
    normally: written under a temporary name beside it, synced, renamed over it, the folder
    synced. On any error (KeyboardInterrupt too) ``path`` is untouched and the temporary file
    removed, so a reader never sees a partial file."""
    path = _fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    # not tempfile.mkstemp: its files are private (0600); this one gets the umask's permissions
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    """Make the rename durable; some file systems cannot fsync a folder, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- decoding -----------------------------------------------------------------------------------
class _TensorSpec:
    """A tensor read from the file, made into a pe.Tensor once the whole file has parsed."""

    __slots__ = ("array", "device", "requires_grad")

    def __init__(self, array, device, requires_grad):
        self.array, self.device, self.requires_grad = array, device, requires_grad


def _verify_file(f, path: str) -> None:
    """Check the signature and the trailing SHA-256; ValueError says what is wrong."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    head = f.read(4)
    if head[:1] == b"\x80":  # the PROTO opcode that starts every pickle since protocol 2
        raise ValueError(f"{path!r} looks like a pickle file, not a pyengine file; pyengine "
                         f"never unpickles (load it with the tool that wrote it)")
    if head != b"PK\x03\x04":
        raise ValueError(f"{path!r} is not a pyengine file: it does not start with a zip "
                         f"signature (first bytes {head.hex() or 'none: empty file'})")
    if size < _TRAILER_LEN + 22:
        raise ValueError(f"{path!r} is truncated ({size} bytes)")
    f.seek(size - _TRAILER_LEN)
    trailer = f.read(_TRAILER_LEN)
    if not trailer.startswith(_TRAILER_PREFIX):
        raise ValueError(f"{path!r} is truncated, or a zip file not written by pe.save: it does "
                         f"not end with pyengine's checksum")
    f.seek(0)
    digest = hashlib.sha256()
    left = size - _DIGEST_LEN
    while left:
        block = f.read(min(1 << 20, left))
        digest.update(block)
        left -= len(block)
    if digest.hexdigest().encode("ascii") != trailer[len(_TRAILER_PREFIX):]:
        raise ValueError(f"{path!r} is corrupt: its SHA-256 does not match the one stored when it "
                         f"was saved (damaged or modified file)")
    f.seek(0)


def _read_manifest(zf: zipfile.ZipFile) -> dict:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise _Corrupt(f"a zip file without {MANIFEST}: not written by pe.save "
                       f"(torch.save files are not supported)") from None
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise _Corrupt(f"{MANIFEST} is implausibly large ({info.file_size} bytes)")
    manifest = json.loads(zf.read(info).decode("utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _Corrupt(f"{MANIFEST} does not describe a {FORMAT_NAME} file")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Corrupt(f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise _Corrupt(f"written in format version {version} by a newer pyengine; this one "
                       f"reads versions up to {FORMAT_VERSION}")
    if not isinstance(manifest.get("arrays"), list) or "root" not in manifest:
        raise _Corrupt(f"{MANIFEST} lacks 'arrays' or 'root'")
    return manifest


def _read_array(zf: zipfile.ZipFile, entry) -> np.ndarray:
    """Read one .npy member and check it against its manifest entry."""
    if not isinstance(entry, dict) or not {"name", "dtype", "shape"} <= set(entry):
        raise _Corrupt(f"bad array entry {entry!r}")
    name = entry["name"]
    try:
        dtype = np.dtype(entry["dtype"])
        shape = tuple(int(d) for d in entry["shape"])
    except (TypeError, ValueError):
        raise _Corrupt(f"array {name!r}: bad dtype or shape in the manifest") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.hasobject or any(d < 0 for d in shape):
        raise _Corrupt(f"array {name!r}: unsupported dtype {dtype} or shape {shape}")
    raw = zf.read(name)
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        hshape, fortran, hdtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise _Corrupt(f"array {name!r}: unsupported .npy version {version}")
    if tuple(hshape) != shape or hdtype != dtype:
        raise _Corrupt(f"array {name!r}: header says {hdtype} {tuple(hshape)}, the manifest "
                       f"{dtype} {shape}")
    # checked before numpy allocates the array, so a lying header cannot ask for terabytes
    if len(raw) - stream.tell() != math.prod(shape) * dtype.itemsize:
        raise _Corrupt(f"array {name!r}: {len(raw) - stream.tell()} data bytes for {dtype} "
                       f"{shape}")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def _decode(node, arrays: list):
    """Rebuild the structure of one manifest node (tensors as _TensorSpec)."""
    if not isinstance(node, dict) or not isinstance(node.get("t"), str):
        raise _Corrupt(f"bad structure node {str(node)[:80]!r}")
    kind = node["t"]
    if kind == "none":
        return None
    if kind == "bool":
        if not isinstance(node.get("v"), bool):
            raise _Corrupt("bad bool node")
        return node["v"]
    if kind == "int":
        return int(node["v"])
    if kind == "float":
        return float.fromhex(node["v"])
    if kind == "str":
        if not isinstance(node.get("v"), str):
            raise _Corrupt("bad str node")
        return node["v"]
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        out = {}
        for pair in node["items"]:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _Corrupt("bad dict item")
            key = _decode(pair[0], arrays)
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise _Corrupt("bad dict key")
            out[key] = _decode(pair[1], arrays)
        return out
    if kind in ("tensor", "ndarray", "npscalar"):
        index = node.get("array")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays):
            raise _Corrupt(f"array reference {index!r} out of range")
        arr = arrays[index]
        if kind == "ndarray":
            return arr
        if kind == "npscalar":
            if arr.ndim != 0:
                raise _Corrupt("a numpy scalar stored with a non-scalar shape")
            return arr[()]
        device, requires_grad = node.get("device"), node.get("requires_grad")
        if not isinstance(device, str) or not isinstance(requires_grad, bool):
            raise _Corrupt("bad tensor node")
        return _TensorSpec(arr, device, requires_grad)
    raise _Corrupt(f"unknown node type {kind!r}")


def _build(obj, map_location):
    """Turn the _TensorSpecs of a decoded structure into pe.Tensors on their devices."""
    if isinstance(obj, _TensorSpec):
        device = map_location or obj.device
        t = Tensor(obj.array)
        if device != "cpu":
            try:
                t = t.to(device)
            except (RuntimeError, ValueError) as exc:
                raise RuntimeError(f"pe.load: cannot put a saved tensor on {device!r} ({exc}); "
                                   f"pass map_location='cpu'") from None
        if obj.requires_grad:
            t.requires_grad_(True)
        return t
    if isinstance(obj, dict):
        return {k: _build(v, map_location) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_build(v, map_location) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_build(v, map_location) for v in obj)
    return obj


def load(path, map_location: str | None = None):
    """Load what :func:`save` wrote: tensors come back as ``pe.Tensor`` (same dtype, values and
    requires_grad), arrays as numpy arrays, containers and plain values as they were.

    ``map_location``: None puts each tensor on the device it was saved from; 'cpu', 'cuda' or
    'cuda_emu' puts every tensor there. A truncated, damaged or foreign file (including pickle
    and ``torch.save`` files) raises ValueError naming the path and the problem.
    """
    path = _fspath(path)
    if map_location is not None:
        map_location = check_device(map_location)
    with open(path, "rb") as f:
        _verify_file(f, path)
        try:
            with zipfile.ZipFile(f) as zf:
                manifest = _read_manifest(zf)
                arrays = [_read_array(zf, entry) for entry in manifest["arrays"]]
                tree = _decode(manifest["root"], arrays)
        # a file that passed the checksum yet fails here was not made by pe.save
        except (_Corrupt, zipfile.BadZipFile, KeyError, EOFError, UnicodeDecodeError,
                ValueError, TypeError, OverflowError, RecursionError, NotImplementedError,
                RuntimeError) as exc:
            raise ValueError(f"{path!r} is not a valid pyengine file: {exc}") from None
    return _build(tree, map_location)


__all__ = ["save", "load", "FORMAT_VERSION"]
