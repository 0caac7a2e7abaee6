"""Verify each exported file against Keras on the whole MNIST test set; print one table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.formats import ExportFormat
from export.quiet import quiet
from export.runners import open_runner


@dataclass(frozen=True)
class Verification:
    """How one exported file did on the test set, next to the Keras model it came from."""

    fmt: ExportFormat
    size: int                   # bytes
    test_images: int
    accuracy: float
    accuracy_delta_vs_keras: float  # accuracy - Keras accuracy (fraction; negative = worse)
    agreement_with_keras: float     # fraction of images with the same top-1 as Keras
    max_abs_prob_diff: float        # max |p - p_keras| over every image and class
    conversion_time_s: float
    verification_time_s: float
    runtime: str                # e.g. "onnxruntime 1.32.0"
    input: dict                 # manifest-style tensor specs read from the file itself
    output: dict
    failure: str | None         # why the file is rejected; None when within tolerance

    @property
    def passed(self) -> bool:
        """True when the file is within its format's tolerance."""
        return self.failure is None

    def manifest_fields(self) -> dict:
        """The ``verification`` object of this file's manifest entry."""
        return {
            "test_images": self.test_images,
            "accuracy": round(self.accuracy, 6),
            "accuracy_delta_vs_keras": round(self.accuracy_delta_vs_keras, 6),
            "agreement_with_keras": round(self.agreement_with_keras, 6),
            "max_abs_prob_diff": float(f"{self.max_abs_prob_diff:.4g}"),
            "tolerance": self.fmt.tolerance,
            "conversion_time_s": round(self.conversion_time_s, 2),
            "runtime": self.runtime,
        }


def verify(fmt: ExportFormat, path: Path, x_test: np.ndarray, y_test: np.ndarray,
           keras_probs: np.ndarray, conversion_time_s: float) -> Verification:
    """Run ``path`` on every test image and compare with the Keras probabilities."""
    start = time.perf_counter()
    with quiet():  # the interpreters log delegate creation on stderr
        runner = open_runner(fmt.kind, path)
        probs = runner.predict(x_test)
    if probs.shape != keras_probs.shape:
        raise ValueError(f"{path}: output shape {probs.shape}, expected {keras_probs.shape}")
    predicted, reference = probs.argmax(axis=1), keras_probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    delta = accuracy - float(np.mean(reference == y_test))
    agreement = float(np.mean(predicted == reference))
    return Verification(
        fmt=fmt, size=Path(path).stat().st_size, test_images=int(len(y_test)), accuracy=accuracy,
        accuracy_delta_vs_keras=delta, agreement_with_keras=agreement,
        max_abs_prob_diff=float(np.max(np.abs(probs - keras_probs))),
        conversion_time_s=conversion_time_s, verification_time_s=time.perf_counter() - start,
        runtime=runner.runtime, input=runner.input, output=runner.output,
        failure=fmt.failure(delta, agreement),
    )


def format_table(results: list[Verification], keras_accuracy: float) -> str:
    """One row per file: size, accuracy, delta vs Keras, agreement, max |dprob|, times, status."""
    header = ("format", "file", "size", "accuracy", "Δ vs Keras", "agreement", "max |Δp|",
              "convert s", "verify s", "status")
    rows = [("keras", "model.keras", "", f"{keras_accuracy:.2%}", "", "", "", "", "", "reference")]
    for r in results:
        rows.append((
            r.fmt.key, r.fmt.filename, _size(r.size), f"{r.accuracy:.2%}",
            f"{r.accuracy_delta_vs_keras * 100:+.2f} pt", f"{r.agreement_with_keras:.2%}",
            f"{r.max_abs_prob_diff:.2g}", f"{r.conversion_time_s:.1f}", f"{r.verification_time_s:.1f}",
            "ok" if r.passed else f"FAILED ({r.fmt.tolerance})",
        ))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"
