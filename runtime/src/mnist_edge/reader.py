"""Read a handwritten number in a photo: every digit, in reading order, with its box.

    from mnist_edge import Classifier
    clf = Classifier.load("artifacts")
    r = clf.read("meter.jpg")                # a file, a numpy image or a PIL image
    r.number                                 # "1396"; lines top to bottom, joined by "\\n"
    [(d.box, d.label, d.confidence) for d in r.digits]

How (numpy alone; the paper is read at about 256x256 pixels, the ink at up to 640x480):

1. the ink is found as for one digit (``ink.find_ink``: polarity, uneven light, noise,
   shading left over);
2. pieces of ink closer than a broken stroke's gap are grouped into blobs, and blobs stacked
   over each other (a detached bar, a digit broken across) are merged; specks, dots and pieces
   along the image's sides are set aside;
3. blobs are sorted into lines (by their vertical extent) and, in each line, left to right;
4. each blob is cut into digits by recognition: paths from its top to its bottom through the
   least ink (bending around slanted or overlapping strokes) are cut candidates; every run of
   neighbouring pieces between cuts is normalised like MNIST and classified in one batch, and
   the reading scoring best wins (dynamic programming): the model's confidence, less the ink
   the cuts go through and penalties for a digit wider or lower than a line allows. A blob
   with no reading that scores well enough (a stray stroke) is not read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from mnist_edge.errors import BlankImageError
from mnist_edge.ink import Ink
from mnist_edge.lines import Blob, Strip, find_lines, line_strip
from mnist_edge.normalize import to_field

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MAX_ATOMS = 6       # a digit spans at most this many pieces between cuts
WIDE = 0.5          # blobs wider than half the line's height may hold several digits
CUT_MARGIN = 0.25   # cuts stay this far (of the height) from a blob's sides and each other
NARROW = 0.5        # a blob may hold one digit per half its height in width...
CUTS_PER_DIGIT = 3  # ...and gets this many cut candidates per extra digit
CUT_COST = 0.6      # log-score a cut costs per stroke it goes through
CUT_BEND = 0.3      # a cut may bend this far (of the height) from its starting column
DIGIT_PENALTY = 0.0   # log-score each digit costs: of equally confident readings, fewer win
WIDTH_LIMIT = 1.3     # a digit wider than this (of the line's height; MNIST: 75th to 95th
WIDTH_WEIGHT = 8.0    # percentile) is penalised by this much per unit of excess width
LOW = 0.5             # a digit lower than half the line's height is penalised...
LOW_WEIGHT = 4.0      # ...by this much per unit it falls short
STRAY = 1.5           # a blob whose best reading scores below -STRAY is not read at all


@dataclass(frozen=True)
class Digit:
    """One digit read: its box in the input's pixels (left, top, right, bottom; right and bottom
    exclusive), the model's label and confidence, and the 28x28 image the model saw."""

    box: tuple[int, int, int, int]
    label: int
    confidence: float
    crop: np.ndarray


@dataclass(frozen=True)
class Reading:
    """The number in a picture: ``number`` (lines joined by newlines; "" when no digit was
    found) and its digits in reading order."""

    number: str
    digits: tuple[Digit, ...]

    @property
    def confidence(self) -> float:
        """The least confident digit's confidence (0.0 when nothing was read)."""
        return min((d.confidence for d in self.digits), default=0.0)


# classify: uint8 [n,28,28] -> (labels int [n], confidences float [n])
Classify = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]


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


def read_lines(image: np.ndarray | PILImage, model: LineModel) -> Reading:
    """Every digit in ``image``, line by line, read by the line reader ``model``; an empty
    Reading for a blank picture."""
    try:
        ink, found = find_lines(image)
    except BlankImageError:
        return Reading("", ())
    lines = []
    for i, line in enumerate(found):
        strip = line_strip(ink, line, model.height, others=tuple(found[:i] + found[i + 1:]))
        digits = _decode(ink, strip, model.scores(strip.pixels), model)
        if digits:
            lines.append(digits)
    return _reading(ink, lines)


def _decode(ink: Ink, strip: Strip, scores: np.ndarray, model: LineModel) -> list[Digit]:
    """Greedy decoding (the top class per column, repeats merged, blanks dropped) and, for each
    digit, its box: the line's ink between the midpoints of its and its neighbours' peaks."""
    best = scores.argmax(axis=1)
    found: list[tuple[int, int, float]] = []   # label, peak column, confidence
    for t, c in enumerate(best.tolist()):
        if c == model.blank:
            continue
        p = float(scores[t, c])
        if t > 0 and best[t - 1] == c:          # the same digit's run goes on
            label, peak, conf = found[-1]
            if p > conf:
                found[-1] = (label, t, p)
            continue
        found.append((c, t, p))
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


def _reading(ink: Ink, lines: list[list[Digit]]) -> Reading:
    """The lines' digits with their boxes in the input's pixels."""
    k, (top, left) = ink.scale, ink.offset

    def unpadded(at: int, pad: int) -> int:  # paper added below and right is beyond the ink
        return max(0, at - pad) * k

    digits = tuple(Digit((unpadded(d.box[0], left), unpadded(d.box[1], top),
                          unpadded(d.box[2], left), unpadded(d.box[3], top)), d.label,
                         d.confidence, d.crop) for line in lines for d in line)
    return Reading("\n".join("".join(str(d.label) for d in line) for line in lines), digits)


def read_number(image: np.ndarray | PILImage, classify: Classify) -> Reading:
    """Every digit in ``image``, read with ``classify``; an empty Reading for a blank picture."""
    try:
        ink, found = find_lines(image)
    except BlankImageError:
        return Reading("", ())
    lines = [_read_line(line, ink.z, classify) for line in found]
    return _reading(ink, [line for line in lines if line])


def _cuts(b: Blob, height: float) -> list[tuple[np.ndarray, float]]:
    """Where touching digits may meet: paths from the blob's top to its bottom through the least
    ink, each as the column it takes in every row, with its cost (the strokes it goes through).

    Each path starts from a column where the ink is thinnest and may bend by one pixel a row
    (at most CUT_BEND of the height either way), so it follows the gap between slanted or
    overlapping digits.
    """
    width = b.right - b.left
    if width <= WIDE * height:
        return []
    ink = np.zeros((b.height, width), dtype=np.float64)
    for r, s, e in zip((b.rows - b.top).tolist(), (b.starts - b.left).tolist(),
                       (b.ends - b.left).tolist(), strict=True):
        ink[r, s:e] = 1.0
    profile = ink.sum(axis=0)
    stroke = max(1.0, float(np.median(b.ends - b.starts)))
    margin = max(1, int(CUT_MARGIN * height))
    order = np.argsort(profile[margin:width - margin], kind="stable") + margin
    seeds: list[int] = []
    limit = CUTS_PER_DIGIT * (math.ceil(width / (NARROW * height)) - 1)
    for c in order.tolist():
        if len(seeds) >= limit:
            break
        if all(abs(c - x) >= margin for x in seeds):
            seeds.append(c)
    if not seeds:
        return []
    bend = max(1, int(CUT_BEND * height))
    seeds.sort()
    paths, crossed = _least_ink_paths(ink, np.array(seeds, dtype=np.int64), bend)
    return [(path + b.left, CUT_COST * float(n) / stroke) for path, n in zip(paths, crossed,
                                                                             strict=True)]


def _least_ink_paths(ink: np.ndarray, seeds: np.ndarray,
                     bend: int) -> tuple[np.ndarray, np.ndarray]:
    """For each seed column, the top-to-bottom path through ``ink`` crossing the least ink,
    moving at most one column a row and staying within ``bend`` columns of the seed (nearest
    to it on ties): each path's column per row [seeds, rows], and the ink each crosses."""
    h, w = ink.shape
    offsets = np.arange(-bend, bend + 1)
    cols = seeds[:, None] + offsets[None, :]                 # [seeds, band]
    inside = (cols >= 1) & (cols < w - 1)                    # never the blob's own sides
    band = np.where(inside[None], ink[:, np.clip(cols, 0, w - 1)], np.inf)  # [rows, seeds, band]
    drift = 1e-3 * np.abs(offsets)[None, :]
    cost = band[0] + drift
    back = np.zeros(band.shape, dtype=np.int64)
    pad = np.full((len(seeds), 1), np.inf)
    for y in range(1, h):
        options = np.stack([np.concatenate([pad, cost[:, :-1]], axis=1), cost,
                            np.concatenate([cost[:, 1:], pad], axis=1)])
        pick = options.argmin(axis=0)
        back[y] = pick - 1
        cost = np.take_along_axis(options, pick[None], axis=0)[0] + band[y] + drift
    at = np.empty((len(seeds), h), dtype=np.int64)
    at[:, -1] = cost.argmin(axis=1)
    rows = np.arange(len(seeds))
    for y in range(h - 1, 0, -1):
        at[:, y - 1] = at[:, y] + back[y, rows, at[:, y]]
    crossed = band[np.arange(h)[None, :], rows[:, None], at].sum(axis=1)
    return cols[rows[:, None], at], crossed


def _read_line(line: list[Blob], z: np.ndarray, classify: Classify) -> list[Digit]:
    """The digits of one line, left to right (boxes in working pixels)."""
    height = float(np.median([b.height for b in line]))
    height = max(height, max(b.height for b in line) * 0.5)
    # every candidate digit of every blob: runs of neighbouring pieces between cuts
    spans: list[tuple[int, int, int, float]] = []   # blob, first edge, last edge, cut cost
    crops, boxes, pieces = [], [], []
    for bi, b in enumerate(line):
        cuts = _cuts(b, height)
        edges = [np.full(b.height, b.left), *(c for c, _ in cuts), np.full(b.height, b.right)]
        costs = [0.0, *(cost for _, cost in cuts), 0.0]
        pieces.append(len(edges) - 1)
        for j in range(1, len(edges)):
            for i in range(max(0, j - MAX_ATOMS), j):
                mask, box = _piece(b, edges[i], edges[j], z.shape)
                if box is None:
                    continue
                try:
                    crops.append(to_field(z, mask))
                except BlankImageError:
                    continue
                boxes.append(box)
                spans.append((bi, i, j, costs[i] + costs[j]))
    if not crops:
        return []
    labels, confidences = classify(np.stack(crops))
    readings = [Digit(box, int(label), float(conf), crop) for box, label, conf, crop
                in zip(boxes, labels, confidences, crops, strict=True)]
    return _best_cut(readings, spans, pieces, height)


def _best_cut(readings: list[Digit], spans: list[tuple[int, int, int, float]], pieces: list[int],
              height: float) -> list[Digit]:
    """The best-scoring cut of each blob of a line into digits (dynamic programming)."""
    out: list[Digit] = []
    for bi, n in enumerate(pieces):
        score: dict[tuple[int, int], tuple[float, int]] = {}
        for k, (owner, i, j, cost) in enumerate(spans):
            if owner == bi:
                score[(i, j)] = (_score(readings[k], height) - cost / 2, k)
        best = [0.0] + [-math.inf] * n
        back = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(max(0, j - MAX_ATOMS), j):
                if (i, j) in score and best[i] + score[(i, j)][0] > best[j]:
                    best[j], back[j] = best[i] + score[(i, j)][0], i
        if best[n] < -STRAY:  # no reading of it looks like digits: a stroke, a mark, a speck
            continue
        picked = []
        j = n
        while j > 0:
            picked.append(readings[score[(back[j], j)][1]])
            j = back[j]
        out += picked[::-1]
    return out


def _score(d: Digit, height: float) -> float:
    """How much a reading looks like one digit: the model's confidence (log), less penalties
    for a box wider or lower than the line allows."""
    left, top, right, bottom = d.box
    excess = max(0.0, (right - left) / height - WIDTH_LIMIT)
    short = max(0.0, LOW - (bottom - top) / height)
    return (math.log(max(d.confidence, 1e-9)) - DIGIT_PENALTY - WIDTH_WEIGHT * excess
            - LOW_WEIGHT * short)


def _piece(b: Blob, left: np.ndarray, right: np.ndarray,
           shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The mask of the blob's ink between two cuts (a column per row of the blob), and its box."""
    mask = np.zeros(shape, dtype=bool)
    lo = np.maximum(b.starts, left[b.rows - b.top])
    hi = np.minimum(b.ends, right[b.rows - b.top])
    for r, s, e in zip(b.rows.tolist(), lo.tolist(), hi.tolist(), strict=True):
        if s < e:
            mask[r, s:e] = True
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return mask, None
    return mask, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
