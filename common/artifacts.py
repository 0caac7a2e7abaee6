"""The artifacts folder: its file names, and whether its export is intact and current.

Training writes the model and its reports; the export stage adds the files of the format table
and ``manifest.json`` (read with the runtime's own reader, ``mnist_edge.manifest``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from common import formats
from mnist_edge.digest import sha256_file, sha256_hex
from mnist_edge.errors import ModelError
from mnist_edge.manifest import MANIFEST_NAME, Manifest, read_manifest

ROOT = Path(__file__).resolve().parents[1]  # the repository

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
MANIFEST_FILE = MANIFEST_NAME
# the line reader's training files (line_reader.keras is exported when present)
READER_FILE = "line_reader.keras"
READER_HISTORY_FILE = "line_reader_history.json"
READER_CURVES_FILE = "line_reader_curves.png"
READER_METRICS_FILE = "line_reader_metrics.json"
READER_CONFIG_FILE = "line_reader_config.json"
# the "no digit" gate's training files (gate.keras is exported when present)
GATE_FILE = "gate.keras"
GATE_METRICS_FILE = "gate_metrics.json"
GATE_CONFIG_FILE = "gate_config.json"
TRAIN_FILES = frozenset({MODEL_FILE, HISTORY_FILE, CURVES_FILE, CONFUSION_FILE, METRICS_FILE,
                         CONFIG_FILE})
READER_TRAIN_FILES = frozenset({READER_FILE, READER_HISTORY_FILE, READER_CURVES_FILE,
                                READER_METRICS_FILE, READER_CONFIG_FILE})
GATE_TRAIN_FILES = frozenset({GATE_FILE, GATE_METRICS_FILE, GATE_CONFIG_FILE})
GOLDEN_FILE = "golden.npz"  # the self-test's inputs and each exported file's outputs on them
# the export's quantization report (export/quant_report.py), written beside the exported files
QUANT_MD_FILE = "quantization.md"
QUANT_JSON_FILE = "quantization.json"
EXPORT_REPORT_FILES = frozenset({QUANT_MD_FILE, QUANT_JSON_FILE})
# the int8 classifier for TensorFlow Lite Micro (export/micro_export.py): C++ source and header
MICRO_SOURCE = "model_int8_micro.cpp"
MICRO_HEADER = "model_int8_micro.h"
MICRO_FILES = frozenset({MICRO_SOURCE, MICRO_HEADER})
# written by the export besides the model files and the manifest
EXPORT_FILES = frozenset({GOLDEN_FILE}) | EXPORT_REPORT_FILES | MICRO_FILES


def weights_sha256(model_keras: str | Path) -> str:
    """Hex sha256 of the weights inside a .keras zip (the zip itself also holds a save date)."""
    try:
        with zipfile.ZipFile(model_keras) as z:
            return sha256_hex(z.read("model.weights.h5"))
    except (zipfile.BadZipFile, KeyError, OSError):
        return sha256_file(model_keras)


def read_metrics(folder: str | Path) -> dict | None:
    """metrics.json of a published training run, or None when missing or unreadable."""
    try:
        return json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_export(folder: str | Path) -> Manifest | None:
    """The folder's manifest, or None when there is none or it does not parse."""
    try:
        return read_manifest(Path(folder) / MANIFEST_FILE)
    except ModelError:
        return None


def problems(manifest: Manifest) -> list[str]:
    """Files the manifest lists that are missing or differ in size or sha256 ([] when intact)."""
    return [f"{entry.path}: {problem}" for entry in manifest.all_files
            if (problem := manifest.check(entry)) is not None]


def is_fresh(folder: str | Path) -> bool:
    """True when ``folder`` holds an intact export of its current model.keras in every format, of
    its line_reader.keras, if any, in every reader format, and of its gate.keras, if any, in every
    gate format, with the golden set of the self-test."""
    folder = Path(folder)
    manifest, model = read_export(folder), folder / MODEL_FILE
    if manifest is None or not model.is_file():
        return False
    listed = {e.key for e in manifest.all_files}
    wanted = formats.FORMATS
    for name, table, exported in ((READER_FILE, formats.READER_FORMATS, reader_exported_from),
                                  (GATE_FILE, formats.GATE_FORMATS, gate_exported_from)):
        if (folder / name).is_file():
            if exported(manifest) != sha256_file(folder / name):
                return False
            wanted += table
    return (exported_from(manifest) == sha256_file(model) and "golden" in manifest.data
            and all(f.key in listed for f in wanted) and not problems(manifest))


def exported_from(manifest: Manifest) -> str | None:
    """The sha256 of the model.keras the manifest's files were exported from."""
    return _source_sha256(manifest.data)


def reader_exported_from(manifest: Manifest) -> str | None:
    """The sha256 of the line_reader.keras the manifest's reader files were exported from."""
    return _source_sha256(manifest.reader.data) if manifest.reader else None


def gate_exported_from(manifest: Manifest) -> str | None:
    """The sha256 of the gate.keras the manifest's gate files were exported from."""
    return _source_sha256(manifest.gate.data) if manifest.gate else None


def _source_sha256(section: dict) -> str | None:
    source = section.get("source_model")
    return source.get("sha256") if isinstance(source, dict) else None


def drop_exports(folder: Path) -> None:
    """Remove an export (the format table's files, its golden set and reports, manifest.json): it
    describes an older model."""
    for name in [f.filename for f in formats.all_formats()] + [MANIFEST_FILE, *EXPORT_FILES]:
        (folder / name).unlink(missing_ok=True)
