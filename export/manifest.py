"""manifest.json: the single description a device needs (the contract is docs/manifest.md)."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from common import formats
from common.artifacts import exported_from, read_export, weights_sha256
from export.contract import LABELS, PREPROCESSING
from export.gate_export import GateVerification
from export.line_export import ReaderVerification, section_contract
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


def file_entry(result: Verification | ReaderVerification | GateVerification,
               folder: Path) -> dict:
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
          library_versions: dict, settings: dict, dataset: dict | None = None) -> dict:
    """The whole manifest; ``entries`` are put in the format table's order; ``dataset``: what
    training recorded of its data (None: MNIST digits, recorded by nothing)."""
    order = {f.key: i for i, f in enumerate(formats.FORMATS)}
    out = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "labels": list(dataset["classes"]) if dataset is not None else list(LABELS),
        "preprocessing": preprocessing(dataset),
        "source_model": _source(source_model),
        "training": training,
        "versions": library_versions,
        "keras_reference": {"test_accuracy": round(keras_accuracy, 6)},
        "export": settings,
        "files": sorted(entries, key=lambda e: order[e["key"]]),
    }
    if dataset is not None:
        out["dataset"] = dataset_section(dataset)
    return out


def dataset_section(dataset: dict) -> dict:
    """The manifest's ``dataset`` (absent: MNIST digits): the name, the kind of images
    (``digits``: the runtime's digit photo path, reader and gate; ``items``: its generic path),
    where training read it and its test set's sha256."""
    return {k: dataset[k] for k in ("name", "kind", "source", "test_sha256")}


def preprocessing(dataset: dict | None) -> dict:
    """The input contract; the polarity names what the images show."""
    out = dict(PREPROCESSING)
    if dataset is not None and dataset["kind"] != "digits":
        out["polarity"] = "light item on dark background"
    return out


def carried_over(folder: Path, source_sha256: str, keys: set[str]) -> list[dict]:
    """Entries of the current manifest worth keeping: same source model, file intact, key in
    ``keys``."""
    manifest = read_export(folder)
    if manifest is None or exported_from(manifest) != source_sha256:
        return []
    return [raw for entry, raw in zip(manifest.files, manifest.data["files"], strict=True)
            if entry.key in keys and manifest.check(entry) is None]


def _source(path: Path) -> dict:
    """The ``source_model`` object: the .keras file the files were exported from."""
    return {"path": path.name, "sha256": sha256_file(path), "size": path.stat().st_size,
            "weights_sha256": weights_sha256(path)}


def reader_section(entries: list[dict], source_model: Path, keras_reference: dict | None) -> dict:
    """The ``line_reader`` section; ``entries`` are put in the reader table's order."""
    order = {f.key: i for i, f in enumerate(formats.READER_FORMATS)}
    return {"files": sorted(entries, key=lambda e: order[e["key"]]), **section_contract(),
            "source_model": _source(source_model), "keras_reference": keras_reference}


def carried_over_reader(folder: Path, source_sha256: str, keys: set[str]) -> dict | None:
    """The current manifest's ``line_reader`` section, if it comes from the same
    line_reader.keras, with only its intact files whose key is in ``keys``; else None."""
    return _carried_over_section(folder, "reader", source_sha256, keys)


def gate_section(entries: list[dict], source_model: Path, metrics: dict,
                 keras_reference: dict | None) -> dict:
    """The ``gate`` section; ``entries`` are put in the gate table's order, the classes, the
    threshold and how it was chosen are ``metrics``' (gate_metrics.json)."""
    order = {f.key: i for i, f in enumerate(formats.GATE_FORMATS)}
    return {"files": sorted(entries, key=lambda e: order[e["key"]]),
            "classes": list(metrics["classes"]), "threshold": metrics["threshold"],
            "calibration": metrics["calibration"], "source_model": _source(source_model),
            "keras_reference": keras_reference}


def carried_over_gate(folder: Path, source_sha256: str, keys: set[str]) -> dict | None:
    """The current manifest's ``gate`` section, if it comes from the same gate.keras, with only
    its intact files whose key is in ``keys``; else None."""
    return _carried_over_section(folder, "gate", source_sha256, keys)


def _carried_over_section(folder: Path, attribute: str, source_sha256: str,
                          keys: set[str]) -> dict | None:
    """The manifest section parsed as ``Manifest.<attribute>``, if its source_model is
    ``source_sha256``, with only its intact files whose key is in ``keys``; else None."""
    manifest = read_export(folder)
    section = getattr(manifest, attribute, None)
    if manifest is None or section is None:
        return None
    raw = section.data
    source = raw.get("source_model")
    if not isinstance(source, dict) or source.get("sha256") != source_sha256:
        return None
    files = [entry for entry, parsed in zip(raw["files"], section.files, strict=True)
             if parsed.key in keys and manifest.check(parsed) is None]
    return {**raw, "files": files}
