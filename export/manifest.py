"""manifest.json: the single description a device needs (the contract is docs/manifest.md)."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from common import formats
from common.artifacts import exported_from, read_export, weights_sha256
from export.contract import LABELS, PREPROCESSING
from export.verify import Verification
from mnist_edge.digest import sha256_file

SCHEMA_VERSION = 1
# manifest key -> distribution name, for the versions recorded next to the files
_DISTRIBUTIONS = {"tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime",
                  "ai_edge_litert": "ai-edge-litert", "numpy": "numpy"}


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
    order = {f.key: i for i, f in enumerate(formats.FORMATS)}
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


def carried_over(folder: Path, source_sha256: str, keys: set[str]) -> list[dict]:
    """Entries of the current manifest worth keeping: same source model, file intact, key in
    ``keys``."""
    manifest = read_export(folder)
    if manifest is None or exported_from(manifest) != source_sha256:
        return []
    return [raw for entry, raw in zip(manifest.files, manifest.data["files"], strict=True)
            if entry.key in keys and manifest.check(entry) is None]
