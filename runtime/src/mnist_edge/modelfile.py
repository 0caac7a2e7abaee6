"""Reading a model file safely: size limits and each format's own structural check.

A malformed model can crash a native interpreter, taking the Python process with it, so
every file is read here first and checked before any interpreter sees its bytes:

- TFLite is a FlatBuffer with the file identifier ``TFL3`` at bytes 4..8 and a root table
  offset inside the file (the interpreters then run the full FlatBuffer verifier);
- ONNX is a protobuf ``ModelProto``: its top-level fields are walked to the end of the file
  (a truncated file leaves a field running past the end) and it must hold a graph.

Files loaded through a manifest are also checked against its size and sha256 (manifest.py).
"""

from __future__ import annotations

from pathlib import Path

from mnist_edge.errors import ModelError

FORMATS = ("tflite", "onnx")
SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}
# far above any MNIST model; a guard against reading a disk image
MAX_MODEL_BYTES = 512 * 1024 * 1024
_TFLITE_ID = b"TFL3"
_ONNX_GRAPH_FIELD = 7


def read_model_bytes(path: Path) -> bytes:
    """The whole file, with one-line errors for missing, unreadable, empty or oversized files."""
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelError(f"{path}: {size} bytes is too large for a model file "
                             f"(limit {MAX_MODEL_BYTES}); is this the right file?")
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file; pass a .tflite, an .onnx, "
                         "an artifacts folder or its manifest.json") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder without manifest.json; pass the artifacts folder "
                         "written by the export stage, or a model file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc})") from None
    if not data:
        raise ModelError(f"{path}: model file is empty (0 bytes); copy it again from the artifacts")
    return data


def format_of(path: Path, data: bytes) -> str:
    """'tflite' or 'onnx', from the bytes themselves (the suffix only breaks ties)."""
    if len(data) >= 8 and data[4:8] == _TFLITE_ID:
        return "tflite"
    if _looks_like_onnx(data):
        return "onnx"
    hint = SUFFIXES.get(path.suffix.lower())
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


def _walk_fields(data: bytes, start: int, end: int) -> set[int]:
    """Field numbers of a protobuf message in data[start:end]; ValueError if malformed."""
    seen, pos = set(), start
    while pos < end:
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past the end")
        seen.add(field)
    return seen


def _looks_like_onnx(data: bytes) -> bool:
    """A ModelProto walks cleanly to the end of the file and holds a graph (field 7)."""
    try:
        return _ONNX_GRAPH_FIELD in _walk_fields(data, 0, len(data))
    except ValueError:
        return False

