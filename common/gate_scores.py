"""The Keras gate's digit probabilities on the verification set, and how an exported gate file's
compare with them: the comparison parity holds a gate file to (its format row's Tolerance).

    ref = reference(keras_gate, x_test, seed=1, threshold=0.293)   # nondigits.verification_set
    figures = against_keras(fmt.tolerance, "gate_tflite_int8 on litert", scores, ref)
    figures.accuracy, figures.failures                             # [] when the row's rule holds

A gate's decision at the threshold is "digit" when its digit probability is at least the
threshold and "not a digit" (refused) below it. Its "accuracy" is the share of decisions that
match the truth (1 = digit, 0 = not), its "agreement" the share that match the Keras gate's, and
its largest probability difference is over the digit probability of every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.formats import Tolerance

KERAS_BATCH = 1024
DIGIT = 1  # the "digit" column of the gate's output (classes: "not a digit", "digit")


@dataclass
class GateReference:
    """The verification images, their truth and the Keras gate's digit probability of each."""

    images: np.ndarray      # uint8 [N,28,28]
    labels: np.ndarray      # int64 [N]: 1 digit, 0 not a digit
    scores: np.ndarray      # float64 [N]: the Keras gate's digit probability
    threshold: float

    @property
    def decisions(self) -> np.ndarray:
        return decide(self.scores, self.threshold)

    @property
    def accuracy(self) -> float:
        return accuracy(self.decisions, self.labels)


@dataclass(frozen=True)
class GateFigures:
    """One gate file's digit probabilities of the verification set, next to the Keras gate's."""

    accuracy: float                 # decisions that match the truth
    accuracy_delta_vs_keras: float
    agreement_with_keras: float     # decisions that match the Keras gate's
    max_abs_prob_diff: float        # max |p_digit - p_digit_keras|
    false_refusals: float           # digits refused
    refusals: float                 # non-digits refused
    disagreements: list[int]        # images decided unlike Keras
    failures: list[str]             # each broken figure of the rule; [] when it holds


def decide(scores: np.ndarray, threshold: float) -> np.ndarray:
    """1 where the digit probability is at least ``threshold`` (a digit), 0 where it is refused."""
    return (np.asarray(scores, np.float64) >= threshold).astype(np.int64)


def accuracy(decisions: np.ndarray, labels: np.ndarray) -> float:
    """Share of decisions equal to the truth."""
    return float(np.mean(decisions == labels))


def refusal_rates(decisions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(digits refused, non-digits refused) as shares of each; nan for a group with no images."""
    digits, others = labels == 1, labels == 0
    false = float(np.mean(decisions[digits] == 0)) if digits.any() else float("nan")
    right = float(np.mean(decisions[others] == 0)) if others.any() else float("nan")
    return false, right


def keras_digit_scores(model, images: np.ndarray) -> np.ndarray:
    """The Keras gate's digit probability of each uint8 [N,28,28] image (input scaled to [0,1]
    as the runtime scales it)."""
    out = []
    for start in range(0, len(images), KERAS_BATCH):
        x = images[start:start + KERAS_BATCH, ..., np.newaxis].astype(np.float32) / np.float32(255)
        out.append(np.asarray(model(x, training=False).numpy(), np.float64)[:, DIGIT])
    return np.concatenate(out) if out else np.empty(0, np.float64)


def reference(model, x_test: np.ndarray, seed: int, threshold: float,
              nondigits: int | None = None) -> GateReference:
    """``nondigits.verification_set(x_test, seed)`` (``nondigits`` held-out non-digits, default
    the set's own count) and the Keras gate's scores of it."""
    from common.nondigits import CHECK_NONDIGITS, verification_set

    images, labels = verification_set(x_test, seed, CHECK_NONDIGITS if nondigits is None
                                      else nondigits)
    return GateReference(images, labels, keras_digit_scores(model, images), float(threshold))


def against_keras(tolerance: Tolerance, name: str, scores: np.ndarray,
                  ref: GateReference) -> GateFigures:
    """The figures of ``scores`` (a gate file's digit probability of each image of ``ref``) and
    why ``name`` breaks ``tolerance`` against Keras, if it does."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(ref.scores):
        raise ValueError(f"{name}: {len(scores)} digit probabilities for the {len(ref.scores)} "
                         "images the Keras gate scored")
    decisions, keras = decide(scores, ref.threshold), ref.decisions
    acc = accuracy(decisions, ref.labels)
    delta = acc - ref.accuracy
    agreement = float(np.mean(decisions == keras))
    diff = float(np.max(np.abs(scores - ref.scores))) if len(scores) else 0.0
    false, right = refusal_rates(decisions, ref.labels)
    return GateFigures(acc, delta, agreement, diff, false, right,
                       np.flatnonzero(decisions != keras).tolist(),
                       tolerance.against_keras(name, delta, agreement, diff))
