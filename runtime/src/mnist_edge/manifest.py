"""Reading ``manifest.json`` (docs/manifest.md, schema version 1) and checking files against it.

    m = read_manifest(Path("artifacts"))          # a folder or the manifest.json itself
    entry = m.files[0]                            # preference order: int8 TFLite first
    data = m.read_verified(entry)                 # bytes, after size and sha256 match
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_edge.digest import sha256_hex
from mnist_edge.errors import IntegrityError, ModelError
from mnist_edge.modelfile import FORMATS, check_model_bytes, read_model_bytes

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSIONS = (1,)
MAX_MANIFEST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    """One exported file as the manifest describes it."""

    key: str                 # tflite_int8, tflite_float32, onnx_float32, onnx_int8
    path: Path               # absolute: the manifest's folder joined with its relative path
    format: str              # tflite | onnx
    precision: str           # int8 | float32
    size: int
    sha256: str
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: its path, its exported files in preference order and the raw dict."""

    path: Path
    files: tuple[FileEntry, ...]
    data: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.data.get("labels") or [str(d) for d in range(10)])

    def read_verified(self, entry: FileEntry) -> bytes:
        """The file's bytes once its size, sha256 and format header match the manifest."""
        data = read_model_bytes(entry.path)
        problem = mismatch(entry, data)
        if problem:
            raise IntegrityError(f"{entry.path}: {problem}; the file is corrupt, truncated or "
                                 f"from another export, copy the artifacts folder again")
        check_model_bytes(entry.path, data, entry.format)
        return data

    def check(self, entry: FileEntry) -> str | None:
        """What is wrong with the file of ``entry`` (missing, size, sha256, header), or None."""
        try:
            self.read_verified(entry)
        except ModelError as exc:
            return str(exc).removeprefix(f"{entry.path}: ")
        return None


def mismatch(entry: FileEntry, data: bytes) -> str | None:
    """What differs between ``data`` and the manifest's size and sha256, or None."""
    if len(data) != entry.size:
        return f"size {len(data)} bytes but the manifest says {entry.size}"
    digest = sha256_hex(data)
    if digest != entry.sha256.lower():
        return f"sha256 {digest[:12]}... but the manifest says {entry.sha256[:12]}..."
    return None


def manifest_path(path: Path) -> Path | None:
    """The manifest for a folder or a manifest.json path, None if ``path`` is neither."""
    if path.is_dir():
        return path / MANIFEST_NAME
    if path.name == MANIFEST_NAME or path.suffix.lower() == ".json":
        return path
    return None


def read_manifest(path: Path) -> Manifest:
    """Parse and validate a manifest (a folder holding manifest.json, or the file itself)."""
    mpath = manifest_path(path) or path
    try:
        if mpath.stat().st_size > MAX_MANIFEST_BYTES:
            raise ModelError(f"{mpath}: too large for a manifest ({mpath.stat().st_size} bytes)")
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        folder = mpath.parent
        where = f"{folder} has no {MANIFEST_NAME}" if folder.is_dir() else f"{mpath}: no such file"
        raise ModelError(f"{where}; run the export stage (make export) "
                         "or pass a model file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{mpath}: cannot read manifest ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{mpath}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                         "the manifest is corrupt, export again") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{mpath}: a manifest is a JSON object, found {type(raw).__name__}")
    version = raw.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        raise ModelError(f"{mpath}: unknown manifest schema_version {version!r} (this runtime "
                         f"reads {', '.join(map(str, SCHEMA_VERSIONS))}); upgrade mnist-edge")
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise ModelError(f"{mpath}: the manifest lists no exported files; export again")
    return Manifest(mpath, tuple(_entry(mpath, i, f) for i, f in enumerate(files)), raw)


def _entry(mpath: Path, index: int, f: Any) -> FileEntry:
    where = f"{mpath}: files[{index}]"
    if not isinstance(f, dict):
        raise ModelError(f"{where} is not an object")
    try:
        rel, fmt, size, digest = f["path"], f["format"], f["size"], f["sha256"]
    except KeyError as exc:
        raise ModelError(f"{where} lacks {exc.args[0]!r}; the manifest is incomplete, "
                         "export again") from None
    if fmt not in FORMATS:
        raise ModelError(f"{where} has unknown format {fmt!r} "
                         f"(expected one of {', '.join(FORMATS)})")
    if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ModelError(f"{where} has path {rel!r}; "
                         "paths must be relative to the manifest's folder")
    if not isinstance(size, int) or size < 0 or not isinstance(digest, str) or len(digest) != 64:
        raise ModelError(f"{where} has a malformed size or sha256")
    return FileEntry(key=str(f.get("key", rel)), path=mpath.parent / rel, format=fmt,
                     precision=str(f.get("precision", "")), size=size, sha256=digest,
                     input=dict(f.get("input") or {}), output=dict(f.get("output") or {}),
                     verification=dict(f.get("verification") or {}))


def verify_all(path: Path) -> list[tuple[FileEntry, str | None]]:
    """Check every file the manifest lists: (entry, None if it matches else what is wrong)."""
    manifest = read_manifest(path)
    return [(entry, manifest.check(entry)) for entry in manifest.files]
