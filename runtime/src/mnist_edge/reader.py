"""Read a handwritten number in a photo: every digit, in reading order, with its box.

    from mnist_edge import Classifier
    clf = Classifier.load("artifacts")
    r = clf.read("meter.jpg")                # a file, a numpy image or a PIL image
    r.number                                 # "1396"; lines top to bottom, joined by "\\n"
    [(d.box, d.label, d.confidence) for d in r.digits]

How (numpy alone, at about 320x240 working pixels):

1. the ink is found as for one digit (``preprocess.find_ink``: polarity, uneven light, noise);
2. pieces of ink closer than a broken stroke's gap are grouped into blobs; specks, dots and
   pieces along the image's sides are set aside;
3. blobs are sorted into lines (by their vertical extent) and, in each line, left to right;
4. each line is cut into digits by recognition: blobs, and blobs too wide for one digit cut at
   the thin places of their ink, are atoms; every run of neighbouring atoms that could be one
   digit is normalised like MNIST and classified in one batch, and the cut of the line whose
   digits are most confidently recognised, with shapes a digit can have, wins (dynamic
   programming over the atoms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from mnist_edge import imageops as ops
from mnist_edge.errors import BlankImageError
from mnist_edge.preprocess import WORK_PIXELS, find_ink, to_field

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

READ_PIXELS = 2 * WORK_PIXELS  # a number holds several digits: twice one digit's pixels
GAP = 0.06          # pieces closer than 6% of the line's height join (a broken stroke)
SPECK = 0.25        # blobs lower than 25% of the line's height and...
SPECK_MASS = 0.15   # ...lighter than 15% of a typical digit's ink are specks or dots
LINE_OVERLAP = 0.5  # blobs sharing half their height are on one line
STACKED = 0.5       # neighbours sharing half the narrower one's columns are one blob
MAX_ATOMS = 6       # a digit spans at most this many pieces between cuts
WIDE = 0.75         # blobs wider than 75% of the line's height may hold several digits
CUT_MARGIN = 0.25   # cuts stay this far (of the height) from a blob's sides and each other
NARROW = 0.5        # a blob may hold one digit per half its height in width...
CUTS_PER_DIGIT = 2  # ...and gets this many cut candidates per extra digit
CUT_COST = 0.2      # log-score a cut costs per stroke it goes through
DIGIT_PENALTY = 0.3   # log-score each digit costs: of equally confident readings, fewer win
WIDTH_LIMIT = 1.0     # a digit wider than this (of the line's height; MNIST: 75th to 95th
WIDTH_WEIGHT = 8.0    # percentile) is penalised by this much per unit of excess width
LOW = 0.5             # a digit lower than half the line's height is penalised...
LOW_WEIGHT = 4.0      # ...by this much per unit it falls short


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


@dataclass
class _Blob:
    rows: np.ndarray    # the runs of ink of this blob (working pixels)
    starts: np.ndarray
    ends: np.ndarray
    top: int
    bottom: int         # exclusive
    left: int
    right: int          # exclusive
    mass: float

    @property
    def height(self) -> int:
        return self.bottom - self.top


def read_number(image: np.ndarray | PILImage, classify: Classify) -> Reading:
    """Every digit in ``image``, read with ``classify``; an empty Reading for a blank picture."""
    try:
        ink = find_ink(image, READ_PIXELS)
    except BlankImageError:
        return Reading("", ())
    blobs = _blobs(ink.mask, ink.z)
    lines = [_read_line(line, ink.z, classify) for line in _lines(blobs)]
    lines = [line for line in lines if line]
    k = ink.scale
    digits = tuple(Digit((d.box[0] * k, d.box[1] * k, d.box[2] * k, d.box[3] * k), d.label,
                         d.confidence, d.crop) for line in lines for d in line)
    return Reading("\n".join("".join(str(d.label) for d in line) for line in lines), digits)


def _blobs(mask: np.ndarray, z: np.ndarray) -> list[_Blob]:
    """Pieces of ink grouped across small gaps, without specks and page edges."""
    row, start, end = ops.runs(mask)
    if row.size == 0:
        return []
    comp = ops.label_runs(row, start, end)
    n = int(comp.max()) + 1
    h, w = mask.shape
    top, bottom = np.full(n, h), np.full(n, -1)
    np.minimum.at(top, comp, row)
    np.maximum.at(bottom, comp, row)
    heights = bottom - top + 1
    csum = np.zeros((h, w + 1), dtype=np.float64)
    np.cumsum(z, axis=1, out=csum[:, 1:])
    mass = np.bincount(comp, csum[row, end] - csum[row, start], minlength=n)
    big = heights[mass >= 0.2 * mass.max()]
    scale = float(np.median(big)) if big.size else float(heights.max())
    gap = max(1, int(round(GAP * scale / 2)))
    # group across gaps: components of the dilated mask, each keeping only its own ink
    grown_row, grown_start, grown_end = ops.runs(ops.dilate(mask, gap))
    grown = ops.label_runs(grown_row, grown_start, grown_end)
    owner = np.full(mask.shape, -1, dtype=np.int64)
    for i in range(len(grown_row)):
        owner[grown_row[i], grown_start[i]:grown_end[i]] = grown[i]
    group = owner[row, start]
    blobs = []
    for g in np.unique(group):
        sel = group == g
        r, s, e = row[sel], start[sel], end[sel]
        m = float((csum[r, e] - csum[r, s]).sum())
        blobs.append(_Blob(r, s, e, int(r.min()), int(r.max()) + 1, int(s.min()), int(e.max()),
                           m))
    blobs = [b for b in blobs if not _page_edge(b, h, w)]
    if not blobs:
        return []
    heights = np.array([b.height for b in blobs])
    masses = np.array([b.mass for b in blobs])
    typical = float(np.median(masses[masses >= 0.2 * masses.max()]))
    line_h = float(np.median(heights[masses >= 0.2 * masses.max()]))
    return [b for b in blobs
            if not (b.height < SPECK * line_h and b.mass < SPECK_MASS * typical)
            and b.mass >= 0.02 * typical]


def _page_edge(b: _Blob, h: int, w: int) -> bool:
    """A blob touching two sides, or running along one: a page edge or a shadow, not ink."""
    sides = (b.top == 0) + (b.bottom == h) + (b.left == 0) + (b.right == w)
    along = (((b.top == 0) or (b.bottom == h)) and b.right - b.left >= 0.6 * w) or \
            (((b.left == 0) or (b.right == w)) and b.height >= 0.6 * h)
    return sides >= 2 or along


def _lines(blobs: list[_Blob]) -> list[list[_Blob]]:
    """Blobs in lines (top to bottom), each line left to right; blobs stacked over each other
    (a detached bar, a dot over a stroke) are one blob."""
    lines: list[list[_Blob]] = []
    for b in sorted(blobs, key=lambda b: -b.mass):  # the big blobs define the lines
        for line in lines:
            top = min(x.top for x in line)
            bottom = max(x.bottom for x in line)
            shared = min(bottom, b.bottom) - max(top, b.top)
            if shared >= LINE_OVERLAP * min(b.height, bottom - top):
                line.append(b)
                break
        else:
            lines.append([b])
    lines.sort(key=lambda line: min(x.top for x in line))
    return [_stacked(sorted(line, key=lambda b: b.left)) for line in lines]


def _stacked(line: list[_Blob]) -> list[_Blob]:
    """Merge neighbours that share most of the narrower one's columns."""
    out: list[_Blob] = []
    for b in line:
        if out:
            a = out[-1]
            shared = min(a.right, b.right) - max(a.left, b.left)
            if shared >= STACKED * min(a.right - a.left, b.right - b.left):
                out[-1] = _Blob(np.concatenate([a.rows, b.rows]),
                                np.concatenate([a.starts, b.starts]),
                                np.concatenate([a.ends, b.ends]), min(a.top, b.top),
                                max(a.bottom, b.bottom), min(a.left, b.left),
                                max(a.right, b.right), a.mass + b.mass)
                continue
        out.append(b)
    return out


def _cuts(b: _Blob, height: float) -> list[tuple[int, float]]:
    """Where touching digits may meet: the columns where the blob's ink is thinnest, each with
    its cost (the strokes a cut there goes through)."""
    width = b.right - b.left
    if width <= WIDE * height:
        return []
    profile = np.zeros(width + 1, dtype=np.float64)
    np.add.at(profile, b.starts - b.left, 1)
    np.add.at(profile, b.ends - b.left, -1)
    profile = np.cumsum(profile)[:width]  # ink pixels in each column
    stroke = max(1.0, float(np.median(b.ends - b.starts)))
    margin = max(1, int(CUT_MARGIN * height))
    order = np.argsort(profile[margin:width - margin], kind="stable") + margin
    chosen: list[int] = []
    limit = CUTS_PER_DIGIT * (math.ceil(width / (NARROW * height)) - 1)
    for c in order.tolist():
        if len(chosen) >= limit:
            break
        if all(abs(c - x) >= margin for x in chosen):
            chosen.append(c)
    return sorted((b.left + c, CUT_COST * float(profile[c]) / stroke) for c in chosen)


def _read_line(line: list[_Blob], z: np.ndarray, classify: Classify) -> list[Digit]:
    """The digits of one line, left to right (boxes in working pixels)."""
    height = float(np.median([b.height for b in line]))
    height = max(height, max(b.height for b in line) * 0.5)
    # every candidate digit of every blob: runs of neighbouring pieces between cuts
    spans: list[tuple[int, int, int, float]] = []   # blob, first edge, last edge, cut cost
    crops, boxes, pieces = [], [], []
    for bi, b in enumerate(line):
        cuts = _cuts(b, height)
        edges = [b.left, *(c for c, _ in cuts), b.right]
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
    out: list[Digit] = []
    for bi, n in enumerate(pieces):
        score: dict[tuple[int, int], tuple[float, int]] = {}
        for k, (owner, i, j, cost) in enumerate(spans):
            if owner == bi:
                left, top, right, bottom = boxes[k]
                excess = max(0.0, (right - left) / height - WIDTH_LIMIT)
                short = max(0.0, LOW - (bottom - top) / height)
                score[(i, j)] = (math.log(max(float(confidences[k]), 1e-9)) - DIGIT_PENALTY
                                 - cost / 2 - WIDTH_WEIGHT * excess - LOW_WEIGHT * short, k)
        best = [0.0] + [-math.inf] * n
        back = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(max(0, j - MAX_ATOMS), j):
                if (i, j) in score and best[i] + score[(i, j)][0] > best[j]:
                    best[j], back[j] = best[i] + score[(i, j)][0], i
        if best[n] == -math.inf:
            continue
        picked = []
        j = n
        while j > 0:
            k = score[(back[j], j)][1]
            picked.append(Digit(boxes[k], int(labels[k]), float(confidences[k]), crops[k]))
            j = back[j]
        out += picked[::-1]
    return out


def _piece(b: _Blob, left: int, right: int,
           shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The mask of the blob's ink between columns ``left`` and ``right``, and its box."""
    mask = np.zeros(shape, dtype=bool)
    lo = np.maximum(b.starts, left)
    hi = np.minimum(b.ends, right)
    for r, s, e in zip(b.rows.tolist(), lo.tolist(), hi.tolist()):
        if s < e:
            mask[r, s:e] = True
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return mask, None
    return mask, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
