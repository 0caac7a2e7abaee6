"""Read a handwritten number in a photo: every digit, in reading order, with its box.

    from mnist_edge import Classifier
    clf = Classifier.load("artifacts")
    r = clf.read("meter.jpg")                # a file, a numpy image or a PIL image
    r.number                                 # "1396"; lines top to bottom, joined by "\\n"
    [(d.box, d.label, d.confidence) for d in r.digits]

How (numpy and the line reader's interpreter):

1. the ink is found and grouped into lines (``lines.find_lines``: polarity, uneven light,
   noise and shading as for one digit; specks and page edges set aside; pieces stacked over
   each other joined; blobs sharing half their height on one line);
2. each line's ink is cut out as a strip of the reader's height (``lines.line_strip``) and
   the line reader scores its columns: the ten digits and a blank;
3. the scores are decoded greedily (the top class per column, repeats merged, blanks dropped);
   a digit's confidence is its peak score, its box the line's ink between the midpoints of its
   and its neighbours' peaks, and its crop that box's ink as the classifier would see it;
4. with a "no digit" gate, each crop is scored, and a line most of whose marks the gate
   refuses (letters, symbols, shapes, scenes) is left out of the number, listed as refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from mnist_edge.errors import BlankImageError
from mnist_edge.ink import Ink
from mnist_edge.lines import Strip, find_lines, line_strip
from mnist_edge.normalize import to_field

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


@dataclass(frozen=True)
class Digit:
    """One digit read: its box in the input's pixels (left, top, right, bottom; right and bottom
    exclusive), its label and confidence, and its ink as the classifier would see it (28x28)."""

    box: tuple[int, int, int, int]
    label: int
    confidence: float
    crop: np.ndarray
    digit_score: float | None = None  # the gate's probability that the crop is a digit


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Refused:
    """A line the gate answered "not digits": the marks the line reader read there, and why."""

    digits: tuple[Digit, ...]
    reason: str


@dataclass(frozen=True)
class Reading:
    """The number in a picture: ``number`` (lines joined by newlines; "" when no digit was
    found) and its digits in reading order; with a gate, the lines it ``refused`` and, when
    nothing was read, why (``no_digit``)."""

    number: str
    digits: tuple[Digit, ...]
    refused: tuple[Refused, ...] = ()
    no_digit: str | None = None

    @property
    def confidence(self) -> float:
        """The least confident digit's confidence (0.0 when nothing was read)."""
        return min((d.confidence for d in self.digits), default=0.0)

    def with_boxes(self, move: Callable[[Box], Box]) -> Reading:
        """This reading with every box (read and refused) passed through ``move``."""
        def moved(digits: tuple[Digit, ...]) -> tuple[Digit, ...]:
            return tuple(replace(d, box=move(d.box)) for d in digits)

        return replace(self, digits=moved(self.digits),
                       refused=tuple(replace(r, digits=moved(r.digits)) for r in self.refused))


# a gate's check of crops uint8 [n,28,28] -> (digit scores [n], why each is refused or None)
GateCheck = Callable[[np.ndarray], tuple[np.ndarray, list[str | None]]]


# scores: a line's strip float32 [height, width] -> probabilities [width / stride, classes]
Scores = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LineModel:
    """A line reader as ``read_lines`` uses it: its scores and the facts of its input and
    output (from the manifest)."""

    scores: Scores
    height: int    # strip rows
    stride: int    # strip columns per output column
    blank: int     # the blank's index among the scores


def read_lines(image: np.ndarray | PILImage, model: LineModel,
               gate: GateCheck | None = None) -> Reading:
    """Every digit in ``image``, line by line, read by the line reader ``model``; an empty
    Reading for a blank picture. With ``gate``, a line is refused when it refuses more than
    half of its marks."""
    try:
        ink, found = find_lines(image)
    except BlankImageError as exc:
        return Reading("", (), no_digit=f"blank: {exc}" if gate is not None else None)
    lines, refused = [], []
    for i, line in enumerate(found):
        strip = line_strip(ink, line, model.height, others=tuple(found[:i] + found[i + 1:]))
        digits = _decode(ink, strip, model.scores(strip.pixels), model)
        if digits and gate is not None:
            scores, reasons = gate(np.stack([d.crop for d in digits]))
            digits = [replace(d, digit_score=float(s)) for d, s in zip(digits, scores.tolist(),
                                                                        strict=True)]
            why = [r for r in reasons if r is not None]
            if 2 * len(why) > len(digits):
                refused.append(Refused(tuple(digits), f"{len(why)} of {len(digits)} marks refused"
                                                      f" ({why[0]})"))
                continue
        if digits:
            lines.append(digits)
    reading = _reading(ink, lines, refused)
    if gate is not None and not lines:
        return replace(reading, no_digit=refused[0].reason if refused else
                       "no digit: the line reader read nothing in the ink")
    return reading


def greedy(scores: np.ndarray, blank: int) -> list[tuple[int, int, float]]:
    """The best path of a line's scores [columns, classes]: the top class per column, repeats
    merged, blanks dropped; each digit as (label, the column of its peak, its peak score)."""
    best = scores.argmax(axis=1)
    found: list[tuple[int, int, float]] = []
    for t, c in enumerate(best.tolist()):
        if c == blank:
            continue
        p = float(scores[t, c])
        if t > 0 and best[t - 1] == c:          # the same digit's run goes on
            label, peak, conf = found[-1]
            if p > conf:
                found[-1] = (label, t, p)
            continue
        found.append((c, t, p))
    return found


def _decode(ink: Ink, strip: Strip, scores: np.ndarray, model: LineModel) -> list[Digit]:
    """Greedy decoding (the top class per column, repeats merged, blanks dropped) and, for each
    digit, its box: the line's ink between the midpoints of its and its neighbours' peaks."""
    found = greedy(scores, model.blank)
    if not found:
        return []
    rows, cols = strip.ink.shape
    centres = [(peak + 0.5) * model.stride * strip.scale for _, peak, _ in found]
    cuts = [0.0, *((a + b) / 2 for a, b in zip(centres, centres[1:], strict=False)), float(cols)]
    t0, l0 = int(strip.top), int(strip.left)
    digits = []
    for k, (label, _, conf) in enumerate(found):
        a, b = int(round(cuts[k])), max(int(round(cuts[k + 1])), int(round(cuts[k])) + 1)
        keep = strip.ink[:, a:b]
        ys, xs = np.nonzero(keep.any(axis=1))[0], np.nonzero(keep.any(axis=0))[0]
        if ys.size:
            box = (l0 + a + int(xs[0]), t0 + int(ys[0]), l0 + a + int(xs[-1]) + 1,
                   t0 + int(ys[-1]) + 1)
        else:  # a digit read where the line has no ink of its own: its share of the line
            box = (l0 + a, t0, l0 + b, t0 + rows)
        digits.append(Digit(_clip(box, ink.z.shape), label, conf, _crop(ink, box)))
    return digits


def _clip(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    h, w = shape
    return (min(max(0, left), w - 1), min(max(0, top), h - 1), min(max(left + 1, right), w),
            min(max(top + 1, bottom), h))


def _crop(ink: Ink, box: tuple[int, int, int, int]) -> np.ndarray:
    """The digit in ``box`` as the classifier would see it (28x28), for users who look."""
    left, top, right, bottom = _clip(box, ink.z.shape)
    try:
        return to_field(ink.z[top:bottom, left:right], ink.mask[top:bottom, left:right])
    except BlankImageError:
        return np.zeros((28, 28), dtype=np.uint8)


def _reading(ink: Ink, lines: list[list[Digit]], refused: list[Refused]) -> Reading:
    """The lines' digits (and the refused lines) with their boxes in the input's pixels."""
    k, (top, left) = ink.scale, ink.offset

    def unpadded(at: int, pad: int) -> int:  # paper added below and right is beyond the ink
        return max(0, at - pad) * k

    reading = Reading("\n".join("".join(str(d.label) for d in line) for line in lines),
                      tuple(d for line in lines for d in line), tuple(refused))
    return reading.with_boxes(lambda b: (unpadded(b[0], left), unpadded(b[1], top),
                                         unpadded(b[2], left), unpadded(b[3], top)))


