"""The line reader's part of an export run: convert ``line_reader.keras`` to the reader formats,
verify each file through the runtime's ``LineReader`` on lines of MNIST *test* digits, and build
the manifest's ``line_reader`` section.

A file is held to its row's rule against Keras (``common.formats.READER_FORMATS``) on the same
strips by ``common.line_scores``, the comparison parity makes too: the share of lines read exactly
(greedy decoding against the label), the share read as Keras reads them, and the largest
difference of a score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.formats import ExportFormat
from common.line_scores import ReaderReference, against_keras
from common.strips import BLANK, CLASSES, HEIGHT, STRIDE, make_lines
from export.contract import READER_DECODING, READER_INPUT, READER_OUTPUT
from export.verify import FileVerdict


@dataclass(frozen=True)
class ReaderVerification(FileVerdict):
    """How one reader file did on the test lines, next to the Keras reader."""

    lines: int
    exact_rate: float           # lines whose greedy reading is their label
    exact_rate_delta_vs_keras: float
    digit_accuracy: float       # 1 - edit distance / digits, over all lines
    agreement_with_keras: float  # lines read as Keras reads them
    max_abs_prob_diff: float    # max |p - p_keras| over every column and class

    def manifest_fields(self) -> dict:
        """The ``verification`` object of this file's manifest entry."""
        return {
            "test_lines": self.lines,
            "exact_rate": round(self.exact_rate, 6),
            "exact_rate_delta_vs_keras": round(self.exact_rate_delta_vs_keras, 6),
            "digit_accuracy": round(self.digit_accuracy, 6),
            "agreement_with_keras": round(self.agreement_with_keras, 6),
            "max_abs_prob_diff": float(f"{self.max_abs_prob_diff:.4g}"),
            "tolerance": self.fmt.tolerance.rule(),
            "conversion_time_s": round(self.conversion_time_s, 2),
            "runtime": self.runtime,
        }

    def line(self) -> str:
        """One line for the export log."""
        return (f"  {self.fmt.key:<22} {self.size / 1024:8.0f} KB  exact {self.exact_rate:.2%} "
                f"({self.exact_rate_delta_vs_keras * 100:+.2f} pt)  digits "
                f"{self.digit_accuracy:.2%}  as Keras {self.agreement_with_keras:.2%}  max |Δp| "
                f"{self.max_abs_prob_diff:.2g}  "
                f"{'ok' if self.passed else 'FAILED: ' + str(self.failure)}")


def section_contract() -> dict:
    """What the manifest's ``line_reader`` section says besides its files."""
    return {"input": dict(READER_INPUT), "output": dict(READER_OUTPUT),
            "decoding": READER_DECODING}


def calibration_strips(data: str | None, seed: int, n: int) -> list[np.ndarray]:
    """float32 [32, W, 1] strips of ``n`` lines of MNIST training digits, for int8 calibration."""
    lines = make_lines(data, "train", seed, 0, n)
    return [(s / np.float32(255))[:, :, np.newaxis] for s in lines.strips]


def verify(fmt: ExportFormat, path: Path, ref: ReaderReference,
           conversion_time_s: float) -> ReaderVerification:
    """Run ``path`` through the runtime's LineReader on every test strip; hold it to its rule."""
    from mnist_edge import backends
    from mnist_edge.linereader import LineReader
    from mnist_edge.manifest import ReaderSection

    start = time.perf_counter()
    reader = LineReader.from_file(path, ReaderSection((), HEIGHT, STRIDE, CLASSES, BLANK, {}))
    scores = [reader.scores(s) for s in ref.lines.strips]
    name = f"{fmt.key} on {reader.backend}"
    figures = against_keras(fmt.tolerance, name, scores, ref)
    failures = list(figures.failures)
    spec = reader.input_spec
    if spec.dtype.name != fmt.input_dtype:
        failures.append(f"{name}: input dtype {spec.dtype.name}, but the format table says "
                        f"{fmt.input_dtype}")
    return ReaderVerification(
        fmt=fmt, size=Path(path).stat().st_size, lines=len(scores),
        exact_rate=figures.exact_rate,
        exact_rate_delta_vs_keras=figures.exact_rate_delta_vs_keras,
        digit_accuracy=figures.digit_accuracy, agreement_with_keras=figures.agreement_with_keras,
        max_abs_prob_diff=figures.max_abs_prob_diff,
        conversion_time_s=conversion_time_s, verification_time_s=time.perf_counter() - start,
        backend=reader.backend, runtime=backends.runtime_version(reader.backend),
        input=spec.as_dict(), output=reader.output_spec.as_dict(), failures=failures)

