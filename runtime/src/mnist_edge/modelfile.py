"""Reading a model file safely: size limits and each format's own structural check.

A malformed model can crash a native interpreter, taking the Python process with it, so
every file is read here first and checked before any interpreter sees its bytes:

- TFLite is a FlatBuffer with the file identifier ``TFL3`` at bytes 4..8 and a root table
  offset inside the file (the interpreters then run the full FlatBuffer verifier);
- ONNX is a protobuf ``ModelProto``: its top-level fields are walked to the end of the file
  (a truncated file leaves a field running past the end) and it must hold a graph. A model that
  keeps tensor data in external files is refused: onnxruntime, given the bytes, would read those
  files from the current folder, unverified.

Only regular files are read (symlinks followed), and never more than a limit: /dev/zero never
ends, a named pipe blocks, and /proc files report a size of 0.

Files loaded through a manifest are also checked against its size and sha256 (manifest.py).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from mnist_edge.errors import ModelError
from mnist_edge.formats import kind_of_suffix

# far above any MNIST model; a guard against reading a disk image
MAX_MODEL_BYTES = 512 * 1024 * 1024
_READ_CHUNK = 1024 * 1024  # after the size the file reports, read on in chunks of this many bytes
_TFLITE_ID = b"TFL3"
_ONNX_GRAPH_FIELD = 7
# The ONNX messages that can hold tensors (onnx.proto): {message: {field number: message}}.
_ONNX_NESTED = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},           # TrainingInfoProto
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # node, initializer, sparse_initializer
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},           # values, indices
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 13, 14, 1


def read_model_bytes(path: Path, limit: int | None = None) -> bytes:
    """The whole file, with one-line errors for missing, unreadable, empty or oversized files
    (more than ``limit`` bytes, or MAX_MODEL_BYTES)."""
    limit = MAX_MODEL_BYTES if limit is None else min(limit, MAX_MODEL_BYTES)
    try:
        data = read_regular_file(path, limit, "model file")
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file; pass a .tflite, an .onnx, "
                         "an artifacts folder or its manifest.json") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder without manifest.json; pass the artifacts folder "
                         "written by the export stage, or a model file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ModelError(f"{path}: cannot read model file "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    if not data:
        raise ModelError(f"{path}: model file is empty (0 bytes); copy it again from the artifacts")
    return data


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` (symlinks followed) if it is a regular file of at most ``limit`` bytes.

    Raises OSError as open() does (IsADirectoryError for a folder), ModelError for a device,
    pipe or socket (refused before it is opened: opening some devices acts, a watchdog for one)
    and for more than ``limit`` bytes. ``what`` names the file in messages ("model file").
    """
    info = os.stat(path)
    _check_regular(path, info.st_mode, what)
    if info.st_size > limit:
        raise _too_large(path, f"{info.st_size} bytes", limit, what)
    # O_NONBLOCK: a pipe swapped in since the stat makes open() return, and fstat refuses it
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    chunks: list[bytes] = []
    with open(fd, "rb") as fh:
        _check_regular(path, os.fstat(fd).st_mode, what)
        # st_size is exact for most files, but /proc reports 0 and a file may grow: read on in
        # bounded chunks (read(limit + 1) would allocate the whole limit up front)
        total, want = 0, info.st_size + 1
        while total <= limit:
            chunk = fh.read(min(want, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total, want = total + len(chunk), _READ_CHUNK
    data = b"".join(chunks)  # one chunk: the same bytes object, no copy
    if len(data) > limit:
        raise _too_large(path, f"more than {limit} bytes", limit, what)
    return data


def _check_regular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a special file")
    raise ModelError(f"{path}: is {kind}, not a regular file; pass the {what} itself "
                     "(devices, pipes and links to them are never read)")


def _too_large(path: Path, size: str, limit: int, what: str) -> ModelError:
    return ModelError(f"{path}: {size} is too large for a {what} (limit {limit} bytes); "
                      "is this the right file?")


def format_of(path: Path, data: bytes) -> str:
    """'tflite' or 'onnx', from the bytes themselves (the suffix only breaks ties)."""
    if len(data) >= 8 and data[4:8] == _TFLITE_ID:
        return "tflite"
    if _looks_like_onnx(data):
        return "onnx"
    hint = kind_of_suffix(path.suffix)
    if hint == "tflite":
        raise ModelError(f"{path}: not a TFLite model (no 'TFL3' identifier at bytes 4..8); "
                         "the file is corrupt or truncated, copy it again")
    if hint == "onnx":
        raise ModelError(f"{path}: not an ONNX model (its protobuf structure is broken or it has "
                         "no graph); the file is corrupt or truncated, copy it again")
    raise ModelError(f"{path}: neither a TFLite nor an ONNX model; pass a .tflite or .onnx file "
                     "or an artifacts folder")


def check_model_bytes(path: Path, data: bytes, fmt: str) -> None:
    """Raise ModelError unless ``data`` passes the structural check of format ``fmt``."""
    if format_of(path, data) != fmt:
        raise ModelError(f"{path}: expected a {fmt} model but the file holds another format")
    if fmt == "tflite":
        root = int.from_bytes(data[0:4], "little")
        if not 8 <= root < len(data) - 4:
            raise ModelError(f"{path}: TFLite root table offset {root} lies outside the "
                             f"{len(data)}-byte file; the file is corrupt or truncated")
    elif _onnx_external_data(path, data):
        raise ModelError(f"{path}: the ONNX model keeps tensor data in external files, which "
                         "mnist-edge never reads (they are not verified, and would be looked for "
                         "in the current folder); save it self-contained: onnx.save_model(model, "
                         "path, save_as_external_data=False)")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("varint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field, wire type, value start, value end or varint value) of a protobuf message in
    data[start:end]; ValueError if malformed."""
    pos = start
    while pos < end:
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        begin = pos
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield field, wire, begin, value
            continue
        if wire == 1:
            pos += 8
        elif wire == 2:
            length, begin = _read_varint(data, pos)
            pos = begin + length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past the end")
        yield field, wire, begin, pos


def _walk_fields(data: bytes, start: int, end: int) -> set[int]:
    """Field numbers of a protobuf message in data[start:end]; ValueError if malformed."""
    return {field for field, _, _, _ in _fields(data, start, end)}


def _onnx_external_data(path: Path, data: bytes) -> bool:
    """Whether any tensor of the ONNX model (initializers, attributes, subgraphs, functions)
    has its data in an external file (TensorProto.data_location EXTERNAL, or external_data)."""
    stack = [("model", 0, len(data))]  # a list, not recursion: subgraphs may nest deeply
    try:
        while stack:
            kind, start, end = stack.pop()
            for field, wire, begin, value in _fields(data, start, end):
                if kind == "tensor":
                    if field == _TENSOR_EXTERNAL_DATA or (
                            field == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL):
                        return True
                elif wire == 2 and field in _ONNX_NESTED[kind]:
                    stack.append((_ONNX_NESTED[kind][field], begin, value))
    except ValueError:
        raise ModelError(f"{path}: not an ONNX model (a message inside its protobuf structure "
                         "is broken); the file is corrupt or truncated, copy it again") from None
    return False


def _looks_like_onnx(data: bytes) -> bool:
    """A ModelProto walks cleanly to the end of the file and holds a graph (field 7)."""
    try:
        return _ONNX_GRAPH_FIELD in _walk_fields(data, 0, len(data))
    except ValueError:
        return False

