"""manifest.json: the single description a device needs (the contract is docs/manifest.md)."""

from __future__ import annotations

import hashlib
import json
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from export.contract import LABELS, PREPROCESSING
from export.formats import FORMATS, ExportFormat
from export.verify import Verification

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1
SOURCE_MODEL = "model.keras"
# manifest key -> distribution name, for the versions recorded next to the files
_DISTRIBUTIONS = {"tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime",
                  "ai_edge_litert": "ai-edge-litert", "numpy": "numpy"}


def weights_sha256(model_keras: str | Path) -> str:
    """Hex sha256 of the weights inside a .keras zip (the zip itself also holds a save date)."""
    import zipfile

    try:
        with zipfile.ZipFile(model_keras) as z:
            return hashlib.sha256(z.read("model.weights.h5")).hexdigest()
    except (zipfile.BadZipFile, KeyError, OSError):
        return sha256_file(model_keras)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions(tensorflow: str, keras: str) -> dict[str, str | None]:
    """Versions of the libraries that made and verified the files (None if not installed)."""
    found = {"tensorflow": tensorflow, "keras": keras}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            found[key] = version(dist)
        except PackageNotFoundError:
            found[key] = None
    return found


def file_entry(result: Verification, folder: Path) -> dict:
    """The manifest entry of one verified file inside ``folder``."""
    fmt = result.fmt
    path = folder / fmt.filename
    return {
        "key": fmt.key,
        "path": fmt.filename,
        "format": fmt.kind,
        "precision": fmt.precision,
        "scheme": fmt.scheme,
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
        "input": result.input,
        "output": {**result.output, "activation": "softmax"},
        "verification": result.manifest_fields(),
    }


def build(entries: list[dict], source_model: Path, training: dict | None, keras_accuracy: float,
          library_versions: dict, settings: dict) -> dict:
    """The whole manifest; ``entries`` are put in the format table's order."""
    order = {f.key: i for i, f in enumerate(FORMATS)}
    return {
        "schema_version": SCHEMA_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "labels": list(LABELS),
        "preprocessing": dict(PREPROCESSING),
        "source_model": {"path": source_model.name, "sha256": sha256_file(source_model),
                         "size": source_model.stat().st_size,
                         "weights_sha256": weights_sha256(source_model)},
        "training": training,
        "versions": library_versions,
        "keras_reference": {"test_accuracy": round(keras_accuracy, 6)},
        "export": settings,
        "files": sorted(entries, key=lambda e: order[e["key"]]),
    }


def read(folder: str | Path) -> dict | None:
    """The manifest in ``folder``, or None when there is none or it is unreadable."""
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        return None
    return manifest


def problems(manifest: dict, folder: str | Path) -> list[str]:
    """Files the manifest lists whose size or sha256 does not match ``folder`` ([] when intact)."""
    found = []
    for entry in manifest.get("files", []):
        path = Path(folder) / entry["path"]
        if not path.is_file():
            found.append(f"{path}: missing")
        elif path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            found.append(f"{path}: size or sha256 differs from the manifest")
    return found


def is_fresh(folder: str | Path, formats: tuple[ExportFormat, ...] = FORMATS) -> bool:
    """True when ``folder`` holds an intact manifest for its current model.keras covering ``formats``."""
    folder = Path(folder)
    manifest = read(folder)
    model = folder / SOURCE_MODEL
    if manifest is None or not model.is_file():
        return False
    listed = {e["key"] for e in manifest.get("files", [])}
    return (manifest.get("source_model", {}).get("sha256") == sha256_file(model)
            and all(f.key in listed for f in formats) and not problems(manifest, folder))


def carried_over(folder: Path, source_sha256: str, keys: set[str]) -> list[dict]:
    """Entries of the current manifest worth keeping: same source model, file intact, key in ``keys``."""
    manifest = read(folder)
    if manifest is None or manifest.get("source_model", {}).get("sha256") != source_sha256:
        return []
    return [e for e in manifest.get("files", []) if e.get("key") in keys and not problems({"files": [e]}, folder)]
