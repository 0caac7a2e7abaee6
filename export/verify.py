"""Verify each exported file against Keras on the whole MNIST test set, through the runtime.

The file runs in ``mnist_edge.Classifier`` (the code users run) on the default backend of its
format, and is held to its format's rule against Keras (``common/formats.py``): the same rule, on
the same images and backend, as ``make parity``. Its input tensor must have the dtype its row
names (``mnist_edge/formats.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.formats import ExportFormat


class Verdict:
    """Pass or fail of one verified file, from the rules it broke (``failures``)."""

    failures: list[str]

    @property
    def passed(self) -> bool:
        """True when the file is within its format's tolerance."""
        return not self.failures

    @property
    def failure(self) -> str | None:
        """Why the file is rejected, in one line; None when it passed."""
        return "; ".join(self.failures) or None


@dataclass(frozen=True)
class FileVerdict(Verdict):
    """One verified file: its row, how it was made and run, and the rules it broke."""

    fmt: ExportFormat
    size: int                   # bytes
    conversion_time_s: float
    verification_time_s: float
    backend: str                # the runtime backend that ran it
    runtime: str                # e.g. "onnxruntime 1.32.0"
    input: dict                 # manifest-style tensor specs read from the file itself
    output: dict
    failures: list[str]         # each broken figure of the rule; [] when within tolerance


@dataclass(frozen=True)
class Verification(FileVerdict):
    """How one exported file did on the test set, next to the Keras model it came from."""

    test_images: int
    accuracy: float
    accuracy_delta_vs_keras: float  # accuracy - Keras accuracy (fraction; negative = worse)
    agreement_with_keras: float     # fraction of images with the same top-1 as Keras
    max_abs_prob_diff: float        # max |p - p_keras| over every image and class

    def manifest_fields(self) -> dict:
        """The ``verification`` object of this file's manifest entry."""
        return {
            "test_images": self.test_images,
            "accuracy": round(self.accuracy, 6),
            "accuracy_delta_vs_keras": round(self.accuracy_delta_vs_keras, 6),
            "agreement_with_keras": round(self.agreement_with_keras, 6),
            "max_abs_prob_diff": float(f"{self.max_abs_prob_diff:.4g}"),
            "tolerance": self.fmt.tolerance.rule(),
            "conversion_time_s": round(self.conversion_time_s, 2),
            "runtime": self.runtime,
        }


def verify(fmt: ExportFormat, path: Path, images: np.ndarray, labels: np.ndarray,
           keras_probs: np.ndarray, conversion_time_s: float) -> Verification:
    """Run ``path`` on every test image (uint8 [N,28,28]) and hold it to its rule against Keras."""
    from mnist_edge import Classifier, backends

    start = time.perf_counter()
    clf = Classifier.load(path)
    probs = clf.predict(images).probabilities
    predicted, reference = probs.argmax(axis=1), keras_probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    delta = accuracy - float(np.mean(reference == labels))
    agreement = float(np.mean(predicted == reference))
    max_diff = float(np.max(np.abs(probs.astype(np.float64) - keras_probs)))
    name = f"{fmt.key} on {clf.backend}"
    failures = fmt.tolerance.against_keras(name, delta, agreement, max_diff)
    if clf.input_spec.dtype.name != fmt.input_dtype:
        failures.append(f"{name}: input dtype {clf.input_spec.dtype.name}, but the format table "
                        f"says {fmt.input_dtype}")
    return Verification(
        fmt=fmt, size=Path(path).stat().st_size, test_images=int(len(labels)), accuracy=accuracy,
        accuracy_delta_vs_keras=delta, agreement_with_keras=agreement, max_abs_prob_diff=max_diff,
        conversion_time_s=conversion_time_s, verification_time_s=time.perf_counter() - start,
        backend=clf.backend, runtime=backends.runtime_version(clf.backend),
        input=clf.input_spec.as_dict(), output=clf.output_spec.as_dict(),
        failures=failures,
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
            f"{r.max_abs_prob_diff:.2g}", f"{r.conversion_time_s:.1f}",
            f"{r.verification_time_s:.1f}",
            "ok" if r.passed else f"FAILED ({r.fmt.tolerance.rule()})",
        ))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"
