"""The lines of a handwritten number: its ink found, grouped into blobs (pieces of ink closer
than a broken stroke's gap) and lines, and each line brought to the line reader's input, a grey
strip of fixed height (light ink on a dark ground, as the reader was trained).

    ink, lines = find_lines(image)                 # BlankImageError when there is no ink
    strips = [line_strip(ink, line, height=32) for line in lines]

How: the ink is found as for one digit (``ink.find_ink``: polarity, uneven light, noise,
shading left over), at up to 640x480 pixels; specks, dots and pieces along the image's sides are
set aside; blobs stacked over each other (a detached bar, a digit broken across) are merged;
blobs sharing half their height are one line, read left to right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mnist_edge import imageops as ops
from mnist_edge.ink import WORK_PIXELS, Ink, find_ink

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

DETAIL = 640 * 480  # a number's digits are small: its ink is taken at up to this many pixels
GAP = 0.06          # pieces closer than twice 6% of the digits' height join (a broken stroke)
SPECK = 0.25        # blobs lower than 25% of the line's height and...
SPECK_MASS = 0.15   # ...lighter than 15% of a typical digit's ink are specks or dots
LINE_OVERLAP = 0.5  # blobs sharing half their height are on one line
STACKED = 0.5       # blobs sharing half the narrower one's columns...
STACK_GAP = 0.3     # ...and less than this (of the typical height) apart are one blob
MARGIN = 0.15      # a strip keeps this much (of the line's height) around the line's ink
KEEP = 0.08        # ink of other lines, grown by this much (of the height), is left out


@dataclass
class Blob:
    """Pieces of ink that belong together (a digit, or digits touching): its runs and box."""

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


def find_blobs(mask: np.ndarray, z: np.ndarray) -> list[Blob]:
    """Pieces of ink grouped across small gaps, without specks and page edges."""
    c = ops.components(mask, z)
    if c is None:
        return []
    row, start, end = c.row, c.start, c.end
    heights = c.bottom - c.top + 1
    big = heights[c.mass >= 0.2 * c.mass.max()]
    scale = float(np.median(big)) if big.size else float(heights.max())
    gap = max(1, int(round(GAP * scale)))
    # group across gaps: components of the dilated mask (within the ink's box), each keeping
    # only its own ink
    r0, c0 = max(0, int(row.min()) - gap), max(0, int(start.min()) - gap)
    box = mask[r0:int(row.max()) + gap + 1, c0:int(end.max()) + gap]
    grown_row, grown_start, grown_end = ops.runs(ops.dilate(box, gap))
    grown = ops.label_runs(grown_row, grown_start, grown_end)
    owner = np.full(box.shape, -1, dtype=np.int64)
    ops.paint_runs(owner, grown_row, grown_start, grown_end, grown)
    group = owner[row - r0, start - c0]
    blobs = []
    for g in np.unique(group):
        sel = group == g
        r, s, e = row[sel], start[sel], end[sel]
        m = float(c.mass[np.unique(c.comp[sel])].sum())
        blobs.append(Blob(r, s, e, int(r.min()), int(r.max()) + 1, int(s.min()), int(e.max()),
                           m))
    edges = [_page_edge(b, *mask.shape) for b in blobs]
    if not all(edges):  # all of them: a digit cropped to its ink, as preprocess_image takes it
        blobs = [b for b, edge in zip(blobs, edges, strict=True) if not edge]
    heights = np.array([b.height for b in blobs])
    masses = np.array([b.mass for b in blobs])
    typical = float(np.median(masses[masses >= 0.2 * masses.max()]))
    line_h = float(np.median(heights[masses >= 0.2 * masses.max()]))
    return [b for b in blobs
            if not (b.height < SPECK * line_h and b.mass < SPECK_MASS * typical)
            and b.mass >= 0.02 * typical]


def _page_edge(b: Blob, h: int, w: int) -> bool:
    """A blob touching two sides, or running along one: a page edge or a shadow, not ink."""
    sides = (b.top == 0) + (b.bottom == h) + (b.left == 0) + (b.right == w)
    along = (((b.top == 0) or (b.bottom == h)) and b.right - b.left >= 0.6 * w) or \
            (((b.left == 0) or (b.right == w)) and b.height >= 0.6 * h)
    return sides >= 2 or along


def group_lines(blobs: list[Blob]) -> list[list[Blob]]:
    """Blobs in lines (top to bottom), each line left to right."""
    lines: list[list[Blob]] = []
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
    return [sorted(line, key=lambda b: (b.left + b.right) / 2) for line in lines]


def merge_stacked(blobs: list[Blob]) -> list[Blob]:
    """Blobs over each other that share most of the narrower one's columns and lie close (a
    detached bar, a digit broken across) are one blob."""
    if not blobs:
        return blobs
    height = float(np.median([b.height for b in blobs]))
    out = sorted(blobs, key=lambda b: b.left)
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(out):
            for j in range(i + 1, len(out)):
                b = out[j]
                if b.left >= a.right:
                    break
                shared = min(a.right, b.right) - max(a.left, b.left)
                gap = max(a.top, b.top) - min(a.bottom, b.bottom)
                if (shared >= STACKED * min(a.right - a.left, b.right - b.left)
                        and gap <= STACK_GAP * height):
                    out[i] = Blob(np.concatenate([a.rows, b.rows]),
                                   np.concatenate([a.starts, b.starts]),
                                   np.concatenate([a.ends, b.ends]), min(a.top, b.top),
                                   max(a.bottom, b.bottom), min(a.left, b.left),
                                   max(a.right, b.right), a.mass + b.mass)
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out




def find_lines(image: np.ndarray | PILImage) -> tuple[Ink, list[list[Blob]]]:
    """The picture's ink and its lines (top to bottom, each left to right); BlankImageError
    when it holds no ink. Padded: digits cut by the picture's edge are not page edges."""
    ink = find_ink(image, WORK_PIXELS, DETAIL, pad=True)
    return ink, group_lines(merge_stacked(find_blobs(ink.mask, ink.z)))


@dataclass(frozen=True)
class Strip:
    """One line brought to the reader's input: ``pixels`` float32 [height, width] in [0,1]
    (light ink on dark), and where it came from: strip column x is working pixel
    ``left + x * scale``, strip row y is ``top + y * scale``."""

    pixels: np.ndarray
    left: float
    top: float
    scale: float
    ink: np.ndarray   # bool [h, w] working pixels: the line's own ink, from ``top``/``left``
                      # rounded (for boxes)


def line_strip(ink: Ink, line: list[Blob], height: int, others: tuple[list[Blob], ...] = (),
               multiple: int = 8) -> Strip:
    """The line's box of ink cut out with a margin (all of its ink, specks and all: the reader
    learnt to pass over them), without the ink of the ``others`` lines, scaled to ``height``
    rows and a width that keeps its aspect, padded with dark to a multiple of ``multiple``."""
    top, bottom = min(b.top for b in line), max(b.bottom for b in line)
    left, right = min(b.left for b in line), max(b.right for b in line)
    h = bottom - top
    margin = max(1, int(round(MARGIN * h)))
    t0, l0 = top - margin, left - margin
    rows, cols = h + 2 * margin, right - left + 2 * margin
    z = np.zeros((rows, cols), dtype=np.float32)
    H, W = ink.z.shape
    ys, xs = slice(max(0, t0), min(H, t0 + rows)), slice(max(0, l0), min(W, l0 + cols))
    z[ys.start - t0:ys.stop - t0, xs.start - l0:xs.stop - l0] = ink.z[ys, xs]
    own = _paint(line, t0, l0, (rows, cols))
    if others:
        grow = max(1, int(round(KEEP * h)))
        theirs = _paint([b for other in others for b in other], t0, l0, (rows, cols))
        z[ops.dilate(theirs, grow) & ~ops.dilate(own, grow)] = 0.0
    scale = rows / height
    width = max(1, int(round(cols / scale)))
    pixels = ops.resize(z, height, width)
    padded = max(multiple, int(math.ceil(width / multiple)) * multiple)
    out = np.zeros((height, padded), dtype=np.float32)
    out[:, :width] = np.clip(pixels, 0.0, 1.0)
    return Strip(out, float(l0), float(t0), cols / width, own)


def _paint(blobs: list[Blob], top: int, left: int, shape: tuple[int, int]) -> np.ndarray:
    """The blobs' ink as a mask of ``shape`` whose corner is working pixel (top, left)."""
    out = np.zeros(shape, dtype=bool)
    if not blobs:
        return out
    rows = np.concatenate([b.rows for b in blobs]) - top
    inside = (rows >= 0) & (rows < shape[0])
    starts = np.maximum(np.concatenate([b.starts for b in blobs]) - left, 0)
    ends = np.clip(np.concatenate([b.ends for b in blobs]) - left, 0, shape[1])
    ops.paint_runs(out, rows[inside], starts[inside], ends[inside])
    return out
