"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the elements in
row-major order, big-endian:

    bytes 0-1  zero
    byte  2    element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
               0x0E float64
    byte  3    number of dimensions D
    then       D big-endian uint32 sizes, then prod(sizes) elements

Files may be gzip-compressed; :func:`read_idx` recognises gzip by its magic bytes, so the file
name does not matter. The header is checked against the amount of data actually present, so a
truncated or padded file is reported instead of being read as wrong data.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

# element type code -> big-endian numpy dtype, as the IDX format defines them
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"


def _fspath(path, name="path") -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


def is_gzip(path) -> bool:
    """True if the file at ``path`` starts with the gzip magic bytes."""
    with open(_fspath(path), "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _read_exact(f, n: int, path: str, what: str) -> bytearray:
    """Read exactly ``n`` bytes into a fresh (writable) buffer, or say the file is truncated.

    Reads in chunks instead of allocating ``n`` bytes first, so a corrupt header that announces
    terabytes fails on the missing data rather than on the allocation.
    """
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(1 << 22, n - len(buf)))
        if not chunk:
            raise ValueError(f"IDX file {path!r} is truncated: {what} needs {n} bytes, "
                             f"only {len(buf)} present")
        buf += chunk
    return buf


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-byte-order numpy array.

    >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> images.shape, images.dtype
    ((10000, 28, 28), dtype('uint8'))

    Raises ValueError naming the file when the magic number, element type, header or data size
    is wrong, or when the gzip stream is corrupt.
    """
    path = _fspath(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        kind = "gzip-compressed IDX" if compressed else "IDX"
        try:
            size = None if compressed else os.fstat(raw.fileno()).st_size
            return _read_stream(f, path, kind, size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            # gzip reports a cut-off or damaged stream with these; callers get one error type
            raise ValueError(f"{kind} file {path!r} is corrupt or truncated: gzip error: "
                             f"{exc}") from None
        finally:
            if compressed:
                f.close()


def _read_stream(f, path: str, kind: str, size: int | None) -> np.ndarray:
    """Parse one IDX stream; ``size`` is the file size for raw files (None for gzip)."""
    head = f.read(4)
    if len(head) < 4:
        raise ValueError(f"{kind} file {path!r} is truncated: {len(head)} bytes, the magic "
                         f"number alone needs 4")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path!r} is not an IDX file: magic number {head.hex()} does not "
                         f"start with two zero bytes")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"IDX file {path!r} has unknown element type 0x{code:02X} "
                         f"(known: {known})")
    dims = struct.unpack(f">{ndim}I", bytes(_read_exact(f, 4 * ndim, path,
                                                          f"the header of {ndim} dimensions")))
    dtype = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d
    nbytes = count * dtype.itemsize
    if size is not None and size != 4 + 4 * ndim + nbytes:
        state = "truncated" if size < 4 + 4 * ndim + nbytes else "longer than its header says"
        raise ValueError(f"IDX file {path!r} is {state}: its header announces shape "
                         f"{tuple(dims)} of {dtype.name} ({4 + 4 * ndim + nbytes} bytes in all), "
                         f"the file has {size} bytes")
    data = _read_exact(f, nbytes, path, f"shape {tuple(dims)} of {dtype.name}")
    extra = f.read(1)
    if extra:
        raise ValueError(f"IDX file {path!r} has data after the {nbytes} bytes that its header "
                         f"{tuple(dims)} of {dtype.name} announces (corrupt header?)")
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    # native order so downstream arithmetic does not pay for byte swapping
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def write_idx(path, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file; gzip-compressed if ``compress`` (default: path ends .gz).

    ``array`` must have one of the IDX element types (uint8, int8, int16, int32, float32,
    float64) and at most 255 dimensions of fewer than 2**32 elements each.
    """
    path = _fspath(path)
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODE_OF:
        names = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise TypeError(f"write_idx: array dtype {arr.dtype} has no IDX element type "
                        f"(supported: {names})")
    if arr.ndim > 255 or any(d >= 2 ** 32 for d in arr.shape):
        raise ValueError(f"write_idx: shape {arr.shape} does not fit an IDX header")
    if compress is None:
        compress = path.endswith(".gz")
    code = _CODE_OF[native]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if compress:
        # mtime=0 makes the bytes depend on the data only, so tests can hash them
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header)
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(header)
            f.write(payload)


__all__ = ["read_idx", "write_idx", "is_gzip", "IDX_DTYPES"]
