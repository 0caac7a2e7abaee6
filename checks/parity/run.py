"""Run every exported file on every backend over the MNIST test set and compare with Keras.

    from checks.parity.run import ParityConfig, run
    result = run(ParityConfig(artifacts="artifacts", limit=2000))
    result.passed, result.failures      # failures name the pair and the figure

When the export holds the line reader, its files are compared with ``line_reader.keras`` on
lines of MNIST test digits too (``checks/parity/lines.py``); when it holds the "no digit" gate, its
files are compared with ``gate.keras`` on MNIST's test digits and held-out non-digits
(``checks/parity/gate.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from checks.options import CheckOptions
from checks.parity import gate as gate_mod
from checks.parity import lines as lines_mod
from checks.parity import pairs as pairs_mod
from checks.parity.compare import (
    CrossReport,
    PairReport,
    across_backends,
    against_keras,
    per_class_accuracy,
)
from checks.parity.report import write_reports
from common.artifacts import (
    GATE_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    READER_FILE,
    exported_from,
    read_export,
)
from common.dataset import dataset_of
from common.flags import option, positive_int
from common.keras_reference import keras_probabilities
from mnist_edge.digest import sha256_file
from mnist_edge.manifest import Manifest


class ParityError(Exception):
    """An expected problem before any comparison (no export, stale export, bad option)."""


@dataclass
class ParityConfig(CheckOptions):
    """Options of one parity run (the flags of python -m checks.parity)."""

    limit: int | None = option(None, "use only the first N test images (default: all 10,000)",
                               type=positive_int)
    backends: str = option("all", "'all' (every installed one; others are listed as not run) or "
                                  "comma-separated: litert, tflite-runtime, tensorflow, "
                                  "onnxruntime (each must be able to run)")
    cache: str | None = option(".cache/parity", "folder caching the Keras reference predictions, "
                                                "keyed by sha256 ('' to disable)")
    reader_lines: int = option(2000, f"lines of MNIST test digits the line reader's files are "
                                    f"read on, when the export holds {READER_FILE}",
                               type=positive_int)
    reader_seed: int = option(1, "seed of those lines (the export verifies on its own --seed, "
                                 "42 by default: another seed keeps them held out)")
    gate_seed: int = option(1, f"seed of the held-out non-digits the gate's files are held to "
                               f"beside MNIST's test digits, when the export holds {GATE_FILE}")


@dataclass
class ParityResult:
    """Every figure of a run; the reports are rendered from this."""

    config: ParityConfig
    created_utc: str
    source_model: dict
    data_source: str
    dataset: dict                  # the manifest's dataset (name, kind): MNIST when it has none
    x: np.ndarray                  # uint8 [N,28,28] test images used
    y: np.ndarray                  # their labels
    keras_labels: np.ndarray
    keras_accuracy: float
    keras_per_class: list
    pairs: list[PairReport]
    cross: list[CrossReport]
    skipped: dict[str, str]        # backend -> why it did not run
    reader: lines_mod.ReaderParity | None = None  # None: the export holds no line reader
    gate: gate_mod.GateParity | None = None  # None: the export holds no gate
    seconds: float = 0.0
    reports: dict = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.y)

    @property
    def failures(self) -> list[str]:
        """Broken tolerances, and every backend asked for that did not run: a run that leaves
        pairs out does not pass."""
        missing = [f"{backend}: not run ({why}); every backend is required with --backends all: "
                   "install it (make runtime-venvs) or name the backends to compare"
                   for backend, why in self.skipped.items()]
        return (missing + [f for r in (*self.pairs, *self.cross) for f in r.failures]
                + (self.reader.failures if self.reader else [])
                + (self.gate.failures if self.gate else []))

    @property
    def passed(self) -> bool:
        return not self.failures

    def format_keys(self) -> list[str]:
        """The format keys that ran, in manifest order."""
        return list(dict.fromkeys(r.run.pair.key for r in self.pairs))

    def answers(self) -> dict[tuple[str, str], np.ndarray]:
        """(key, backend) -> top-1 labels, for the pairs that ran."""
        return {(r.run.pair.key, r.run.pair.backend): r.run.labels for r in self.pairs
                if not r.run.error}


def select_backends(text: str, tflite_python: Path) -> tuple[list[pairs_mod.Where], dict[str, str]]:
    """Backends to run and {backend: reason} for those skipped; naming an unusable one is an
    error."""
    from mnist_edge.backends import BACKENDS

    names = [n.strip() for n in text.split(",") if n.strip()]
    explicit = names != ["all"] and bool(names)
    if not explicit:
        names = list(BACKENDS)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ParityError(f"--backends: unknown {', '.join(unknown)}; "
                          f"choose all or {', '.join(BACKENDS)}")
    wheres = [pairs_mod.locate(n, tflite_python) for n in dict.fromkeys(names)]
    skipped = {w.backend: w.reason for w in wheres if not w.usable}
    if explicit and skipped:
        raise ParityError("; ".join(f"--backends {b} cannot run: {why}"
                                    for b, why in skipped.items()))
    return [w for w in wheres if w.usable], skipped


def read_current_export(folder: Path) -> tuple[Manifest, str]:
    """The manifest and the sha256 of model.keras, refusing a missing or stale export."""
    model, mpath = folder / MODEL_FILE, folder / MANIFEST_FILE
    if not model.is_file():
        raise ParityError(f"{model}: not found; run `make train export` first")
    manifest = read_export(folder)
    if manifest is None:
        raise ParityError(f"{mpath}: missing, unreadable or listing no files; run `make export`")
    sha = sha256_file(model)
    if exported_from(manifest) != sha:
        raise ParityError(f"{mpath} was exported from a different model.keras than {model}; "
                          "run `make export` to re-export it")
    return manifest, sha


def reader_source(folder: Path, manifest: Manifest) -> str:
    """The sha256 of line_reader.keras, refusing a missing one or one the manifest's reader files
    were not exported from."""
    path = folder / READER_FILE
    if not path.is_file():
        raise ParityError(f"{path}: not found, but {folder / MANIFEST_FILE} lists the line "
                          "reader's files; run `make train export`")
    sha = sha256_file(path)
    source = manifest.reader.data.get("source_model") if manifest.reader else None
    if not isinstance(source, dict) or source.get("sha256") != sha:
        raise ParityError(f"{folder / MANIFEST_FILE}: the line reader's files were exported from "
                          f"a different {READER_FILE} than {path}; run `make export` to re-export "
                          "them")
    return sha


def gate_source(folder: Path, manifest: Manifest) -> tuple[str, float]:
    """The sha256 of gate.keras and the manifest's threshold, refusing a missing gate.keras or one
    the manifest's gate files were not exported from."""
    gate = manifest.gate
    path = folder / GATE_FILE
    if not path.is_file():
        raise ParityError(f"{path}: not found, but {folder / MANIFEST_FILE} lists the gate's "
                          "files; run `make train export`")
    sha = sha256_file(path)
    data = gate.data if gate is not None else {}
    source = data.get("source_model")
    if not isinstance(source, dict) or source.get("sha256") != sha:
        raise ParityError(f"{folder / MANIFEST_FILE}: the gate's files were exported from a "
                          f"different {GATE_FILE} than {path}; run `make export` to re-export them")
    threshold = gate.threshold if gate is not None else None
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise ParityError(f"{folder / MANIFEST_FILE}: the gate section has no threshold; run "
                          "`make export` to re-export it")
    return sha, float(threshold)


def run(cfg: ParityConfig, log: Callable[[str], None] = print) -> ParityResult:
    """Compare every pair with Keras and with each other; write the reports into cfg.out."""
    from common.dataset import load_for

    start = time.perf_counter()
    if cfg.limit is not None and cfg.limit < 1:
        raise ParityError(f"--limit must be at least 1, got {cfg.limit}")
    folder = Path(cfg.artifacts)
    manifest, sha = read_current_export(folder)
    reader_sha = reader_source(folder, manifest) if manifest.reader is not None else None
    gate = manifest.gate
    gate_sha, threshold = gate_source(folder, manifest) if gate is not None else (None, 0.0)
    wheres, skipped = select_backends(cfg.backends, Path(cfg.tflite_python))
    mnist = load_for(manifest.data.get("dataset"), cfg.data, str(folder / MODEL_FILE))
    x, y = mnist.x_test[:cfg.limit], mnist.y_test[:cfg.limit].astype(np.int64)
    keras = keras_probabilities(folder / MODEL_FILE, sha, x, Path(cfg.cache) if cfg.cache else None)
    keras_labels = keras.argmax(axis=1)
    keras_accuracy = float(np.mean(keras_labels == y))
    log(f"parity: {len(x):,} test images, Keras accuracy {keras_accuracy:.2%}; "
        f"backends {', '.join(w.backend for w in wheres) or 'none'}"
        + "".join(f"; {b} skipped ({why})" for b, why in skipped.items()))
    plan = pairs_mod.plan(manifest.files, wheres)
    runs = pairs_mod.run_pairs(plan, {w.backend: w for w in wheres}, folder, x, log)
    result = ParityResult(
        config=cfg,
        created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        source_model={"path": MODEL_FILE, "sha256": sha},
        data_source=mnist.source, dataset=dataset_of(manifest.data), x=x, y=y,
        keras_labels=keras_labels,
        keras_accuracy=keras_accuracy, keras_per_class=per_class_accuracy(keras_labels, y),
        pairs=[against_keras(r, keras, y) for r in runs],
        cross=across_backends(runs), skipped=skipped)
    if manifest.reader is not None and reader_sha is not None:
        result.reader = lines_mod.check(manifest.reader.files, folder / READER_FILE, reader_sha,
                                        wheres, folder, cfg.data, cfg.reader_seed,
                                        cfg.reader_lines, log)
    else:
        log(f"parity: line reader not checked ({folder / MANIFEST_FILE} lists no line reader)")
    if gate is not None and gate_sha is not None:
        result.gate = gate_mod.check(gate.files, folder / GATE_FILE, gate_sha, threshold,
                                     mnist.x_test, wheres, folder, cfg.gate_seed, log)
    else:
        log(f"parity: gate not checked ({folder / MANIFEST_FILE} lists no gate)")
    result.seconds = time.perf_counter() - start
    result.reports = write_reports(result, Path(cfg.out))
    return result
