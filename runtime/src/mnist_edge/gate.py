"""The "no digit" gate: a small model beside the classifier that answers "not a digit" for
letters, symbols, shapes, scenes and blank images instead of a confident wrong digit.

    clf = Classifier.load("artifacts")          # loads the gate too when the manifest lists one
    p = clf.predict(images, refuse=True)        # p.refused, p.reasons, p.digit_scores
    clf.predict_files(["x.png"])[0].no_digit    # the reason, or None for a digit

The gate takes the classifier's input (the same 28x28 image) and scores the probability that it
holds one handwritten digit; below the manifest's threshold (set at training on held-out
training digits, never on test data: ``gate.calibration`` says how) the image is refused. An
image with no pixel above ``BLANK_PEAK`` of full brightness is refused as blank, gate or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from mnist_edge.manifest import FileEntry

BLANK_PEAK = 0.1  # an image whose brightest pixel is below this share of full scale is blank


class _Scores(Protocol):
    @property
    def probabilities(self) -> np.ndarray: ...


class GateModel(Protocol):
    """What the gate needs of its model file: a two-class ``Classifier`` (described here rather
    than imported, so that the classifier module can import this one)."""

    path: Path
    precision: str
    entry: FileEntry | None

    @property
    def backend(self) -> str: ...

    @property
    def format(self) -> str: ...

    def predict(self, images: np.ndarray, refuse: bool = False) -> _Scores: ...


class Gate:
    """The gate's model file on its interpreter and its threshold."""

    def __init__(self, model: GateModel, threshold: float, calibration: dict[str, object],
                 digit: int):
        self.model = model
        self.threshold = threshold        # refused below this digit probability
        self.calibration = calibration    # how the threshold was chosen (the manifest's words)
        self._digit = digit               # the output that scores "digit"

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The probability that each image holds one digit: float32 [N] for a checked batch
        (uint8 [N,28,28] or float32 in [0, 1])."""
        scores: np.ndarray = self.model.predict(images).probabilities[:, self._digit]
        return scores

    def refusals(self, images: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Each image's digit score and why it is refused (None: a digit)."""
        scores = self.scores(images) if len(images) else np.zeros(0, np.float32)
        blank = blank_images(images)
        reasons = [blank_reason() if b else
                   f"not a digit: the gate's digit score {s:.2f} is below its threshold "
                   f"{self.threshold:.2f}" if s < self.threshold else None
                   for b, s in zip(blank.tolist(), scores.tolist(), strict=True)]
        return scores, reasons


def blank_images(images: np.ndarray) -> np.ndarray:
    """bool [N]: the images of a checked batch with no pixel above BLANK_PEAK of full scale."""
    full = 255.0 if images.dtype == np.uint8 else 1.0
    peak = images.reshape(len(images), -1).max(axis=1, initial=0)
    result: np.ndarray = peak < BLANK_PEAK * full
    return result


def blank_reason() -> str:
    """Why a blank image is refused."""
    return f"blank: no pixel reaches {BLANK_PEAK:.0%} of full brightness"
