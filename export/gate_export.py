"""The "no digit" gate's part of an export run: convert ``gate.keras`` to the gate formats,
verify each file through the runtime's backends on MNIST's test digits and held-out generated
non-digits (``common.nondigits.verification_set``), and build the manifest's ``gate`` section.

A file is held to its row's rule against Keras (``common.formats.GATE_FORMATS``) on its decisions
at the calibrated threshold (refuse when the digit probability is below it): "accuracy" is the
share of images answered right (digit or not), "agreement" the share answered as the Keras gate
answers them, and the largest difference of the digit probability bounds the float files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.formats import ExportFormat
from export.verify import FileVerdict

DIGIT = "digit"    # the gate class whose probability is compared with the threshold


@dataclass(frozen=True)
class GateReference:
    """The verification set and the Keras gate's digit probabilities of it."""

    images: np.ndarray   # uint8 [N,28,28]: MNIST's test digits, then the held-out non-digits
    labels: np.ndarray   # 1 = digit, 0 = not a digit
    scores: np.ndarray   # float32 [N]: the Keras gate's digit probability
    threshold: float
    digit_index: int     # the digit's index among the gate's outputs

    @property
    def refused(self) -> np.ndarray:
        """The Keras gate's refusals."""
        return self.scores < self.threshold

    def summary(self) -> dict:
        """The ``keras_reference`` object of the manifest's ``gate`` section."""
        return {**{k: round(v, 6) for k, v in _figures(self.refused, self.labels).items()},
                "test_images": int(self.labels.sum()),
                "nondigits": int((self.labels == 0).sum())}


@dataclass(frozen=True)
class GateVerification(FileVerdict):
    """How one gate file did on the verification set, next to the Keras gate."""

    test_images: int            # MNIST test digits
    nondigits: int              # held-out non-digits
    accuracy: float             # images answered right (refused exactly when not a digit)
    accuracy_delta_vs_keras: float
    agreement_with_keras: float  # images refused exactly when Keras refuses them
    max_abs_prob_diff: float    # max |p_digit - p_digit_keras|
    false_refusals: float       # MNIST test digits refused
    refusals: float             # non-digits refused

    def manifest_fields(self) -> dict:
        """The ``verification`` object of this file's manifest entry."""
        return {
            "test_images": self.test_images,
            "nondigits": self.nondigits,
            "accuracy": round(self.accuracy, 6),
            "accuracy_delta_vs_keras": round(self.accuracy_delta_vs_keras, 6),
            "agreement_with_keras": round(self.agreement_with_keras, 6),
            "max_abs_prob_diff": float(f"{self.max_abs_prob_diff:.4g}"),
            "false_refusals": round(self.false_refusals, 6),
            "refusals": round(self.refusals, 6),
            "tolerance": self.fmt.tolerance.rule(),
            "conversion_time_s": round(self.conversion_time_s, 2),
            "runtime": self.runtime,
        }

    def line(self) -> str:
        """One line for the export log."""
        return (f"  {self.fmt.key:<22} {self.size / 1024:8.0f} KB  accuracy {self.accuracy:.2%} "
                f"({self.accuracy_delta_vs_keras * 100:+.2f} pt)  as Keras "
                f"{self.agreement_with_keras:.2%}  refuses {self.refusals:.1%} of non-digits, "
                f"{self.false_refusals:.2%} of digits  max |Δp| {self.max_abs_prob_diff:.2g}  "
                f"convert {self.conversion_time_s:.1f} s, verify {self.verification_time_s:.1f} s"
                f"  {'ok' if self.passed else 'FAILED: ' + str(self.failure)}")


def reference(model, x_test: np.ndarray, seed: int, threshold: float,
              classes: list[str]) -> GateReference:
    """The verification set from ``seed`` and the Keras gate's digit probabilities of it."""
    from common import nondigits
    from common.data import keras_probabilities

    images, labels = nondigits.verification_set(x_test, seed)
    index = classes.index(DIGIT)
    scores = keras_probabilities(model, images)[:, index]
    return GateReference(images, labels, scores, threshold, index)


def digit_scores(path: Path, images: np.ndarray, index: int):
    """The digit probability of each uint8 [N,28,28] image from the gate file at ``path``, run by
    the runtime's own Classifier as ``predict(..., refuse=True)`` runs it: (float32 [N], the
    loaded file)."""
    from mnist_edge.classifier import Classifier
    from mnist_edge.loading import load_model

    loaded = load_model(path, "auto", 1, None, None, None)
    gate = Classifier(loaded.backend, loaded.path, loaded.precision, classes=2)
    scores: np.ndarray = gate.predict(images).probabilities[:, index]
    return scores, loaded


def verify(fmt: ExportFormat, path: Path, ref: GateReference,
           conversion_time_s: float) -> GateVerification:
    """Run ``path`` on the verification set through mnist_edge's backends; hold its decisions
    at the threshold to its rule against the Keras gate's."""
    from mnist_edge import backends
    from mnist_edge.loading import input_spec

    start = time.perf_counter()
    scores, loaded = digit_scores(path, ref.images, ref.digit_index)
    refused = scores < ref.threshold
    figures = _figures(refused, ref.labels)
    delta = figures["accuracy"] - _figures(ref.refused, ref.labels)["accuracy"]
    agreement = float(np.mean(refused == ref.refused))
    max_diff = float(np.max(np.abs(scores.astype(np.float64) - ref.scores)))
    name = f"{fmt.key} on {loaded.backend.name}"
    failures = fmt.tolerance.against_keras(name, delta, agreement, max_diff)
    spec = input_spec(loaded.backend, None)
    if spec.dtype.name != fmt.input_dtype:
        failures.append(f"{name}: input dtype {spec.dtype.name}, but the format table says "
                        f"{fmt.input_dtype}")
    return GateVerification(
        fmt=fmt, size=Path(path).stat().st_size, test_images=int(ref.labels.sum()),
        nondigits=int((ref.labels == 0).sum()), accuracy=figures["accuracy"],
        accuracy_delta_vs_keras=delta, agreement_with_keras=agreement, max_abs_prob_diff=max_diff,
        false_refusals=figures["test_false_refusals"], refusals=figures["heldout_refusals"],
        conversion_time_s=conversion_time_s, verification_time_s=time.perf_counter() - start,
        backend=loaded.backend.name, runtime=backends.runtime_version(loaded.backend.name),
        input=spec.as_dict(), output=loaded.backend.output.as_dict(), failures=failures)


def _figures(refused: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of refusals against the truth, and the refusal rates of digits and non-digits."""
    digit = labels == 1
    return {"accuracy": float(np.mean(refused != digit)),
            "test_false_refusals": float(refused[digit].mean()),
            "heldout_refusals": float(refused[~digit].mean())}
