"""Readings and predictions as plain JSON values: what ``mnist-edge read --json``,
``predict --json`` and ``mnist-edge serve`` answer, from one place.

    from mnist_edge.answers import reading_json
    json.dumps(reading_json(clf.read("meter.jpg"), gated=clf.gate is not None))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnist_edge.classifier import FileResult
    from mnist_edge.reader import Digit, Reading

DECIMALS = 6  # probabilities and confidences: more would be noise of the int8 models


def digit_json(d: Digit, crop: bool = False) -> dict[str, Any]:
    """One digit read: box [left, top, right, bottom] in the image's pixels, label, confidence;
    the gate's ``digit_score`` when it scored the crop; the 28x28 ``crop`` (rows of 0-255, white
    ink on black, as the model saw it) when asked."""
    out: dict[str, Any] = {"box": [int(v) for v in d.box], "label": int(d.label),
                           "confidence": round(float(d.confidence), DECIMALS)}
    if d.digit_score is not None:
        out["digit_score"] = round(float(d.digit_score), DECIMALS)
    if crop:
        out["crop"] = d.crop.astype(int).tolist()
    return out


def reading_json(reading: Reading, gated: bool, crops: bool = False) -> dict[str, Any]:
    """A Reading: ``number`` and ``digits``; with a gate (``gated``) also ``no_digit`` (why
    nothing was read, or null) and ``refused`` [{boxes, reason}], the lines it left out."""
    out: dict[str, Any] = {"number": reading.number,
                           "digits": [digit_json(d, crops) for d in reading.digits]}
    if gated:
        out["no_digit"] = reading.no_digit
        out["refused"] = [{"boxes": [[int(v) for v in d.box] for d in r.digits],
                           "reason": r.reason} for r in reading.refused]
    return out


def file_result_json(r: FileResult, names: list[str]) -> dict[str, Any]:
    """One classified picture: label, name, confidence and every class's probability, or
    ``no_digit`` (an answer: refused by the gate, or blank) with a null label."""
    if r.label is None or r.probabilities is None:
        return {"label": None, "name": None, "no_digit": r.no_digit}
    return {"label": r.label, "name": names[r.label],
            "confidence": round(float(r.probabilities[r.label]), DECIMALS),
            "probabilities": [round(float(p), DECIMALS) for p in r.probabilities],
            "no_digit": None}
