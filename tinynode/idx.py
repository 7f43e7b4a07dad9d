"""The IDX file format of MNIST and Fashion-MNIST: read (every field checked) and write.

An IDX file is a tiny header (two zero bytes, a type code, the number of
dimensions, one big-endian uint32 per dimension) and then raw bytes.
:func:`read_idx` checks every field, so a damaged file fails here, by name,
not as a puzzling shape error deep in training.
"""

import gzip
import math
import os
import zlib

import numpy as np

from .errors import ArgumentError, DataError
from .fileio import atomic_file

__all__ = ["read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type MNIST uses


def read_idx(path):
    """Read an IDX file, gzip-compressed or raw, into a uint8 array.

    Compression is detected from the first two bytes (gzip's ``1f 8b``), not
    from the name: renamed and re-compressed copies are common. The layout is
    two zero bytes, a type code (``0x08``: unsigned byte), the number of
    dimensions, one big-endian uint32 per dimension, then exactly prod(dims)
    bytes. Anything else raises :class:`~tinynode.errors.DataError` naming the file.
    """
    path = _path(path)

    def damaged(problem):
        return DataError(
            f"{path}: {problem}. The file is damaged or is not an MNIST-format (IDX) "
            "file: delete it and download it again."
        )

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:  # truncated or corrupt gzip stream
            raise damaged(f"broken gzip data ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise damaged(f"bad magic number {data[:4].hex(' ')!r} (an IDX file starts with 00 00 08 <ndim>)")
    if data[2] != _UBYTE:
        raise damaged(f"type code 0x{data[2]:02x} is not 0x08 (unsigned byte), the type MNIST uses")
    ndim, header = data[3], 4 + 4 * data[3]
    if ndim == 0 or len(data) < header:
        raise damaged(f"bad header: {ndim} dimensions declared in a file of {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    need, have = math.prod(dims), len(data) - header
    if have != need:
        what = "truncated" if have < need else "extra bytes after the data"
        raise damaged(f"{what}: shape {dims} needs {need} data bytes, found {have}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()  # copy: writable


def write_idx(path, array):
    """Write a uint8 array as an IDX file (atomically), gzip-compressed if ``path`` ends in ``.gz``.

    The gzip timestamp is fixed (mtime=0), so the same array always gives the
    same bytes: that is what lets the bundled sample be checked by SHA-256.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ArgumentError(
            f"write_idx writes uint8 arrays of 1 to 255 dimensions, got {array.dtype} with shape {array.shape}"
        )
    data = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    try:
        with atomic_file(_path(path)) as f:
            f.write(data)
    except OSError as e:
        raise DataError(f"cannot write {path}: {e}") from None


def _path(path):
    try:
        return os.fspath(path)
    except TypeError:
        raise ArgumentError(f"an IDX file path must be a file name, got {path!r}") from None
