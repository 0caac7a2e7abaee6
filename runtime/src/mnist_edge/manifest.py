"""Reading ``manifest.json`` (docs/manifest.md, schema version 1) and checking files against it.

    m = read_manifest(Path("artifacts"))          # a folder or the manifest.json itself
    entry = m.files[0]                            # preference order: int8 TFLite first
    data = m.read_verified(entry)                 # bytes, after size and sha256 match

The manifest's types are checked here, once, by hand (a JSON-Schema library would cost start-up
time and memory on the device); keys this runtime does not know are ignored.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_edge.digest import sha256_hex
from mnist_edge.errors import IntegrityError, ModelError
from mnist_edge.formats import kind_names, kind_of_suffix
from mnist_edge.modelfile import (
    check_model_bytes,
    read_model_bytes,
    read_regular_file,
)

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSIONS = (1,)
MAX_MANIFEST_BYTES = 1024 * 1024
_EXPORT_AGAIN = "the manifest is corrupt or hand-edited, export again"
_PASS = "pass an artifacts folder, its manifest.json or a model file"
_HEX = frozenset("0123456789abcdefABCDEF")
_COPY_AGAIN = ("the file is corrupt, truncated or from another export, copy the artifacts folder "
               "again")


@dataclass(frozen=True)
class FileEntry:
    """One exported file as the manifest describes it."""

    key: str                 # a format key: tflite_int8, ..., reader_tflite_int8, ...
    path: Path               # absolute: the manifest's folder joined with its relative path
    format: str              # tflite | onnx
    precision: str           # int8 | float32 | float16 | dynamic-int8
    size: int
    sha256: str
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderSection:
    """The line reader's part of the manifest (``line_reader``): its files and contract."""

    files: tuple[FileEntry, ...]   # in preference order: int8 TFLite first
    height: int                    # rows of a strip
    stride: int                    # strip columns per output column
    classes: int                   # scores per output column
    blank: int                     # the blank's index among them
    data: dict[str, Any]           # the raw section


@dataclass(frozen=True)
class GateSection:
    """The "no digit" gate's part of the manifest (``gate``): its files and threshold."""

    files: tuple[FileEntry, ...]   # in preference order: int8 TFLite first
    classes: tuple[str, ...]       # the gate's outputs, in order: ("not a digit", "digit")
    threshold: float               # refuse when the digit probability is below it; in (0, 1)
    calibration: dict[str, Any]    # how the threshold was chosen
    data: dict[str, Any]           # the raw section


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: its path, its exported files in preference order and the raw dict."""

    path: Path
    files: tuple[FileEntry, ...]
    data: dict[str, Any]
    reader: ReaderSection | None = None  # None: the export holds no line reader
    gate: GateSection | None = None      # None: the export holds no "no digit" gate

    @property
    def all_files(self) -> tuple[FileEntry, ...]:
        """The classifier's files, then the line reader's, then the gate's."""
        return (self.files + (self.reader.files if self.reader else ())
                + (self.gate.files if self.gate else ()))

    @property
    def labels(self) -> list[str]:
        """The class names, in output order ('0'..'9' for digits)."""
        return list(self.data.get("labels") or [str(d) for d in range(10)])

    @property
    def kind(self) -> str:
        """What the classifier's images are: "digits" (handwritten digits: the digit photo path,
        the number reader, the gate) or another kind such as "items" (the generic photo path);
        "digits" when the manifest does not say."""
        section = self.data.get("dataset")
        return section["kind"] if isinstance(section, dict) else "digits"

    @property
    def dataset_name(self) -> str:
        """The training dataset's name ("MNIST" when the manifest does not say)."""
        section = self.data.get("dataset")
        if isinstance(section, dict):
            return str(section["name"])
        return "MNIST"

    def read_verified(self, entry: FileEntry) -> bytes:
        """The file's bytes once its size, sha256 and format header match the manifest."""
        self._check_inside(entry)
        try:  # the size first: a file of the wrong size is refused unread
            info = entry.path.stat()
        except (OSError, ValueError):  # missing, unreadable: read_model_bytes says which
            info = None
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size != entry.size:
            raise IntegrityError(f"{entry.path}: size {info.st_size} bytes but the manifest says "
                                 f"{entry.size}; {_COPY_AGAIN}")
        data = read_model_bytes(entry.path, entry.size)
        problem = mismatch(entry, data)
        if problem:
            raise IntegrityError(f"{entry.path}: {problem}; {_COPY_AGAIN}")
        check_model_bytes(entry.path, data, entry.format)
        return data

    def _check_inside(self, entry: FileEntry) -> None:
        """Refuse a file that resolves outside the manifest's folder: a symlink out of it."""
        folder = self.path.parent.resolve()  # the folder itself may be reached through a link
        try:
            target = entry.path.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise ModelError(f"{entry.path}: cannot resolve the path ({exc}); "
                             "copy the artifacts folder again") from None
        if target == folder or not target.is_relative_to(folder):
            raise ModelError(f"{entry.path}: leads outside the manifest's folder (a symlink); "
                             "a manifest names only files inside its folder, put the file itself "
                             "there or copy the artifacts folder again")

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
    mpath = manifest_path(path)
    if mpath is None:
        raise ModelError(_not_a_manifest(path))
    try:
        data = read_regular_file(mpath, MAX_MANIFEST_BYTES, "manifest")
    except FileNotFoundError:
        folder = mpath.parent
        where = (f"{folder} has no {MANIFEST_NAME}; run the export stage (make export) "
                 "or pass a model file" if mpath.name == MANIFEST_NAME and folder.is_dir()
                 else f"{mpath}: no such file; {_PASS}")
        raise ModelError(where) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ModelError(f"{mpath}: cannot read manifest "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    raw = _parse(mpath, data)
    if not isinstance(raw, dict) or ("schema_version" not in raw and "files" not in raw):
        found = "no schema_version, no files" if isinstance(raw, dict) else f"JSON {_kind(raw)}"
        raise ModelError(f"{mpath}: not an mnist-edge manifest ({found}); {_PASS}")
    _check_version(mpath, raw)
    labels = raw.get("labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) == 10
                                   and all(isinstance(label, str) for label in labels)):
        found = (f"{_kind(labels)} of {len(labels)}" if isinstance(labels, list)
                 and len(labels) != 10 else _kind(labels))
        raise ModelError(f"{mpath}: labels must be an array of 10 strings, one per class, "
                         f"found {found}; {_EXPORT_AGAIN}")
    _check_dataset(mpath, raw.get("dataset"))
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise ModelError(f"{mpath}: the manifest lists no exported files; export again")
    return Manifest(mpath, tuple(_entry(mpath, i, f) for i, f in enumerate(files)), raw,
                    _reader(mpath, raw.get("line_reader")), _gate(mpath, raw.get("gate")))


def _check_dataset(mpath: Path, raw: Any) -> None:
    """The ``dataset`` section, when present: an object whose kind and name are strings."""
    if raw is None:
        return
    where = f"{mpath}: dataset"
    if not isinstance(raw, dict):
        raise ModelError(f"{where} must be an object, found {_kind(raw)}; {_EXPORT_AGAIN}")
    for key in ("kind", "name"):
        if not (isinstance(raw.get(key), str) and raw[key]):
            raise ModelError(f"{where}.{key} must be a non-empty string, found "
                             f"{_shown(raw.get(key))}; {_EXPORT_AGAIN}")


def _reader(mpath: Path, raw: Any) -> ReaderSection | None:
    """The ``line_reader`` section, type-checked; None when absent or null."""
    if raw is None:
        return None
    where, entries = _section_files(mpath, raw, "line_reader")
    inp, out = _object(where, raw, "input"), _object(where, raw, "output")
    height, stride, classes, blank = (_count(f"{where}.{part}", spec, name) for part, spec, name
                                      in (("input", inp, "height"), ("output", out, "stride"),
                                          ("output", out, "classes"), ("output", out, "blank")))
    if blank >= classes:
        raise ModelError(f"{where}.output.blank is {blank}, not one of the {classes} classes; "
                         f"{_EXPORT_AGAIN}")
    return ReaderSection(entries, height, stride, classes, blank, dict(raw))


def _gate(mpath: Path, raw: Any) -> GateSection | None:
    """The ``gate`` section, type-checked; None when absent or null."""
    if raw is None:
        return None
    where, entries = _section_files(mpath, raw, "gate")
    classes = raw.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) for c in classes) and "digit" in classes):
        raise ModelError(f"{where}.classes must be an array of at least 2 strings, one of them "
                         f"\"digit\", found {_shown(classes)}; {_EXPORT_AGAIN}")
    threshold = raw.get("threshold")
    if not (type(threshold) is float and 0.0 < threshold < 1.0):
        raise ModelError(f"{where}.threshold must be a number between 0 and 1 (exclusive), found "
                         f"{_shown(threshold)}; {_EXPORT_AGAIN}")
    return GateSection(entries, tuple(classes), threshold,
                       _object(where, raw, "calibration"), dict(raw))


def _section_files(mpath: Path, raw: Any, name: str) -> tuple[str, tuple[FileEntry, ...]]:
    """Where section ``name`` is (for messages), and its files; ModelError unless ``raw`` is an
    object with a ``files`` array."""
    where = f"{mpath}: {name}"
    if not isinstance(raw, dict):
        raise ModelError(f"{where} must be an object, found {_kind(raw)}; {_EXPORT_AGAIN}")
    files = raw.get("files")
    if not isinstance(files, list):
        raise ModelError(f"{where}.files must be an array, found {_kind(files)}; {_EXPORT_AGAIN}")
    return where, tuple(_entry(mpath, i, f, f"{name}.files") for i, f in enumerate(files))


def _count(where: str, spec: dict[str, Any], name: str) -> int:
    """``spec[name]``: a whole number (>= 0 for an index, > 0 for a size)."""
    value, least = spec.get(name), 0 if name == "blank" else 1
    if type(value) is not int or value < least:
        raise ModelError(f"{where}.{name} must be an integer of at least {least}, found "
                         f"{_shown(value)}; {_EXPORT_AGAIN}")
    return value


def _not_a_manifest(path: Path) -> str:
    """The message for a path that is neither a folder nor a .json file."""
    if not path.exists():
        return (f"{path}: no such file or folder; pass the artifacts folder written by the export "
                f"stage (make export) or its {MANIFEST_NAME}")
    if kind_of_suffix(path.suffix) is not None:
        return (f"{path}: is a model file, not an artifacts folder or {MANIFEST_NAME}; to check it "
                f"against its manifest, pass the folder that holds it: mnist-edge verify "
                f"{path.parent}")
    return (f"{path}: not an artifacts folder or {MANIFEST_NAME}; pass the folder written by the "
            f"export stage (make export) or its {MANIFEST_NAME}")


def _parse(mpath: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(f"{mpath}: not UTF-8 text ({exc.reason} at byte {exc.start}), so not a "
                         f"manifest; {_PASS}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{mpath}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                         "the manifest is corrupt, export again") from None
    except RecursionError:
        raise ModelError(f"{mpath}: JSON nested too deeply to read; {_EXPORT_AGAIN}") from None
    except ValueError:  # Python refuses to read integers of more than 4300 digits
        raise ModelError(f"{mpath}: not valid JSON (a number too long to read); "
                         f"{_EXPORT_AGAIN}") from None


def _check_version(mpath: Path, raw: dict[str, Any]) -> None:
    if "schema_version" not in raw:
        raise ModelError(f"{mpath}: lacks 'schema_version'; the manifest is incomplete, "
                         "export again")
    version = raw["schema_version"]
    readable = ", ".join(map(str, SCHEMA_VERSIONS))
    if type(version) is not int:  # JSON true and 1.0 compare equal to 1 in Python
        raise ModelError(f"{mpath}: schema_version must be the integer {readable}, "
                         f"found {_shown(version)}; {_EXPORT_AGAIN}")
    if version not in SCHEMA_VERSIONS:
        todo = "upgrade mnist-edge" if version > max(SCHEMA_VERSIONS) else _EXPORT_AGAIN
        raise ModelError(f"{mpath}: unknown manifest schema_version {version} (this runtime "
                         f"reads {readable}); {todo}")


def _entry(mpath: Path, index: int, f: Any, listed_in: str = "files") -> FileEntry:
    where = f"{mpath}: {listed_in}[{index}]"
    if not isinstance(f, dict):
        raise ModelError(f"{where} is not an object")
    try:
        rel, fmt, size, digest = f["path"], f["format"], f["size"], f["sha256"]
    except KeyError as exc:
        raise ModelError(f"{where} lacks {exc.args[0]!r}; the manifest is incomplete, "
                         "export again") from None
    if fmt not in kind_names():
        raise ModelError(f"{where} has unknown format {_shown(fmt)} "
                         f"(expected one of {', '.join(kind_names())})")
    rel = _text(where, "path", rel)
    if not Path(rel).parts or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ModelError(f"{where} has path {rel!r}; paths must be relative to the manifest's "
                         "folder and name a file in it")
    if (type(size) is not int or size < 0 or not isinstance(digest, str) or len(digest) != 64
            or not _HEX.issuperset(digest)):
        raise ModelError(f"{where} has a malformed size or sha256; {_EXPORT_AGAIN}")
    key, precision = f.get("key"), f.get("precision")
    return FileEntry(key=rel if key is None else _text(where, "key", key),
                     path=mpath.parent / rel, format=fmt,
                     precision="" if precision is None else _text(where, "precision", precision),
                     size=size, sha256=digest, input=_tensor(where, f, "input"),
                     output=_tensor(where, f, "output"),
                     verification=_object(where, f, "verification"))


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or "\0" in value:
        found = "one with a NUL byte" if isinstance(value, str) else _kind(value)
        raise ModelError(f"{where}.{name} must be a string without NUL bytes, found {found}; "
                         f"{_EXPORT_AGAIN}")
    return value


def _object(where: str, f: dict[str, Any], name: str) -> dict[str, Any]:
    """The object ``f[name]``, a copy; {} when absent or null."""
    value = f.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelError(f"{where}.{name} must be an object, found {_kind(value)}; "
                         f"{_EXPORT_AGAIN}")
    return dict(value)


def _tensor(where: str, f: dict[str, Any], name: str) -> dict[str, Any]:
    """A tensor spec (input, output): an object whose quantization, if any, has numbers."""
    spec = _object(where, f, name)
    q = spec.get("quantization")
    if q is not None and not (isinstance(q, dict) and _is_number(q.get("scale", 1.0))
                              and type(q.get("zero_point", 0)) is int):
        raise ModelError(f"{where}.{name}.quantization must be an object or null, with a numeric "
                         f"scale and an integer zero_point, found {_shown(q)}; {_EXPORT_AGAIN}")
    return spec


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)  # bool is an int in Python, not a number in JSON


def _kind(value: Any) -> str:
    """The JSON type of a parsed value, with its article: "an object", "a number", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def _shown(value: Any) -> str:
    """A JSON value as the manifest spells it, cut short: for messages."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def verify_all(path: Path) -> list[tuple[FileEntry, str | None]]:
    """Check every file the manifest lists, the line reader's and the gate's too: (entry, None if
    it matches else what is wrong)."""
    manifest = read_manifest(path)
    return [(entry, manifest.check(entry)) for entry in manifest.all_files]
