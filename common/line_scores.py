"""The Keras line reader's scores of test lines, and how an exported reader's scores compare with
them: the one comparison export verification and parity hold a reader file to.

    ref = reference(keras_model, data, seed=1, n=300)       # lines of MNIST test digits
    figures = against_keras(fmt.tolerance, "reader_tflite_int8 on litert", scores, ref)
    figures.exact_rate, figures.failures                   # [] when the row's rule holds

A reader's "accuracy" is the share of lines read exactly (greedy decoding against the label), its
"agreement" the share of lines read as Keras reads them, and its largest score difference is over
every column and class of every line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.formats import Tolerance
from common.strips import Lines, edit_distance, greedy, make_lines

KERAS_BATCH = 64  # strips of one width per Keras call


@dataclass
class ReaderReference:
    """The test lines and the Keras reader's scores and readings of them."""

    lines: Lines
    scores: list[np.ndarray]    # float32 [W/4, 11] per strip
    readings: list[str]

    @property
    def exact_rate(self) -> float:
        """Share of lines Keras reads exactly."""
        return exact_rate(self.readings, self.lines.labels)

    @property
    def digit_accuracy(self) -> float:
        """Keras's per-digit edit accuracy."""
        return digit_accuracy(self.readings, self.lines.labels)


@dataclass(frozen=True)
class LineFigures:
    """One reader file's scores of the test lines, next to the Keras reader's."""

    readings: list[str]         # greedy reading of each line
    exact_rate: float           # lines whose reading is their label
    exact_rate_delta_vs_keras: float
    digit_accuracy: float       # 1 - edit distance / digits, over all lines
    agreement_with_keras: float  # lines read as Keras reads them
    max_abs_prob_diff: float    # max |p - p_keras| over every column and class
    failures: list[str]         # each broken figure of the rule; [] when it holds


def reference(model, data: str | None, seed: int, n: int) -> ReaderReference:
    """``n`` lines of MNIST test digits and the Keras reader's scores of each, strips of one width
    batched together (each strip is scored at its own width, as the runtime scores it)."""
    lines = make_lines(data, "test", seed, 0, n)
    widths = np.array([s.shape[1] for s in lines.strips])
    scores: list[np.ndarray] = [np.empty(0, np.float32)] * len(lines.strips)
    for w in np.unique(widths):
        idx = np.flatnonzero(widths == w)
        for start in range(0, len(idx), KERAS_BATCH):
            part = idx[start:start + KERAS_BATCH]
            x = np.stack([lines.strips[i] for i in part]).astype(np.float32) / np.float32(255)
            out = np.asarray(model(x[..., np.newaxis], training=False).numpy(), dtype=np.float32)
            for i, s in zip(part, out, strict=True):
                scores[i] = s
    return ReaderReference(lines, scores, [greedy(s) for s in scores])


def exact_rate(readings: list[str], labels: list[str]) -> float:
    """Share of readings equal to their label."""
    return float(np.mean([r == t for r, t in zip(readings, labels, strict=True)]))


def digit_accuracy(readings: list[str], labels: list[str]) -> float:
    """1 - (edits turning the readings into the labels) / (digits in the labels), at least 0."""
    edits = sum(edit_distance(t, r) for r, t in zip(readings, labels, strict=True))
    return max(0.0, 1.0 - edits / max(1, sum(len(t) for t in labels)))


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest |a - b| over every column and class of every line."""
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b, strict=True))


def against_keras(tolerance: Tolerance, name: str, scores: list[np.ndarray],
                  ref: ReaderReference) -> LineFigures:
    """The figures of ``scores`` (one [W/4, 11] array per line of ``ref``) and why ``name``
    breaks ``tolerance`` against Keras, if it does."""
    if len(scores) != len(ref.scores) or any(s.shape != k.shape
                                             for s, k in zip(scores, ref.scores, strict=True)):
        raise ValueError(f"{name}: scores of {len(scores)} lines do not match the "
                         f"{len(ref.scores)} lines Keras scored")
    readings = [greedy(s) for s in scores]
    labels = ref.lines.labels
    rate = exact_rate(readings, labels)
    delta = rate - ref.exact_rate
    agreement = exact_rate(readings, ref.readings)
    diff = max_abs_diff(scores, ref.scores)
    return LineFigures(readings, rate, delta, digit_accuracy(readings, labels), agreement, diff,
                       tolerance.against_keras(name, delta, agreement, diff))
