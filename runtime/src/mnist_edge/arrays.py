""".npy arrays and IDX files of 28x28 images, read in chunks.

A ``.npy`` file is memory-mapped and an IDX file streamed (gzipped or raw), so a file of 100,000
images is classified in bounded memory.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mnist_edge.errors import InputError

FLOAT_TOLERANCE = 1e-3  # float pixels may stray this far outside [0, 1] (rounding) and are clipped

ARRAY_CHUNK = 4096  # images read from a .npy or IDX file at a time
NPY_MAGIC = b"\x93NUMPY"
GZIP_MAGIC = b"\x1f\x8b"


def idx_magic(head: bytes) -> bool:
    """IDX's magic number for unsigned bytes in 1 to 4 dimensions (the reader wants 2 or 3)."""
    return len(head) >= 4 and head[:3] == b"\x00\x00\x08" and 1 <= head[3] <= 4


def read_array_chunks(path: Path, kind: str) -> Iterator[np.ndarray]:
    """Chunks of images ([n,28,28] or [n,28,28,1]) from a .npy (``kind`` "npy") or IDX file."""
    if kind == "npy":
        yield from _npy_chunks(path)
    else:
        yield from _idx_chunks(path)


def _npy_chunks(path: Path) -> Iterator[np.ndarray]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # a corrupt header raises ValueError, SyntaxError, TokenError, ...
        text = str(exc).strip().splitlines()
        raise InputError(f"{path}: not a readable .npy array "
                         f"({text[0][:120] if text else type(exc).__name__})") from None
    if arr.shape in ((28, 28), (28, 28, 1)):
        yield np.asarray(arr)
        return
    if not (arr.ndim in (3, 4) and arr.shape[1:3] == (28, 28) and arr.shape[3:] in ((), (1,))):
        raise InputError(f"{path}: array has shape {arr.shape}; expected [N,28,28], [N,28,28,1] "
                         "or one [28,28] image")
    if len(arr) == 0:
        raise InputError(f"{path}: array holds 0 images; nothing to classify")
    if isinstance(arr, np.memmap) and arr.flags.c_contiguous:
        # plain reads: pages of the map would stay resident (and count in RSS) once touched,
        # so memory would grow with the file instead of staying at one chunk
        rows = int(np.prod(arr.shape[1:]))
        with open(path, "rb") as fh:
            fh.seek(arr.offset)
            for start in range(0, len(arr), ARRAY_CHUNK):
                n = min(ARRAY_CHUNK, len(arr) - start)
                yield np.fromfile(fh, dtype=arr.dtype, count=n * rows).reshape((n, *arr.shape[1:]))
        return
    for start in range(0, len(arr), ARRAY_CHUNK):
        yield np.asarray(arr[start:start + ARRAY_CHUNK])


def open_idx(path: Path) -> io.BufferedIOBase:
    """An open binary stream of the IDX file's bytes, gunzipped when it is gzipped."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (the caller closes it)


def read_idx_header(fh: io.BufferedIOBase, path: Path) -> tuple[int, ...]:
    """The shape an IDX stream declares (unsigned bytes, 1 to 4 dimensions), past its header."""
    head = fh.read(4)
    if not head:
        raise InputError(f"{path}: empty file, not an IDX file")
    if not idx_magic(head):
        raise InputError(f"{path}: bad magic number {head.hex()}; not an IDX file of unsigned "
                         "bytes (expected 000008 and 1 to 4 dimensions)")
    dims = fh.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise InputError(f"{path}: truncated IDX header")
    return tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4))


def _idx_chunks(path: Path) -> Iterator[np.ndarray]:
    try:
        with open_idx(path) as fh:
            shape = read_idx_header(fh, path)
            if len(shape) not in (2, 3):
                raise InputError(f"{path}: IDX file holds a {len(shape)}-D array; expected images "
                                 "[N,28,28] (magic 00000803)")
            if shape[-2:] != (28, 28):
                raise InputError(f"{path}: IDX images are {'x'.join(map(str, shape[-2:]))}, "
                                 "expected 28x28")
            count = shape[0] if len(shape) == 3 else 1
            if count == 0:
                raise InputError(f"{path}: IDX header declares 0 images; nothing to classify")
            for start in range(0, count, ARRAY_CHUNK):
                n = min(ARRAY_CHUNK, count - start)
                data = fh.read(n * 784)
                if len(data) < n * 784:
                    if len(data) >= 784:  # answer the complete images before reporting the cut
                        whole = len(data) // 784 * 784
                        yield np.frombuffer(data, np.uint8, whole).reshape(-1, 28, 28)
                    raise InputError(f"{path}: IDX file is truncated: header declares {count} "
                                     f"images, data ends after {start + len(data) // 784}")
                yield np.frombuffer(data, dtype=np.uint8).reshape(n, 28, 28)
    except InputError:
        raise
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read IDX file ({exc}); "
                         "it may be truncated or corrupt") from None
