"""The parity figures: each pair against Keras, and one file on two backends against each other.

The line reader's files are held to their rows by ``common.line_scores``, the comparison export
verification makes: the figures are the same on the same lines. The gate's files are held to
theirs by ``common.gate_scores`` on ``nondigits.verification_set``: decisions at the manifest's
threshold against the truth and against the Keras gate, and the digit probability's difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from checks.parity.pairs import Run
from common.formats import FORMATS, GATE_FORMATS, READER_FORMATS, get_format
from common.gate_scores import GateFigures, GateReference, decide
from common.gate_scores import against_keras as gate_figures
from common.line_scores import LineFigures, ReaderReference, max_abs_diff
from common.line_scores import against_keras as line_figures
from common.strips import greedy

NUM_CLASSES = 10


@dataclass
class PairReport:
    """A (format, backend) pair next to Keras on the same images."""

    run: Run
    rule: str                                  # the pass rule in words
    accuracy: float | None = None
    accuracy_delta: float | None = None        # accuracy - Keras accuracy (fraction)
    agreement: float | None = None             # fraction of images with Keras's top-1
    max_abs_prob_diff: float | None = None
    mean_abs_prob_diff: float | None = None
    per_class_delta: list = field(default_factory=list)  # per digit: accuracy - Keras's
                                                         # (None: no images)
    disagreements: list = field(default_factory=list)    # image indices where top-1 differs
                                                         # from Keras
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class LinePairReport:
    """A line reader (format, backend) pair next to the Keras reader on the same lines."""

    run: Run
    rule: str                                  # the pass rule in words
    figures: LineFigures | None = None         # None: it did not run
    disagreements: list = field(default_factory=list)  # line indices read unlike Keras
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class GatePairReport:
    """A gate (format, backend) pair next to the Keras gate on the verification set."""

    run: Run
    rule: str                                  # the pass rule in words
    figures: GateFigures | None = None         # None: it did not run
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class CrossReport:
    """One file on two backends."""

    key: str
    backends: tuple[str, str]
    agreement: float
    max_abs_prob_diff: float
    disagreements: list
    failures: list

    @property
    def name(self) -> str:
        return f"{self.key} on {self.backends[0]} vs {self.backends[1]}"

    @property
    def passed(self) -> bool:
        return not self.failures


def per_class_accuracy(labels: np.ndarray, y: np.ndarray) -> list:
    """Accuracy on each digit's images (None for a digit with no images)."""
    return [float(np.mean(labels[y == c] == c)) if np.any(y == c) else None
            for c in range(NUM_CLASSES)]


def against_keras(run: Run, keras_probs: np.ndarray, y: np.ndarray) -> PairReport:
    """The figures of one pair against the Keras probabilities; a run that errored fails."""
    p = run.pair
    report, tol = _begin(PairReport, run)
    if run.error:
        return report
    if run.probabilities.shape != keras_probs.shape:
        report.failures = [f"{p.name}: returned {run.probabilities.shape} probabilities, "
                           f"expected {keras_probs.shape}"]
        return report
    keras_labels = keras_probs.argmax(axis=1)
    diff = np.abs(run.probabilities.astype(np.float64) - keras_probs.astype(np.float64))
    report.accuracy = float(np.mean(run.labels == y))
    report.accuracy_delta = report.accuracy - float(np.mean(keras_labels == y))
    report.agreement = float(np.mean(run.labels == keras_labels))
    report.max_abs_prob_diff = float(diff.max())
    report.mean_abs_prob_diff = float(diff.mean())
    report.per_class_delta = [None if a is None else a - k for a, k in
                              zip(per_class_accuracy(run.labels, y),
                                  per_class_accuracy(keras_labels, y), strict=True)]
    report.disagreements = np.flatnonzero(run.labels != keras_labels).tolist()
    report.failures = tol.against_keras(p.name, report.accuracy_delta, report.agreement,
                                        report.max_abs_prob_diff)
    return report


def reader_against_keras(run: Run, ref: ReaderReference) -> LinePairReport:
    """The figures of one reader pair against the Keras reader; a run that errored fails."""
    p = run.pair
    report, tol = _begin(LinePairReport, run)
    if run.error:
        return report
    try:
        report.figures = line_figures(tol, p.name, run.scores or [], ref)
    except ValueError as exc:
        report.failures = [str(exc)]
        return report
    report.disagreements = [i for i, (r, k) in enumerate(zip(report.figures.readings,
                                                               ref.readings, strict=True))
                            if r != k]
    report.failures = list(report.figures.failures)
    return report


def gate_against_keras(run: Run, ref: GateReference) -> GatePairReport:
    """The figures of one gate pair against the Keras gate; a run that errored fails."""
    report, tol = _begin(GatePairReport, run)
    if run.error:
        return report
    try:
        report.figures = gate_figures(tol, run.pair.name, run.digit_scores, ref)
    except ValueError as exc:
        report.failures = [str(exc)]
        return report
    report.failures = list(report.figures.failures)
    return report


def _begin(cls, run: Run):
    """A report of ``cls`` for ``run`` with its rule, and the rule; failed when it did not run."""
    tol = _format(run.pair.key).tolerance
    report = cls(run, tol.rule())
    if run.error:
        report.failures = [f"{run.pair.name}: could not run ({run.error})"]
    return report, tol


def _format(key: str):
    """The format row of a classifier, line reader or gate key."""
    return get_format(key, FORMATS + READER_FORMATS + GATE_FORMATS)


def _answers(run: Run, threshold: float | None) -> np.ndarray:
    """What a run answered, one item per input: a digit, a line's greedy reading, or a gate's
    decision at ``threshold``."""
    if run.scores is not None:
        return np.array([greedy(s) for s in run.scores])
    if run.digit_scores is not None:
        if threshold is None:
            raise ValueError(f"{run.pair.name}: a gate's runs are compared at a threshold")
        return decide(run.digit_scores, threshold)
    return run.labels


def _max_diff(a: Run, b: Run) -> float:
    if a.scores is not None and b.scores is not None:
        return max_abs_diff(a.scores, b.scores)
    if a.digit_scores is not None and b.digit_scores is not None:
        return float(np.max(np.abs(a.digit_scores.astype(np.float64) - b.digit_scores)))
    return float(np.max(np.abs(a.probabilities.astype(np.float64) - b.probabilities)))


def across_backends(runs: list[Run], threshold: float | None = None) -> list[CrossReport]:
    """Every two successful runs of the same file, compared with each other (a gate's at its
    ``threshold``)."""
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        if not run.error:
            by_key.setdefault(run.pair.key, []).append(run)
    reports = []
    for key, group in by_key.items():
        for a, b in combinations(group, 2):
            same = _answers(a, threshold) == _answers(b, threshold)
            report = CrossReport(key, (a.pair.backend, b.pair.backend), float(np.mean(same)),
                                 _max_diff(a, b), np.flatnonzero(~same).tolist(), [])
            report.failures = _format(key).tolerance.across_backends(report.name,
                                                                     report.agreement)
            reports.append(report)
    return reports
