"""Export artifacts/model.keras to every format in the table, verify each, publish with a manifest.

    python -m export                                   # all four formats -> artifacts/
    python -m export --formats tflite_int8 --calibration-samples 1000
    python -m export --formats reader_tflite_int8 --reader-lines 2000   # the line reader's
    python -m export --formats gate_tflite_int8,gate_onnx_int8         # the "no digit" gate's

When the folder holds the line reader (line_reader.keras), 'all' exports its four files too,
verified on lines of MNIST test digits (export/line_export.py) and listed in the manifest's
``line_reader`` section. When it holds the "no digit" gate (gate.keras and its
gate_metrics.json), 'all' exports the gate's four files, verified on MNIST's test digits and
held-out generated non-digits (export/gate_export.py) and listed in the manifest's ``gate``
section with the threshold training calibrated. Without them the export is the classifier's.

Publishing is all-or-nothing (common/publish.py): files are converted into a staging copy of
the artifacts folder and swapped in at the end, manifest.json written last. A crash, an
exception in a converter or Ctrl-C leaves the previous files and manifest as they were.
A file that converts but fails verification is left out; the files that pass are published
with a manifest listing only them, and ``run`` reports the failure (the CLI exits 1).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from common import dataset, line_scores, publish
from common import formats as export_formats
from common.artifacts import (
    GATE_FILE,
    GATE_METRICS_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    READER_FILE,
    read_export,
    read_metrics,
    weights_sha256,
)
from common.data import keras_probabilities, to_model_input
from common.flags import option, positive_int
from common.formats import GATE_KEYS, KEYS, READER_KEYS, ExportFormat
from common.strips import CLASSES, HEIGHT
from common.tf import KerasModelError, import_tensorflow, load_keras_model
from export import gate_export, gate_files, golden, line_export, micro_export, quant_report
from export import manifest as manifest_mod
from export.context import ExportContext, calibration_sample
from export.gate_export import GateVerification
from export.line_export import ReaderVerification
from export.micro_export import MicroVerification
from export.verify import Verification, format_table, verify
from mnist_edge.digest import sha256_file
from mnist_edge.formats import TFLITE_INT8

Result = TypeVar("Result", Verification, ReaderVerification, GateVerification)
MIN_OPSET, MAX_OPSET = 13, 18  # per-channel QDQ needs 13; tf2onnx 1.17 stops at 18


class ExportError(ValueError):
    """An expected, user-fixable problem (missing or unreadable model, bad option)."""


def opset(text: str) -> int:
    """argparse type: an ONNX opset this exporter supports."""
    value = positive_int(text)
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise argparse.ArgumentTypeError(f"{value} is not supported; choose "
                                         f"{MIN_OPSET}..{MAX_OPSET}")
    return value


@dataclass
class ExportConfig:
    """Resolved export configuration (the flags of python -m export); recorded in manifest.json."""

    artifacts: str = option("artifacts", "folder holding model.keras; the exported files are "
                                         "published into it")
    formats: str = option("all", "'all' or comma-separated keys: "
                                 f"{', '.join(KEYS + READER_KEYS + GATE_KEYS)} (the reader_* "
                                 f"files are made when ARTIFACTS holds {READER_FILE}, the gate_* "
                                 f"files when it holds {GATE_FILE}; 'all' includes them then)")
    calibration_samples: int = option(500, "training images used to calibrate the int8 formats",
                                      type=positive_int)
    reader_lines: int = option(2000, f"lines of MNIST test digits each {READER_FILE} file is "
                                    "verified on", type=positive_int)
    reader_calibration: int = option(300, "lines of MNIST training digits the int8 reader is "
                                          "calibrated on", type=positive_int)
    gate_calibration: int = option(300, f"MNIST training digits, and as many generated "
                                        f"non-digits, the int8 {GATE_FILE} files are calibrated "
                                        "on", type=positive_int)
    opset: int = option(17, f"ONNX opset ({MIN_OPSET}..{MAX_OPSET})", type=opset)
    data: str | None = option(None, "npz or IDX folder of the dataset model.keras was trained on "
                                    "(default: the one metrics.json records, else $MNIST_DATA, "
                                    "else the Keras MNIST download); another is refused")
    seed: int = option(42, "seed for the calibration samples, the reader's lines and the gate's "
                           "non-digits")
    verbose: bool = option(False, "show TensorFlow's and the converters' logs")


@dataclass
class ExportResult:
    """What an export run did."""

    results: list[Verification]
    keras_accuracy: float
    manifest: dict
    artifacts: Path
    failures: list[str] = field(default_factory=list)
    reader_results: list[ReaderVerification] = field(default_factory=list)
    gate_results: list[GateVerification] = field(default_factory=list)
    quantization: quant_report.QuantReport | None = None  # per layer, int8 against float
    micro: MicroVerification | None = None  # the int8 file through TensorFlow Lite Micro

    def table(self) -> str:
        """The verification table."""
        return format_table(self.results, self.keras_accuracy)


def run(cfg: ExportConfig, log: Callable[[str], None] = print) -> ExportResult:
    """Convert, verify and publish; raises ExportError / DataError for expected problems.

    The artifacts folder is locked for the whole run: a second run on it waits its turn.
    """
    formats = _check_options(cfg)
    with publish.exclusive(cfg.artifacts):
        return _run(cfg, formats, log)


def _run(cfg: ExportConfig, formats: tuple[ExportFormat, ...],
         log: Callable[[str], None]) -> ExportResult:
    folder = Path(cfg.artifacts)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ExportError(f"{model_path}: not found; train first with `make train` "
                          f"(or `python -m train --out {folder}`)")
    source_sha256 = sha256_file(model_path)
    tf = import_tensorflow(cfg.verbose)
    import keras

    model = _load(model_path)
    _check_finite_weights(model, model_path)
    reader_path, gate_path = folder / READER_FILE, folder / GATE_FILE
    formats, reader_formats, gate_formats = _split(formats, cfg.formats, reader_path, gate_path)
    reader = _load(reader_path, ((HEIGHT, None, 1), (None, CLASSES)),
                   "the mnist-edge line reader") if reader_path.is_file() else None
    gate = _load(gate_path, ((28, 28, 1), (2,)),
                 "the mnist-edge \"no digit\" gate") if gate_path.is_file() else None
    for side, path in ((reader, reader_path), (gate, gate_path)):
        if side is not None:
            _check_finite_weights(side, path)
    gate_metrics = _gate_metrics(folder) if gate is not None else None
    # each file holds the weights once: 4 bytes a parameter in float, 1 in int8
    publish.check_space(folder, 1_000_000 + sum(
        m.count_params() * (1 if f.precision == "int8" else 4)
        for m, fs in ((model, formats), (reader, reader_formats), (gate, gate_formats))
        for f in fs),
        f"exporting {', '.join(f.key for f in formats + reader_formats + gate_formats)}")
    source_weights = weights_sha256(model_path)
    training = _training_metrics(folder, source_weights, log)
    record = dataset.recorded(training, str(folder / METRICS_FILE))
    if record is not None and record["kind"] != "digits":
        for side, path in ((reader, reader_path), (gate, gate_path)):
            if side is not None:
                raise ExportError(f"{path}: the line reader and the \"no digit\" gate read "
                                  f"handwritten digits, and {model_path} classifies "
                                  f"{record['name']} ({record['kind']}); move {path.name} out "
                                  "of the folder")
    mnist = dataset.load_for(record, cfg.data, str(model_path))
    keras_probs = keras_probabilities(model, mnist.x_test)
    _check_finite_predictions(keras_probs, model_path)
    keras_accuracy = float((keras_probs.argmax(axis=1) == mnist.y_test).mean())
    calibration = calibration_sample(mnist.x_train, cfg.calibration_samples, cfg.seed)
    ctx = ExportContext(model=model, calibration=to_model_input(calibration), opset=cfg.opset,
                        source_sha256=source_sha256, weights_sha256=source_weights,
                        verbose=cfg.verbose,
                        labels=tuple(record["classes"]) if record is not None else None,
                        dataset={k: record[k] for k in ("name", "kind")} if record else None)
    name = record["name"] if record is not None else "MNIST"
    log(f"exporting {model_path} ({name} test accuracy {keras_accuracy:.2%} in Keras) to "
        f"{', '.join(f.key for f in formats) or 'no classifier file'}; calibrating int8 on "
        f"{len(calibration)} training images")

    results = []
    with publish.staging(folder) as stage:
        for fmt in formats:
            result = _export_one(fmt, ctx, stage, lambda tmp, took, fmt=fmt: verify(
                fmt, tmp, mnist.x_test, mnist.y_test, keras_probs, took))
            log(f"  {fmt.key:<15} {result.size / 1024:8.0f} KB  accuracy {result.accuracy:.2%}  "
                f"{'ok' if result.passed else 'FAILED: ' + result.failure}")
            results.append(result)
        every = export_formats.FORMATS
        entries = _listed(every, manifest_mod.carried_over(
            folder, source_sha256, {f.key for f in every} - {f.key for f in formats}),
            results, stage)
        settings = {**asdict(cfg),
                    "formats": [f.key for f in formats + reader_formats + gate_formats],
                    "calibration_samples": len(calibration),
                    "calibration_source": f"seeded random sample of the {name} training set"}
        settings.pop("verbose")
        if reader is None:  # settings of a stage that did not run
            settings.pop("reader_lines")
            settings.pop("reader_calibration")
        if gate is None:
            settings.pop("gate_calibration")
        manifest = manifest_mod.build(entries, model_path, training, keras_accuracy,
                                      manifest_mod.versions(tf.__version__, keras.__version__),
                                      settings, record)
        micro, section = _micro(cfg, results, folder, stage, mnist, log)
        if section is not None:
            manifest["micro"] = section
        quant = quant_report.Inputs()
        quant.add("classifier", ctx)
        reader_results, section = _reader(cfg, reader, reader_formats, folder, stage, log, quant)
        if section is not None:
            manifest["line_reader"] = section
        gate_results, section = _gate(cfg, gate, gate_metrics, gate_formats, mnist, stage, log,
                                      quant)
        if section is not None:
            manifest["gate"] = section
        manifest["golden"] = _golden(cfg, manifest, mnist, keras_probs, reader, gate,
                                     gate_metrics, stage, log)
        quantization = quant_report.build(stage, quant_report.images_for(
            stage, quant.images, settings, mnist.x_train), log, quant.rejected())
        quant_report.write(quantization, stage)
        publish.write_json(stage / MANIFEST_FILE, manifest)
    return ExportResult(results, keras_accuracy, manifest, folder,
                        [str(r.failure) for r in [*results, *reader_results, *gate_results,
                                                  *([micro] if micro else [])] if not r.passed],
                        reader_results, gate_results, quantization, micro)


def _micro(cfg: ExportConfig, results: list[Verification], folder: Path, stage: Path, mnist,
           log: Callable[[str], None]) -> tuple[MicroVerification | None, dict | None]:
    """The int8 file packaged for TensorFlow Lite Micro into ``stage`` when this run exported it
    and it passed; (its verification, the manifest's ``micro`` section). When this run did not
    export it, the current package is kept if it describes the int8 file in ``stage``."""
    int8 = next((r for r in results if r.fmt.key == TFLITE_INT8.key), None)
    if int8 is None:
        current = read_export(folder)
        return None, micro_export.carried_over(stage, current.data.get("micro") if current
                                               else None)
    if not int8.passed:
        micro_export.drop(stage)
        return None, None
    return micro_export.export(stage, mnist.x_test, mnist.y_test, log, cfg.verbose)


def _golden(cfg: ExportConfig, manifest: dict, mnist, keras_probs: np.ndarray, reader, gate,
            gate_metrics: dict | None, stage: Path, log: Callable[[str], None]) -> dict:
    """The manifest's ``golden`` section, its golden.npz written into ``stage``: test digits with
    a clear margin for Keras (and the Keras gate, when the manifest lists gate files), lines the
    Keras reader reads (when it lists reader files), and every listed file's outputs on them."""
    scores = threshold = None
    if gate is not None and gate_metrics is not None and manifest.get("gate"):
        scores = keras_probabilities(gate, mnist.x_test)[:, gate_metrics["classes"].index("digit")]
        threshold = gate_metrics["threshold"]
    candidates = golden.pick_digits(mnist.y_test, keras_probs, scores, threshold)
    lines = (golden.pick_lines(reader, cfg.data, cfg.seed)
             if reader is not None and manifest.get("line_reader") else None)
    return golden.build(stage, manifest, mnist.x_test, mnist.y_test, candidates, lines, log)


def _load(path: Path, *expected):
    """The Keras model at ``path`` (``expected``: load_keras_model's checks); ExportError when it
    does not load."""
    try:
        return load_keras_model(path, *expected)
    except KerasModelError as exc:
        raise ExportError(str(exc)) from None


def _split(formats: tuple[ExportFormat, ...], asked: str, reader_path: Path, gate_path: Path
           ) -> tuple[tuple[ExportFormat, ...], ...]:
    """The classifier's, the reader's and the gate's formats of a request; the reader's only when
    ``reader_path`` exists, the gate's when ``gate_path`` does ('all' without them means the
    classifier's)."""
    sides = [tuple(f for f in formats if f in table) for table in (
        export_formats.FORMATS, export_formats.READER_FORMATS, export_formats.GATE_FORMATS)]
    for i, path, what in ((1, reader_path, "the line reader"), (2, gate_path, "the gate")):
        if sides[i] and not path.is_file():
            if asked.strip() != "all":
                raise ExportError(f"--formats {sides[i][0].key}: {path} not found; train {what} "
                                  "first (make train)")
            sides[i] = ()
    return tuple(sides)


def _listed(every: tuple[ExportFormat, ...], kept: list[dict], results: list, stage: Path
            ) -> list[dict]:
    """The manifest entries of one table: ``kept`` (carried over) and the passed ``results``;
    a file of ``every`` that neither lists is removed from ``stage``, so no model file is left
    that the manifest does not describe."""
    entries = kept + [manifest_mod.file_entry(r, stage) for r in results if r.passed]
    listed = {e["key"] for e in entries}
    for fmt in every:
        if fmt.key not in listed:
            (stage / fmt.filename).unlink(missing_ok=True)
    return entries


def _reader(cfg: ExportConfig, model, formats: tuple[ExportFormat, ...], folder: Path,
            stage: Path, log: Callable[[str], None], quant: quant_report.Inputs
            ) -> tuple[list[ReaderVerification], dict | None]:
    """Export and verify the reader's files into ``stage``; (their results, the manifest's
    ``line_reader`` section, None without a reader). Files not requested are carried over from
    the current manifest when they come from the same line_reader.keras. ``quant`` gets what
    the quantization report needs of them."""
    every = export_formats.READER_FORMATS
    if model is None:  # no reader: no reader file the manifest does not describe
        _listed(every, [], [], stage)
        return [], None
    path = folder / READER_FILE
    source_sha256 = sha256_file(path)
    results: list[ReaderVerification] = []
    ref = None
    if formats:
        log(f"line reader {path}: making {cfg.reader_lines} test lines and "
            f"{cfg.reader_calibration} calibration lines")
        ref = line_scores.reference(model, cfg.data, cfg.seed, cfg.reader_lines)
        ctx = ExportContext(model=model, calibration=line_export.calibration_strips(
                                cfg.data, cfg.seed, cfg.reader_calibration),
                            opset=cfg.opset, source_sha256=source_sha256,
                            weights_sha256=weights_sha256(path), verbose=cfg.verbose)
        log(f"line reader: Keras reads {ref.exact_rate:.2%} of {len(ref.lines.labels)} test "
            f"lines exactly (digits {ref.digit_accuracy:.2%})")
        quant.add("line_reader", ctx)
        results = _export_each(formats, ctx, stage, lambda fmt, tmp, took: line_export.verify(
            fmt, tmp, ref, took), log)
    old = manifest_mod.carried_over_reader(folder, source_sha256,
                                           {f.key for f in every} - {f.key for f in formats})
    entries = _listed(every, old["files"] if old else [], results, stage)
    keras_reference = ({"exact_rate": round(ref.exact_rate, 6),
                        "digit_accuracy": round(ref.digit_accuracy, 6),
                        "lines": len(ref.lines.labels)} if ref is not None
                       else (old or {}).get("keras_reference"))
    return results, manifest_mod.reader_section(entries, path, keras_reference)


def _gate(cfg: ExportConfig, model, metrics: dict | None, formats: tuple[ExportFormat, ...],
          mnist, stage: Path, log: Callable[[str], None], quant: quant_report.Inputs
          ) -> tuple[list[GateVerification], dict | None]:
    """Export and verify the gate's files into ``stage``; (their results, the manifest's ``gate``
    section, None without a gate). Files not requested are carried over from the current
    manifest when they come from the same gate.keras. ``quant`` gets what the quantization
    report needs of them."""
    every = export_formats.GATE_FORMATS
    if model is None or metrics is None:  # no gate: no gate file the manifest does not describe
        _listed(every, [], [], stage)
        return [], None
    folder = Path(cfg.artifacts)
    path = folder / GATE_FILE
    source_sha256 = sha256_file(path)
    results: list[GateVerification] = []
    ref = None
    if formats:
        ref = gate_export.reference(model, mnist.x_test, cfg.seed, metrics["threshold"],
                                    metrics["classes"])
        ctx = ExportContext(model=model, calibration=gate_files.calibration_images(
                                mnist.x_train, cfg.gate_calibration, cfg.seed),
                            opset=cfg.opset, source_sha256=source_sha256,
                            weights_sha256=weights_sha256(path), verbose=cfg.verbose,
                            labels=tuple(metrics["classes"]))
        summary = ref.summary()
        log(f"gate {path}: threshold {ref.threshold:.3f}; Keras refuses "
            f"{summary['heldout_refusals']:.1%} of {summary['nondigits']} held-out non-digits and "
            f"{summary['test_false_refusals']:.2%} of {summary['test_images']} MNIST test digits; "
            f"calibrating int8 on {len(ctx.calibration)} digits and non-digits")
        quant.add("gate", ctx)
        results = _export_each(formats, ctx, stage, lambda fmt, tmp, took: gate_export.verify(
            fmt, tmp, ref, took), log)
    old = manifest_mod.carried_over_gate(folder, source_sha256,
                                         {f.key for f in every} - {f.key for f in formats})
    entries = _listed(every, old["files"] if old else [], results, stage)
    keras_reference = ref.summary() if ref is not None else (old or {}).get("keras_reference")
    return results, manifest_mod.gate_section(entries, path, metrics, keras_reference)


def _export_each(formats: tuple[ExportFormat, ...], ctx: ExportContext, stage: Path,
                 check: Callable[[ExportFormat, Path, float], Result],
                 log: Callable[[str], None]) -> list[Result]:
    """Convert and verify each of ``formats`` (``_export_one``), logging each result's line."""
    results = []
    for fmt in formats:
        result = _export_one(fmt, ctx, stage, lambda tmp, took, fmt=fmt: check(fmt, tmp, took))
        log(result.line())
        results.append(result)
    return results


def _gate_metrics(folder: Path) -> dict:
    """gate_metrics.json when it describes this gate.keras and holds its threshold, classes and
    calibration; ExportError otherwise (the threshold cannot be guessed)."""
    import json

    path = folder / GATE_METRICS_FILE
    retrain = "retrain the gate with `make train` (python -m train --model gate)"
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path}: not found, so {GATE_FILE} has no threshold; {retrain}") \
            from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: unreadable ({exc}); {retrain}") from None
    if not isinstance(metrics, dict) \
            or metrics.get("weights_sha256") != weights_sha256(folder / GATE_FILE):
        raise ExportError(f"{path}: describes another gate (its weights_sha256 differs from "
                          f"{GATE_FILE}'s); {retrain}")
    threshold, classes = metrics.get("threshold"), metrics.get("classes")
    if not (isinstance(threshold, float) and 0.0 < threshold < 1.0
            and isinstance(classes, list) and gate_export.DIGIT in classes
            and isinstance(metrics.get("calibration"), dict)):
        raise ExportError(f"{path}: lacks a threshold in (0, 1), the classes or the calibration; "
                          f"{retrain}")
    return metrics


def _check_finite_weights(model, model_path: Path) -> None:
    """Refuse a model with NaN or infinite weights before any converter sees it."""
    for variable, values in zip(model.weights, model.get_weights(), strict=True):
        if not np.isfinite(values).all():
            raise ExportError(f"{model_path}: weight {variable.path} holds NaN or infinite "
                              "values (training diverged); retrain it with `make train`")


def _check_finite_predictions(probs: np.ndarray, model_path: Path) -> None:
    """Refuse a model whose test predictions are NaN or infinite (the converters would fail)."""
    bad = int((~np.isfinite(probs)).any(axis=1).sum())
    if bad:
        raise ExportError(f"{model_path}: predictions are NaN or infinite on {bad} of "
                          f"{len(probs)} test images; retrain it with `make train`")


def _training_metrics(folder: Path, source_weights: str,
                      log: Callable[[str], None]) -> dict | None:
    """metrics.json if it describes this model.keras (same weights_sha256), else None + a
    warning."""
    metrics = read_metrics(folder)
    if metrics is None:
        return None
    if isinstance(metrics, dict) and metrics.get("weights_sha256") == source_weights:
        return metrics
    log(f"warning: {folder / METRICS_FILE} describes another model (its weights_sha256 "
        "differs from model.keras, or is missing); manifest.json gets \"training\": null, "
        "retrain with `make train` to record it")
    return None


class _Rejected(Exception):
    def __init__(self, result: Verification | ReaderVerification | GateVerification):
        super().__init__(result.failure)
        self.result = result


def _export_one(fmt: ExportFormat, ctx: ExportContext, stage: Path,
                check: Callable[[Path, float], Result]) -> Result:
    """Convert one format into ``stage`` and verify it with ``check`` (the file, the seconds its
    conversion took); a rejected file is removed from the stage."""
    target = stage / fmt.filename
    try:
        with publish.atomic_path(target) as tmp:
            start = time.perf_counter()
            fmt.load_converter()(ctx, tmp)
            result = check(tmp, time.perf_counter() - start)
            if not result.passed:
                if fmt.precision == "int8":  # the quantization report shows where it departs
                    ctx.cache.setdefault(quant_report.REJECTED, {})[fmt.key] = tmp.read_bytes()
                raise _Rejected(result)
    except _Rejected as rejected:
        target.unlink(missing_ok=True)  # also drops an older file of this format
        return rejected.result
    return result


def _check_options(cfg: ExportConfig) -> tuple[ExportFormat, ...]:
    try:
        chosen = export_formats.parse_formats(cfg.formats, export_formats.all_formats())
    except ValueError as exc:
        raise ExportError(f"--formats: {exc}") from None
    if not MIN_OPSET <= cfg.opset <= MAX_OPSET:
        raise ExportError(f"--opset {cfg.opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET}")
    if cfg.calibration_samples < 1:
        raise ExportError("--calibration-samples must be at least 1, got "
                          f"{cfg.calibration_samples}")
    return chosen
