"""Synthetic photos composed from MNIST digits, seeded and deterministic: the number reader's
evaluation sets (numbers; single digits with thin or broken strokes) and one-digit photos as
users take them (``PHOTO_KINDS``: plain, or hard with light, page edges, blur, dead pixels,
pens of other widths and tilt) for the runtime's photo tests and photo_eval.py.

    from common import photos
    from common.data import load_mnist
    digits = photos.split_digits(load_mnist(), "test")     # report on test digits, tune on train
    s = photos.number_sample(digits, seed=1234, index=0)   # s.image, s.truth ("4071"), s.tags
    for s in photos.numbers(digits, seed=1234, n=1000): ...
    d = photos.single_sample(digits, seed=1234, index=0)   # one digit, thin or broken strokes
    p = photos.photo_sample(digits, seed=2024, index=0)    # one digit as users photograph it
    photos.save_sets(digits, "/tmp/reader-sets", seed=1234, n_numbers=200, n_singles=200)

Each sample has its own random generator, seeded with (seed, set, index): sample i is the same
whatever the set's size, and can be made again alone (the report redraws its failures that way).
A set built from one split reads only that split's arrays (``Digits``).

A digit is drawn at the photo's scale: its MNIST image is cropped, enlarged (bicubic), slanted
(shear), perhaps turned, and given a crisp pen edge; a fine pen or pencil redraws its skeleton 1
or 2 px wide, a ballpoint 2-5% of the height wide (a marker keeps MNIST's stroke); breaks erase
short bands across the stroke; pencil grain, uneven pressure and faint ink change only the
intensity. The touching, broken and size-variation tags are measured on each digit's ink mask
(coverage above one half, as drawn, before paper, light, blur, noise and JPEG), never taken from
the intention.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_edge.imageops import dilate, label_runs, runs

if TYPE_CHECKING:
    from common.data import Mnist

SPLITS = ("test", "train")
_SET_IDS = {"numbers": 1, "singles": 2, "plain photos": 3, "hard photos": 4, "lines": 5}

# --- numbers: how often each property is drawn (the measured shares are in the report)
TWO_LINES = 0.05          # numbers written on two lines (each line 2-3 digits)
TOUCHING = 0.5            # numbers where some neighbours are pushed into each other
TOUCH_PAIR = 0.5          # ...each neighbour pair of such a number (at least one)
# pens: 1-2 px thin lines, a ballpoint 2-5% of the height wide, or the MNIST stroke enlarged
STROKES = {"fine pen": 0.12, "pencil": 0.10, "pen": 0.38, "marker": 0.40}
THIN = ("fine pen", "pencil")
BROKEN = 0.18             # numbers with cut strokes...
BROKEN_DIGIT = 0.6        # ...each digit of such a number (at least one)
PRESSURE = 0.15           # numbers written with uneven pressure
MAX_SLANT = 15.0          # degrees of shear, either way
SIZE_VARIATION = 0.3      # numbers whose digit heights are drawn 1.3-1.9x apart (others: 1.15x)
MAX_HEIGHT_RATIO = 2.0    # ...and measured, tallest / shortest, never more than this
# frames: mostly 640x480 (landscape), some portrait and other sizes and aspect ratios
OTHER_FRAMES = ((320, 240), (400, 300), (800, 600), (1024, 768), (960, 540), (1280, 720),
                (600, 600), (720, 960))
# --- the photo
LIGHT_ON_DARK = 0.15      # chalk on a board, white pen on dark paper
LIGHTING = ("flat", "gradient", "vignette", "shadow")
TEXTURE = 0.5             # blotchy paper grain
BLUR = 0.35               # out of focus or moving: Gaussian, 0.4-1.2 px
GRAY = 0.1                # saved as grayscale
JPEG = 0.85               # JPEG at quality 35-95; the rest PNG
# --- single digits: every one thin or broken
SINGLE_STROKES = {"fine pen": 0.45, "pencil": 0.35, "pen": 0.1, "marker": 0.1}
SINGLE_BROKEN = 0.35      # thin strokes cut too (thicker ones always are)
SINGLE_PRESSURE = 0.35
# --- measuring the ink
INK = 0.5                 # coverage above which a pixel is ink (masks, pieces, touching)
NEST = 0.3                # a digit's box overlaps the previous one's by at most 30% of the
                          # narrower one's width (reading order stays left to right)
MIN_PIECE = 0.02          # a piece holds at least 2% of its digit's ink (smaller: a speck)


@dataclass(frozen=True)
class Digits:
    """One MNIST split: uint8 images [N,28,28], labels [N], and the split's name."""

    x: np.ndarray
    y: np.ndarray
    split: str


@dataclass(frozen=True)
class Glyph:
    """One written digit in a photo: label, MNIST index, box, and its ink as drawn."""

    label: int
    source: int                      # index into the split's arrays
    box: tuple[int, int, int, int]   # (left, top, right, bottom) of its ink, photo pixels
                                     # (right and bottom exclusive)
    ink: np.ndarray                  # uint8 [bottom-top, right-left]: coverage 0..255 as drawn
    mask: np.ndarray                 # bool, same shape: the stroke's shape (coverage > INK
                                     # before pencil and pressure lighten it)
    pieces: int                      # connected pieces of the mask
    clean_pieces: int                # ...before any cut
    line: int = 0                    # 0 = the top line


@dataclass(frozen=True)
class Sample:
    """One photo with its truth string, digits, breakdown tags and exact parameters."""

    set: str                         # "numbers", "singles" or "<kind> photos"
    index: int
    split: str
    image: np.ndarray                # uint8 [H,W,3], [H,W,4] or [H,W]: the photo as decoded
                                     # (with JPEG artefacts)
    truth: str                       # digits in reading order, lines joined by "\n"
    glyphs: tuple[Glyph, ...]
    tags: dict[str, str]             # one value per factor, for the report's breakdowns
    params: dict[str, float | int | str] = field(default_factory=dict)
    jpeg: bytes | None = None        # the file when the photo is a JPEG (else saved as PNG)

    @property
    def suffix(self) -> str:
        """The file suffix the photo is saved with."""
        return ".jpg" if self.jpeg is not None else ".png"

    def file_bytes(self) -> bytes:
        """The photo as a file: the JPEG it was decoded from, or a PNG of its pixels."""
        if self.jpeg is not None:
            return self.jpeg
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.image).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def ink(self) -> np.ndarray:
        """The digits' ink alone on the photo's frame, light on dark (float32 [H,W] in [0,1]): as
        drawn, before paper, light, noise and compression."""
        return _lay(self.glyphs, (self.image.shape[1], self.image.shape[0]))

    def write(self, stem: Path) -> Path:
        """Save the photo as ``stem`` + its suffix; returns the path."""
        path = stem.with_suffix(self.suffix)
        path.write_bytes(self.file_bytes())
        return path


def split_digits(mnist: Mnist, split: str) -> Digits:
    """The digits a set may use: MNIST's test split (for the report) or train (for tuning)."""
    if split == "test":
        return Digits(mnist.x_test, mnist.y_test, "test")
    if split == "train":
        return Digits(mnist.x_train, mnist.y_train, "train")
    raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def numbers(digits: Digits, seed: int, n: int) -> Iterator[Sample]:
    """The first ``n`` number photos of the set for ``seed``, made one at a time."""
    return (number_sample(digits, seed, i) for i in range(n))


def singles(digits: Digits, seed: int, n: int) -> Iterator[Sample]:
    """The first ``n`` single thin/broken digit photos of the set for ``seed``."""
    return (single_sample(digits, seed, i) for i in range(n))


def _rng(seed: int, set_name: str, index: int) -> np.random.Generator:
    """Sample ``index``'s own generator."""
    return np.random.default_rng([seed, _SET_IDS[set_name], index])


# ------------------------------------------------------------------ pixels: small numpy helpers

def _framed(a: np.ndarray, r: int, dtype: type = np.float32) -> np.ndarray:
    """``a`` as ``dtype`` inside a frame of ``r`` zeros (np.pad's result, without its cost)."""
    out = np.zeros((a.shape[0] + 2 * r, a.shape[1] + 2 * r), dtype=dtype)
    out[r:r + a.shape[0], r:r + a.shape[1]] = a
    return out


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a small float image (zero outside); Pillow's needs 8 bits."""
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    h, w = a.shape
    p = _framed(a, r)
    rows = sum(k[i] * p[:, i:i + w] for i in range(2 * r + 1))
    return np.asarray(sum(k[i] * rows[i:i + h] for i in range(2 * r + 1)), dtype=np.float32)


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen's rule for both sub-steps, per 8-neighbour code (bit k: neighbour P(k+2),
    clockwise from north): whether a set pixel with those neighbours is removed."""
    p = [(np.arange(256) >> k) & 1 for k in range(8)]
    p2, p3, p4, p5, p6, p7, p8, p9 = p
    b = sum(p)
    a = sum((p[k] == 0) & (p[(k + 1) % 8] == 1) for k in range(8))
    base = (b >= 2) & (b <= 6) & (a == 1)
    return (base & ((p2 & p4 & p6) == 0) & ((p4 & p6 & p8) == 0),
            base & ((p2 & p4 & p8) == 0) & ((p2 & p6 & p8) == 0))


_THINNING = _thinning_tables()


def skeleton(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide centre lines of a boolean mask (Zhang-Suen thinning, vectorised: each
    pixel's neighbours as one 8-bit code, looked up in the rule's table)."""
    m = _framed(mask, 1, np.uint8)
    while True:
        changed = False
        for table in _THINNING:
            c = m[1:-1, 1:-1]
            code = m[:-2, 1:-1].copy()                                  # p2, north
            for bit, q in enumerate((m[:-2, 2:], m[1:-1, 2:], m[2:, 2:], m[2:, 1:-1],
                                     m[2:, :-2], m[1:-1, :-2], m[:-2, :-2]), 1):
                code |= q << bit                                        # p3 .. p9, clockwise
            gone = table[code] & (c == 1)
            if gone.any():
                c[gone] = 0
                changed = True
        if not changed:
            return m[1:-1, 1:-1].astype(bool)


def count_pieces(mask: np.ndarray, min_share: float = MIN_PIECE) -> int:
    """Connected pieces (8-neighbour) of a boolean mask, not counting specks under ``min_share``
    of its pixels."""
    row, start, end = runs(mask)
    if row.size == 0:
        return 0
    area = np.bincount(label_runs(row, start, end), end - start).astype(np.float64)
    return int((area >= max(2.0, min_share * area.sum())).sum())


def touching(a: Glyph, b: Glyph) -> bool:
    """True when the two digits' ink masks touch or overlap (8-neighbour)."""
    left, top = min(a.box[0], b.box[0]) - 1, min(a.box[1], b.box[1]) - 1
    right, bottom = max(a.box[2], b.box[2]) + 1, max(a.box[3], b.box[3]) + 1
    if a.box[0] > b.box[2] or b.box[0] > a.box[2] or a.box[1] > b.box[3] or b.box[1] > a.box[3]:
        return False
    grids = []
    for g in (a, b):
        grid = np.zeros((bottom - top, right - left), dtype=bool)
        grid[g.box[1] - top:g.box[3] - top, g.box[0] - left:g.box[2] - left] = g.mask
        grids.append(grid)
    return bool((dilate(grids[0], 1) & grids[1]).any())


# ------------------------------------------------------------------ one digit, drawn

@dataclass
class _Pen:
    """How a number (or a single digit) is written."""

    stroke: str = "marker"           # one of STROKES
    width: float = 1.0               # "fine pen", "pencil": 1 or 2 px; "pen": a share of the
                                     # height; "marker": unused (the MNIST stroke, enlarged)
    pressure: bool = False
    slant: float = 0.0               # degrees, positive leans right
    crisp: bool = True               # a pen's edge; False: the MNIST edge, enlarged
    rotation: float = 0.0            # degrees, counter-clockwise: the digit written tilted
    strength: float = 1.0            # below 1: faint ink all along (light pressure)


@dataclass
class _Drawn:
    """One digit drawn at photo scale, in its own crop."""

    ink: np.ndarray                  # float32 coverage 0..1
    mask: np.ndarray                 # bool: the shape
    pieces: int
    clean_pieces: int
    label: int
    source: int


def _enlarge(digit: np.ndarray, height: int, slant: float, rng: np.random.Generator,
             crisp: bool = True, rotation: float = 0.0) -> np.ndarray:
    """An MNIST digit as float coverage ``height`` px tall, slanted, turned ``rotation`` degrees,
    with a crisp pen edge (or its own, enlarged)."""
    from PIL import Image

    on = digit > 30
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    crop = _framed(digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255, 1)
    scale = height / crop.shape[0]
    width = max(3, round(crop.shape[1] * scale * rng.uniform(0.88, 1.12)))
    img = Image.fromarray(crop, "F").resize((width, height), Image.Resampling.BICUBIC)
    t = math.tan(math.radians(slant))
    if abs(t) > 1e-3:  # shear about the baseline: the top moves by t * height
        grow = math.ceil(abs(t) * height)
        img = img.transform((width + grow, height), Image.Transform.AFFINE,
                            (1.0, t, -max(t, 0.0) * height, 0.0, 1.0, 0.0),
                            Image.Resampling.BICUBIC)
    if rotation:
        img = img.rotate(rotation, Image.Resampling.BICUBIC, expand=True)
    a = _framed(np.asarray(img, dtype=np.float32), 3)  # room for a redrawn stroke's edge
    if not crisp:
        return np.clip(a, 0.0, 1.0)
    # The enlarged MNIST edge ramps over ~scale pixels; a pen's edge is about 1.5 px.
    level = rng.uniform(0.35, 0.55)
    return np.clip(0.5 + (a - level) * max(2.0, 0.8 * scale), 0.0, 1.0)


def _redraw(ink: np.ndarray, width: float) -> np.ndarray:
    """The digit redrawn along its skeleton by a round pen ``width`` px wide (anti-aliased)."""
    line = skeleton(ink > INK)
    if width >= 3:  # grow by (width - 1) / 2, alternating 4- and 8-neighbour steps: a disc
        for step in range(int(round((width - 1) / 2))):
            line = _grow4(line) if step % 2 == 0 else dilate(line, 1)
    elif width >= 2:
        grown = line.copy()
        grown[1:, :] |= line[:-1, :]
        grown[:, 1:] |= line[:, :-1]
        grown[1:, 1:] |= line[:-1, :-1]
        line = grown
    return np.clip(_blur(line.astype(np.float32), 0.45) * 1.5, 0.0, 1.0)


def _grow4(mask: np.ndarray) -> np.ndarray:
    """4-neighbour dilation of a boolean mask."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _cut(ink: np.ndarray, rng: np.random.Generator, cuts: int) -> np.ndarray:
    """Erase short bands across the stroke at points along it: a pen that skips."""
    mask = ink > INK
    skel = skeleton(mask)
    ys, xs = np.nonzero(skel)
    if len(ys) < 6:
        return ink
    width = float(mask.sum()) / len(ys)
    # mid-stroke points only: a skeleton pixel with exactly two skeleton neighbours
    mid = np.flatnonzero(_neighbours(skel)[ys, xs] == 2)
    out = ink.copy()
    yy, xx = np.mgrid[0:ink.shape[0], 0:ink.shape[1]].astype(np.float32)
    chosen: list[tuple[int, int]] = []
    for i in rng.permutation(mid):
        y, x = int(ys[i]), int(xs[i])
        if any(math.hypot(y - cy, x - cx) < 3 * width + 6 for cy, cx in chosen):
            continue
        # the stroke's direction here: the main axis of the skeleton pixels around the point
        near = np.hypot(ys - y, xs - x) <= max(3.0, width)
        pts = np.stack([ys[near] - y, xs[near] - x]).astype(np.float64)
        ty, tx = np.linalg.eigh(pts @ pts.T)[1][:, -1]
        along = np.abs((yy - y) * ty + (xx - x) * tx)
        across = np.abs((yy - y) * tx - (xx - x) * ty)
        gap = rng.uniform(2.0, 4.0) + rng.uniform(0.0, 0.5) * width
        gap = min(gap, 0.12 * ink.shape[0])
        band = (1 - np.clip(along - gap / 2 + 0.5, 0, 1)) * (across <= 0.8 * width + 2)
        out *= 1 - band
        chosen.append((y, x))
        if len(chosen) >= cuts:
            break
    return out


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 neighbours are set."""
    p = _framed(mask, 1, np.int32)
    h, w = mask.shape
    total = sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    return np.asarray(total - mask, dtype=np.int32)


def _pressure(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth factor in [lo, 1] varying along the digit: uneven pen pressure."""
    from PIL import Image

    coarse = rng.random((3, 3)).astype(np.float32)
    f = np.asarray(Image.fromarray(coarse, "F").resize((shape[1], shape[0]),
                                                       Image.Resampling.BICUBIC))
    f = (f - f.min()) / max(1e-6, float(f.max() - f.min()))
    lo = rng.uniform(0.25, 0.55)
    return np.asarray(lo + (1 - lo) * f, dtype=np.float32)


def _draw(digits: Digits, source: int, height: int, pen: _Pen, broken: bool,
          rng: np.random.Generator) -> _Drawn:
    """Digit ``source`` of the split drawn ``height`` px tall with ``pen``, cut if ``broken``."""
    slant = float(np.clip(pen.slant + rng.uniform(-2, 2), -MAX_SLANT, MAX_SLANT))
    ink = _enlarge(digits.x[source], height, slant, rng, pen.crisp, pen.rotation)
    if pen.stroke in THIN:
        ink = _redraw(ink, pen.width)
    elif pen.stroke == "pen":
        ink = _redraw(ink, max(3.0, pen.width * height))
    clean = pieces = count_pieces(ink > INK)
    if broken:
        for attempt in range(4):  # a cut at a junction or near a tip may leave it whole
            cut = _cut(ink, rng, (1 if rng.random() < 0.7 else 2) + attempt)
            pieces = count_pieces(cut > INK)
            if pieces > clean:
                ink = cut
                break
        else:
            pieces = clean
    mask = ink > INK
    if pen.stroke == "pencil":  # grey, grainy graphite
        grain = _blur(rng.random(ink.shape).astype(np.float32), 0.6)
        ink = ink * rng.uniform(0.5, 0.8) * np.clip(0.8 + 2.0 * (grain - 0.5), 0.3, 1.0)
    if pen.pressure:
        ink = ink * _pressure(ink.shape, rng)
    if pen.strength < 1.0:
        ink = ink * np.float32(pen.strength)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.02), np.flatnonzero(ink.max(axis=0) > 0.02)
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return _Drawn(ink[crop].astype(np.float32), mask[crop], pieces, clean,
                  int(digits.y[source]), source)


# ------------------------------------------------------------------ a number: digits in a row

def _profile(mask: np.ndarray, right: bool) -> np.ndarray:
    """Per row, the rightmost (or leftmost) ink column; -inf/+inf on rows without ink."""
    has = mask.any(axis=1)
    if right:
        idx = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return np.where(has, idx, -np.inf)
    return np.where(has, np.argmax(mask, axis=1), np.inf)


def _line(drawn: list[_Drawn], heights: list[int], gaps: list[float], jitter: list[float]
          ) -> list[tuple[int, int]]:
    """(top, left) of each digit in a line: bottoms on a jittered baseline, each digit ``gap``
    px right of the ink before it, row by row (a gap of 1 or less makes the ink touch)."""
    base = max(heights) + 1
    tops = [int(round(base - d.ink.shape[0] + j)) for d, j in zip(drawn, jitter, strict=True)]
    shift = -min(tops)
    tops = [t + shift for t in tops]
    rows = max(t + d.ink.shape[0] for t, d in zip(tops, drawn, strict=True))
    right = np.full(rows, -np.inf)      # rightmost ink so far, per row
    places: list[tuple[int, int]] = []
    for d, top, gap in zip(drawn, tops, gaps, strict=True):
        h = d.ink.shape[0]
        if not places:
            left = 0
        else:
            near = right.copy()          # a row's neighbours count too: diagonal contact
            near[1:] = np.maximum(near[1:], right[:-1])
            near[:-1] = np.maximum(near[:-1], right[1:])
            mine = _profile(d.mask, right=False)
            both = np.isfinite(near[top:top + h]) & np.isfinite(mine)
            if both.any():
                left = int(math.ceil(gap + np.max(near[top:top + h][both] - mine[both])))
            else:  # no row in common: space from the boxes
                left = int(math.ceil(np.max(right[np.isfinite(right)]) + gap))
            # a digit may tuck under its neighbour's overhang (a 7's bar), never pass it
            prev, (_, prev_left) = drawn[len(places) - 1], places[-1]
            narrow = min(prev.ink.shape[1], d.ink.shape[1])
            left = max(left, prev_left + prev.ink.shape[1] - int(NEST * narrow))
        places.append((top, left))
        r = _profile(d.mask, right=True) + left
        right[top:top + h] = np.maximum(right[top:top + h], r)
    return places


def _number_pen(rng: np.random.Generator) -> _Pen:
    """The pen, pressure and slant of one number."""
    stroke = str(rng.choice(list(STROKES), p=list(STROKES.values())))
    width = float(rng.integers(1, 3)) if stroke in THIN else float(rng.uniform(0.02, 0.05))
    return _Pen(stroke=stroke, width=width, pressure=bool(rng.random() < PRESSURE),
                slant=float(rng.uniform(-MAX_SLANT, MAX_SLANT)))


def _frame(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height) of a number photo: mostly 640x480, some portrait and other sizes."""
    u = rng.random()
    if u < 0.65:
        return 640, 480
    if u < 0.75:
        return 480, 640
    w, h = OTHER_FRAMES[int(rng.integers(len(OTHER_FRAMES)))]
    return int(w), int(h)


def _at_least_one(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """n booleans, each True with probability p, at least one True."""
    pick = rng.random(n) < p
    if not pick.any():
        pick[int(rng.integers(n))] = True
    return pick


def number_sample(digits: Digits, seed: int, index: int, frame: tuple[int, int] | None = None,
                  n_digits: int | None = None) -> Sample:
    """Number photo ``index`` of the set for ``seed`` (``frame`` and ``n_digits`` force its
    size and length; both also rule out a second line)."""
    rng = _rng(seed, "numbers", index)
    width, height = frame or _frame(rng)
    two = frame is None and n_digits is None and rng.random() < TWO_LINES
    counts = ([int(rng.integers(2, 4)), int(rng.integers(2, 4))] if two
              else [n_digits or int(rng.integers(2, 7))])
    pen = _number_pen(rng)
    touch = rng.random() < TOUCHING
    broken = rng.random() < BROKEN
    varied = rng.random() < SIZE_VARIATION
    ratio = float(rng.uniform(1.3, 1.9)) if varied else 1.0
    jitter = float(rng.uniform(0.0, 0.12))
    share = float(rng.uniform(0.25, 0.75))  # the longest line's share of the frame's width
    sources = [rng.integers(len(digits.x), size=c) for c in counts]
    longest = max(counts)
    # mean digit width with its gap is about 0.8 of the height
    h_mean = share * width / (longest * 0.8)
    h_mean = float(np.clip(h_mean, max(20.0, 0.07 * height), (0.42 if not two else 0.22) * height))
    for _ in range(10):
        lines = [_number_line(digits, src, h_mean, ratio, jitter, pen, touch, broken, rng)
                 for src in sources]
        sizes = [d.ink.shape[0] for placed, _, _ in lines for d, _ in placed]
        if max(sizes) > MAX_HEIGHT_RATIO * min(sizes):  # pen tips and cuts change heights too
            ratio = max(1.0, ratio * 0.9)
            continue
        line_gap = int(rng.uniform(0.25, 0.6) * h_mean)
        w_total = max(w for _, w, _ in lines)
        h_total = sum(h for _, _, h in lines) + line_gap * (len(lines) - 1)
        fit = min(0.92 * width / w_total, 0.9 * height / h_total)
        if fit >= 1.0:
            break
        h_mean *= fit * 0.97
    left0 = _place(rng, width, w_total)
    top0 = _place(rng, height, h_total)
    glyphs: list[Glyph] = []
    y = top0
    for n_line, (placed, w_line, h_line) in enumerate(lines):
        x = left0 + int(rng.integers(0, max(1, w_total - w_line + 1)))  # lines need not align
        for d, (top, left) in placed:
            box = (x + left, y + top, x + left + d.ink.shape[1], y + top + d.ink.shape[0])
            glyphs.append(Glyph(d.label, d.source, box,
                                np.rint(d.ink * 255).astype(np.uint8), d.mask, d.pieces,
                                d.clean_pieces, n_line))
        y += h_line + line_gap
    pairs = sum(touching(a, b) for i, a in enumerate(glyphs) for b in glyphs[i + 1:]
                if a.line == b.line)
    sizes = [g.box[3] - g.box[1] for g in glyphs]
    tags = {"digits": str(sum(counts)), "lines": str(len(counts)),
            "touching": "yes" if pairs else "no",
            "stroke": pen.stroke, "thin": "yes" if pen.stroke in THIN else "no",
            "broken": "yes" if any(g.pieces > g.clean_pieces for g in glyphs) else "no",
            "pressure": "yes" if pen.pressure else "no",
            "slant": _slant_tag(pen.slant),
            "size variation": _size_tag(max(sizes) / min(sizes))}
    params: dict[str, float | int | str] = {
        "slant_deg": round(pen.slant, 2), "size_ratio_drawn": round(ratio, 3),
        "height_ratio_measured": round(max(sizes) / min(sizes), 3),
        "baseline_jitter": round(jitter, 3), "touching_pairs": int(pairs),
        "pen_width": pen.width if pen.stroke in THIN + ("pen",) else 0,
        "digit_height_px": round(float(np.mean(sizes)), 1)}
    truth = "\n".join("".join(str(g.label) for g in glyphs if g.line == n)
                      for n in range(len(counts)))
    frame_tag = f"{width}x{height}" if (width, height) in ((640, 480), (480, 640)) else "other"
    return _finish("numbers", index, digits.split, glyphs, truth, (width, height), frame_tag,
                   pen.stroke == "pencil", tags, params, rng)


LINE_DIGITS = (1, 8)       # the line reader's training lines hold 1-8 digits...
LINE_HEIGHTS = (26, 56)    # ...this many pixels tall, in a frame cut close around them
LINE_SINGLES = 0.15        # ...and this share are single thin or broken digits as in "singles"


def line_sample(digits: Digits, seed: int, index: int) -> Sample:
    """Training line ``index`` of the set for ``seed``: a photo of one line of digits, drawn and
    photographed as the number photos are, in a frame about 2.5 digit heights tall (small, so
    that hundreds of thousands can be made while training)."""
    rng = _rng(seed, "lines", index)
    height = float(rng.uniform(*LINE_HEIGHTS))
    frame_h = int(height / rng.uniform(0.3, 0.42))
    if rng.random() < LINE_SINGLES:
        return single_sample(digits, seed, index, frame=(int(frame_h * rng.uniform(0.8, 1.4)),
                                                         frame_h))
    n = int(rng.integers(LINE_DIGITS[0], LINE_DIGITS[1] + 1))
    frame_w = int(n * 0.85 * height / rng.uniform(0.55, 0.85)) + 16
    return number_sample(digits, seed, index, frame=(frame_w, frame_h), n_digits=n)


def _place(rng: np.random.Generator, side: int, size: int) -> int:
    """A random start for ``size`` pixels along ``side``, 3% of it clear at both ends if room."""
    margin = int(0.03 * side)
    return int(rng.integers(margin, max(margin + 1, side - size - margin)))


def _size_tag(ratio: float) -> str:
    """The bucket of a number's tallest / shortest digit height, as measured."""
    return "1-1.15x" if ratio < 1.15 else "1.15-1.3x" if ratio < 1.3 else "1.3-2x"


def _slant_tag(slant: float) -> str:
    """The slant's bucket."""
    a = abs(slant)
    return "0-5 deg" if a < 5 else "5-10 deg" if a < 10 else "10-15 deg"


def _number_line(digits: Digits, sources: np.ndarray, h_mean: float, ratio: float,
                 jitter: float, pen: _Pen, touch: bool, broken: bool, rng: np.random.Generator
                 ) -> tuple[list[tuple[_Drawn, tuple[int, int]]], int, int]:
    """One line of digits drawn and placed: [(drawn, (top, left))], its width and height."""
    n = len(sources)
    if ratio > 1.0 and n > 1:  # heights spread over [1, ratio], with both ends used
        f = rng.uniform(1.0, ratio, size=n)
        ends = rng.permutation(n)[:2]
        f[ends[0]], f[ends[1]] = 1.0, ratio
    else:
        f = rng.uniform(0.93, 1.07, size=n)
    f = f / f.mean()
    heights = [max(12, int(round(h_mean * v))) for v in f]
    cut = _at_least_one(rng, n, BROKEN_DIGIT) if broken else np.zeros(n, dtype=bool)
    drawn = [_draw(digits, int(s), h, pen, bool(c), rng)
             for s, h, c in zip(sources, heights, cut, strict=True)]
    pushed = (_at_least_one(rng, n - 1, TOUCH_PAIR) if touch and n > 1
              else np.zeros(n - 1, dtype=bool))
    gaps = [0.0]
    for i in range(1, n):
        if pushed[i - 1]:  # touching (gap 1: adjacent pixels) or overlapping by a few pixels
            narrow = min(drawn[i].ink.shape[1], drawn[i - 1].ink.shape[1])
            gaps.append(1.0 - min(rng.uniform(0, 0.08) * h_mean, 0.25 * narrow))
        else:
            gaps.append(max(3.0, rng.uniform(0.06, 0.4) * h_mean))
    offsets = [float(rng.uniform(-jitter, jitter)) * h for h in heights]
    places = _line(drawn, heights, gaps, offsets)
    w = max(left + d.ink.shape[1] for d, (_, left) in zip(drawn, places, strict=True))
    h = max(top + d.ink.shape[0] for d, (top, _) in zip(drawn, places, strict=True))
    return list(zip(drawn, places, strict=True)), w, h


def plain_number(digits: Digits, sources: list[int], rng: np.random.Generator,
                 gap: float = 0.25, height: int = 70, thin: bool = False,
                 shading: float = 0.3, frame: tuple[int, int] = (640, 480)) -> Sample:
    """Digits ``sources`` of the split in a row, centred, as dark ink on a noisy grey page whose
    right side is ``shading`` darker than its left: one property at a time, for tests.

    ``gap`` is the space between neighbouring digits' boxes as a share of ``height`` (negative:
    the boxes overlap); ``thin`` draws with a 2 px fine pen instead of MNIST's stroke.
    """
    pen = _Pen(stroke="fine pen", width=2.0) if thin else _Pen(crisp=False)
    drawn = [_draw(digits, s, height, pen, False, rng) for s in sources]
    lefts = np.cumsum([0] + [d.ink.shape[1] + int(gap * height) for d in drawn[:-1]])
    tops = [(height - d.ink.shape[0]) // 2 + int(rng.integers(-4, 5)) + 4 for d in drawn]
    places = list(zip(tops, lefts.tolist(), strict=True))
    w = max(left + d.ink.shape[1] for d, (_, left) in zip(drawn, places, strict=True))
    h = max(top + d.ink.shape[0] for d, (top, _) in zip(drawn, places, strict=True))
    x0, y0 = (frame[0] - w) // 2, (frame[1] - h) // 2
    glyphs = [Glyph(d.label, d.source, (x0 + left, y0 + top, x0 + left + d.ink.shape[1],
                                        y0 + top + d.ink.shape[0]),
                    np.rint(d.ink * 255).astype(np.uint8), d.mask, d.pieces, d.clean_pieces)
              for d, (top, left) in zip(drawn, places, strict=True)]
    ink = _lay(glyphs, frame)
    yy, xx = np.mgrid[0:frame[1], 0:frame[0]].astype(np.float32)
    light = 1.0 - shading * xx / frame[0] - shading / 3 * yy / frame[1]
    page = 0.92 * light * (1 - 0.85 * ink) + rng.normal(0, 0.02, size=ink.shape)
    image = np.clip(np.rint(page * 255), 0, 255).astype(np.uint8)
    truth = "".join(str(g.label) for g in glyphs)
    return Sample("numbers", 0, digits.split, image, truth, tuple(glyphs), {})


# ------------------------------------------------------------------ single thin/broken digits

def single_sample(digits: Digits, seed: int, index: int,
                  frame: tuple[int, int] | None = None) -> Sample:
    """Single-digit photo ``index`` of the set for ``seed``: fine pen, pencil or uneven pressure,
    often broken (``frame`` forces the photo's size)."""
    rng = _rng(seed, "singles", index)
    source = int(rng.integers(len(digits.x)))
    # every one thin (1-2 px) or broken; uneven pressure on some
    stroke = str(rng.choice(list(SINGLE_STROKES), p=list(SINGLE_STROKES.values())))
    width = float(rng.integers(1, 3)) if stroke in THIN else float(rng.uniform(0.02, 0.05))
    pen = _Pen(stroke=stroke, width=width, pressure=bool(rng.random() < SINGLE_PRESSURE),
               slant=float(rng.uniform(-10, 10)))
    broken = stroke not in THIN or bool(rng.random() < SINGLE_BROKEN)
    # a crop around one digit: 120-480 px, up to 1.6:1
    glyph, size = _one_digit(digits, source, pen, broken, (120, 480), 1.6, (0.35, 0.75), 24,
                             frame, rng)
    tags = {"stroke": stroke, "thin": "yes" if stroke in THIN else "no",
            "broken": "yes" if glyph.pieces > glyph.clean_pieces else "no",
            "pressure": "yes" if pen.pressure else "no"}
    params: dict[str, float | int | str] = {"slant_deg": round(pen.slant, 2),
                                            "pen_width": pen.width,
                                            "digit_height_px": glyph.box[3] - glyph.box[1]}
    frame_tag = "crop <240 px" if min(size) < 240 else "crop 240-480 px"
    return _finish("singles", index, digits.split, [glyph], str(glyph.label), size, frame_tag,
                   stroke == "pencil", tags, params, rng)


def _one_digit(digits: Digits, source: int, pen: _Pen, broken: bool, sides: tuple[int, int],
               max_aspect: float, share: tuple[float, float], min_height: int,
               frame: tuple[int, int] | None, rng: np.random.Generator
               ) -> tuple[Glyph, tuple[int, int]]:
    """Digit ``source`` drawn and placed in a frame of ``sides`` px (up to ``max_aspect``:1, or
    ``frame``), ``share`` of its shorter side tall; the frame grows if the ink would fill it."""
    if frame is None:
        while True:
            width, height = (int(v) for v in rng.integers(sides[0], sides[1] + 1, size=2))
            if max(width, height) <= max_aspect * min(width, height):
                break
    else:
        width, height = frame
    h = max(min_height, int(rng.uniform(*share) * min(width, height)))
    d = _draw(digits, source, h, pen, broken, rng)
    h_ink, w_ink = d.ink.shape
    if w_ink > 0.9 * width:  # a wide, slanted digit in a narrow frame
        width = int(w_ink / 0.9) + 1
    if h_ink > 0.9 * height:
        height = int(h_ink / 0.9) + 1
    top, left = _place(rng, height, h_ink), _place(rng, width, w_ink)
    glyph = Glyph(d.label, source, (left, top, left + w_ink, top + h_ink),
                  np.rint(d.ink * 255).astype(np.uint8), d.mask, d.pieces, d.clean_pieces)
    return glyph, (width, height)


# -------------------------------------------------------- one digit, as users photograph it

@dataclass(frozen=True)
class Camera:
    """How a set's photos are taken; each chance is of one effect (at 0 it is never drawn, and
    not tagged)."""

    light_on_dark: float = LIGHT_ON_DARK
    texture: float = TEXTURE
    lighting: tuple[str, ...] = LIGHTING
    edge_bands: float = 0.0            # a band of table or scanner lid along one or two sides
    blur: float = BLUR
    blur_sigma: tuple[float, float] = (0.4, 1.2)  # px; photo_sample: MNIST px at the digit's scale
    noise: tuple[float, float] = (1.5, 8.0)      # Gaussian sigma range, grey levels
    salt_pepper: float = 0.0           # dead and hot pixels, 0.1-1% of them
    gray: float = GRAY
    jpeg: float = JPEG
    jpeg_quality: tuple[int, int] = (35, 95)
    rgba: float = 0.0                  # colour PNGs saved with an (opaque) alpha channel


READER_CAMERA = Camera()


@dataclass(frozen=True)
class PhotoKind:
    """One MNIST digit per photo, as users take them: frame, digit size, pens and camera."""

    camera: Camera
    strokes: dict[str, tuple[float, float]]  # name -> chance, pen width (share of the height;
                                             # 0: MNIST's own stroke, enlarged)
    share: tuple[float, float]       # the digit's height, share of the frame's shorter side
    rotation: float = 0.0            # degrees either way
    faint: float = 1.0               # ink strength drawn from [faint, 1]
    sides: tuple[int, int] = (64, 400)  # frame side range, px
    max_aspect: float = 2.0


PHOTO_KINDS = {
    # inverted, tinted, noised, off-centre: what any photo of a digit needs
    "plain": PhotoKind(Camera(light_on_dark=0.25, texture=0.0, lighting=("flat",), blur=0.0,
                              noise=(0.0, 12.0), gray=0.25, jpeg=0.25, jpeg_quality=(60, 95),
                              rgba=0.5),
                       {"normal": (1.0, 0.0)}, (0.25, 0.55), max_aspect=6.25),  # any 64-400 px
    # and what real photos and scans do: light, page edges, blur, defects, pens, tilt
    "hard": PhotoKind(Camera(light_on_dark=0.25, edge_bands=0.35, blur_sigma=(0.3, 0.8),
                             noise=(0.0, 20.0), salt_pepper=0.25, gray=0.3, jpeg=0.4,
                             jpeg_quality=(30, 95), rgba=0.33),
                      {"thin": (0.2, 0.07), "normal": (0.4, 0.0), "thick": (0.2, 0.15),
                       "very thick": (0.2, 0.17)},
                      (0.2, 0.9), rotation=10.0, faint=0.6),
}


def photo_sample(digits: Digits, seed: int, index: int, kind: str = "hard") -> Sample:
    """One-digit photo ``index`` of the ``kind`` set (PHOTO_KINDS) for ``seed``; ``sample.ink()``
    is the digit as drawn, before paper, light, noise and compression."""
    k = PHOTO_KINDS[kind]
    rng = _rng(seed, f"{kind} photos", index)
    source = int(rng.integers(len(digits.x)))
    names = list(k.strokes)
    stroke = names[0] if len(names) == 1 else str(
        rng.choice(names, p=[k.strokes[n][0] for n in names]))
    share = k.strokes[stroke][1]
    pen = _Pen("pen", width=share * float(rng.uniform(0.9, 1.1))) if share else _Pen(crisp=False)
    if k.rotation:
        pen.rotation = float(rng.uniform(-k.rotation, k.rotation))
    if k.faint < 1.0:
        pen.strength = float(rng.uniform(k.faint, 1.0))
    glyph, (width, height) = _one_digit(digits, source, pen, False, k.sides, k.max_aspect,
                                        k.share, 12, None, rng)
    short = min(width, height)
    tall = (glyph.box[3] - glyph.box[1]) / short
    tags = {"stroke": stroke,
            "aspect": "square-ish" if max(width, height) < 1.2 * short else "non-square",
            "digit size": "<40%" if tall < 0.4 else "40-65%" if tall < 0.65 else "65-90%+"}
    if k.rotation:
        turn = abs(pen.rotation)
        tags["rotation"] = "<3 deg" if turn < 3 else "3-7 deg" if turn < 7 else "7-10 deg"
    params: dict[str, float | int | str] = {"pen_width": round(pen.width, 3) if share else 0,
                                            "rotation_deg": round(pen.rotation, 2),
                                            "strength": round(pen.strength, 3)}
    frame_tag = "small <128" if short < 128 else "medium <256" if short < 256 else "large"
    sample = _finish(f"{kind} photos", index, digits.split, [glyph], str(glyph.label),
                     (width, height), frame_tag, False, tags, params, rng, k.camera,
                     unit=(glyph.box[3] - glyph.box[1]) / 20)
    noise = float(sample.params["noise_sigma"])
    return replace(sample, tags={**sample.tags, "noise": "sigma <5" if noise < 5 else
                                 "sigma 5-12" if noise < 12 else "sigma 12+"})


# ------------------------------------------------------------------ the photo

def _finish(set_name: str, index: int, split: str, glyphs: list[Glyph], truth: str,
            frame: tuple[int, int], frame_tag: str, pencil: bool, tags: dict[str, str],
            params: dict[str, float | int | str], rng: np.random.Generator,
            camera: Camera = READER_CAMERA, unit: float = 1.0) -> Sample:
    """Lay the glyphs' ink on paper and photograph it: the finished Sample."""
    width, height = frame
    image, jpeg, photo_tags, photo_params = _photograph(_lay(glyphs, frame), pencil, rng,
                                                        camera, unit)
    params = {**params, **photo_params, "width": width, "height": height}
    return Sample(set_name, index, split, image, truth, tuple(glyphs),
                  {**tags, **photo_tags, "frame": frame_tag}, params, jpeg)


def _lay(glyphs: Iterable[Glyph], frame: tuple[int, int]) -> np.ndarray:
    """The glyphs' ink coverage on a ``frame`` (width, height) page: float32 [H,W] in [0,1]."""
    ink = np.zeros(frame[::-1], dtype=np.float32)
    for g in glyphs:
        left, top, right, bottom = g.box
        region = ink[top:bottom, left:right]
        region[:] = 1 - (1 - region) * (1 - g.ink.astype(np.float32) / 255)  # inks layer up
    return ink


def _colours(rng: np.random.Generator, dark_ink: bool, pencil: bool
             ) -> tuple[np.ndarray, np.ndarray, str]:
    """(paper RGB, ink RGB, ink name), far enough apart in luma to be legible."""
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        if dark_ink:
            paper = rng.uniform(175, 250) + rng.uniform(-12, 12, size=3)
            name = "pencil" if pencil else str(rng.choice(["black", "blue", "dark grey"]))
            ink = {"pencil": lambda: np.full(3, rng.uniform(40, 80)),
                   "black": lambda: rng.uniform(5, 45, size=3),
                   "blue": lambda: np.array([rng.uniform(15, 60), rng.uniform(25, 70),
                                             rng.uniform(100, 160)]),
                   "dark grey": lambda: np.full(3, rng.uniform(50, 90))}[name]()
        else:
            paper = rng.uniform(15, 70) + np.array([0, rng.uniform(0, 20), 0])  # boards: greenish
            name = "chalk"
            ink = rng.uniform(190, 250) + rng.uniform(-8, 8, size=3)
        if abs(float((paper - ink) @ luma)) >= 100:
            return paper, ink, name


def _lighting(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Illumination factor [H,W]: flat, a gradient, a vignette or a soft cast shadow."""
    yy = np.arange(height, dtype=np.float32)[:, None]   # the pixel grid, broadcast
    xx = np.arange(width, dtype=np.float32)[None, :]
    if kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        t = np.cos(theta) * xx / width + np.sin(theta) * yy / height
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        return np.asarray(1 - rng.uniform(0.2, 0.55) * t, dtype=np.float32)
    if kind == "vignette":
        cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65)
        r2 = ((xx - cx) / (width / 2)) ** 2 + ((yy - cy) / (height / 2)) ** 2
        return np.asarray(1 - rng.uniform(0.2, 0.5) * np.clip(r2 / 2, 0, 1), dtype=np.float32)
    if kind == "shadow":  # the edge of a hand's or phone's shadow, soft
        theta = rng.uniform(0, 2 * np.pi)
        cx, cy = width * rng.uniform(0.2, 0.8), height * rng.uniform(0.2, 0.8)
        d = np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)
        soft = rng.uniform(0.02, 0.15) * min(width, height)
        return np.asarray(1 - rng.uniform(0.25, 0.5) / (1 + np.exp(-d / soft)),
                          dtype=np.float32)
    return np.ones((height, width), dtype=np.float32)


def _bytes(rgb: np.ndarray) -> np.ndarray:
    """Float pixels rounded and clipped to uint8 (rounded in place: ``rgb`` is spent)."""
    return np.clip(np.rint(rgb, out=rgb), 0, 255, out=rgb).astype(np.uint8)


def _chance(rng: np.random.Generator, p: float) -> bool:
    """True with probability ``p``; no draw at all when ``p`` is 0 (an effect a set never uses
    leaves its other draws as they were)."""
    return p > 0 and bool(rng.random() < p)


def _edge_bands(rgb: np.ndarray, ink: np.ndarray, dark_ink: bool, rng: np.random.Generator
                ) -> bool:
    """Paint a band of table or scanner lid along one or two sides of the page, clear of the
    ink, in place; False when no side has room."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = ink.shape
    room = {"top": rows[0], "bottom": height - 1 - rows[-1],
            "left": cols[0], "right": width - 1 - cols[-1]}
    sides = [side for side, free in room.items() if free >= 6]
    if not sides:
        return False
    table = rng.uniform(0, 80, size=3) if dark_ink else rng.uniform(120, 230, size=3)
    for side in rng.permutation(sides)[:int(rng.integers(1, 3))]:
        across = height if side in ("top", "bottom") else width
        depth = max(2, min(int(rng.uniform(0.3, 0.9) * room[side]), int(0.15 * across)))
        every = slice(None)
        band = {"top": (slice(0, depth), every), "bottom": (slice(height - depth, None), every),
                "left": (every, slice(0, depth)), "right": (every, slice(width - depth, None))}
        rgb[band[str(side)]] = table
    return True


def _photograph(ink: np.ndarray, pencil: bool, rng: np.random.Generator,
                camera: Camera = READER_CAMERA, unit: float = 1.0
                ) -> tuple[np.ndarray, bytes | None, dict[str, str], dict[str, float | int | str]]:
    """Ink coverage [H,W] -> a photo: paper and ink colours, texture, page edges, light, blur,
    noise, dead pixels, JPEG or PNG. Blur sigmas are in ``unit`` px (the digit's scale)."""
    from PIL import Image, ImageFilter

    height, width = ink.shape
    dark_ink = not _chance(rng, camera.light_on_dark)
    paper, pen, pen_name = _colours(rng, dark_ink, pencil)
    page: np.ndarray = np.broadcast_to(paper.astype(np.float32), (height, width, 3))
    texture = _chance(rng, camera.texture)
    if texture:  # blotchy low-frequency grain
        coarse = rng.normal(0, 1, size=(max(2, height // 40), max(2, width // 40)))
        blotch = np.asarray(Image.fromarray(coarse.astype(np.float32), "F").resize(
            (width, height), Image.Resampling.BICUBIC))
        page = page + np.float32(rng.uniform(2, 6)) * blotch[..., None]
    cover = ink[..., None]
    rgb = page * (1 - cover)
    rgb += pen.astype(np.float32) * cover
    extra: dict[str, str] = {}
    if camera.edge_bands:
        bands = _chance(rng, camera.edge_bands) and _edge_bands(rgb, ink, dark_ink, rng)
        extra["edge bands"] = "yes" if bands else "no"
    light = str(rng.choice(camera.lighting))
    if light != "flat":
        rgb *= _lighting(light, height, width, rng)[..., None]
    img = Image.fromarray(_bytes(rgb), "RGB")
    blur = _chance(rng, camera.blur)
    sigma_blur = max(0.4, float(rng.uniform(*camera.blur_sigma)) * unit) if blur else 0.0
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(sigma_blur))
    rgb = np.asarray(img, dtype=np.float32)
    noise = float(rng.uniform(*camera.noise))
    rgb += np.float32(noise) * rng.standard_normal((height, width, 1), dtype=np.float32)
    if camera.salt_pepper:
        dead = _chance(rng, camera.salt_pepper)
        if dead:
            hit = rng.random((height, width)) / rng.uniform(0.001, 0.01)
            rgb[hit < 0.5] = 0
            rgb[(hit >= 0.5) & (hit < 1)] = 255
        extra["salt-pepper"] = "yes" if dead else "no"
    img = Image.fromarray(_bytes(rgb), "RGB")
    gray = _chance(rng, camera.gray)
    if gray:
        img = img.convert("L")
    tags = {"background": light, "texture": "yes" if texture else "no",
            "polarity": "dark on light" if dark_ink else "light on dark",
            "blur": "yes" if blur else "no", **extra}
    params: dict[str, float | int | str] = {"ink": pen_name, "blur_sigma": round(sigma_blur, 2),
                                            "noise_sigma": round(noise, 2), "gray": int(gray)}
    if _chance(rng, camera.jpeg):
        lo, hi = camera.jpeg_quality
        quality = int(rng.integers(lo, hi + 1))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            image = np.asarray(decoded)
        tags["file"] = f"jpeg q{lo}-69" if quality < 70 else f"jpeg q70-{hi}"
        params["jpeg_quality"] = quality
        return image, data, tags, params
    tags["file"] = "png"
    if not gray and _chance(rng, camera.rgba):
        img = img.convert("RGBA")
        tags["file"] = "png rgba"
    return np.asarray(img), None, tags, params


# ------------------------------------------------------------------ summaries and files

def value_order(value: str) -> tuple[int, str]:
    """Sort key of tag values: numbers by value ("2", "10-15 deg"), then words."""
    head = value.split()[0].split("-")[0].rstrip("x")
    return (0, f"{float(head):012.3f}") if head.replace(".", "", 1).isdigit() else (1, value)


def describe(sample: Sample, file: str | None = None) -> dict:
    """A sample's truth as JSON: file, truth, tags, parameters and each digit's box."""
    out: dict = {"index": sample.index, "truth": sample.truth, "tags": sample.tags,
                 "params": sample.params,
                 "digits": [{"label": g.label, "box": list(g.box), "line": g.line,
                             "mnist_index": g.source, "pieces": g.pieces} for g in sample.glyphs]}
    if file is not None:
        out = {"file": file, **out}
    return out


def save_sets(digits: Digits, folder: str | Path, seed: int, n_numbers: int, n_singles: int,
              log: Callable[[str], None] = print) -> Path:
    """Write both sets' photos into FOLDER/numbers and FOLDER/singles, and FOLDER/truth.json."""
    from common.publish import write_json

    root = Path(folder)
    entries: dict[str, list[dict]] = {}
    for name, make, n in (("numbers", number_sample, n_numbers),
                          ("singles", single_sample, n_singles)):
        sub = root / name
        sub.mkdir(parents=True, exist_ok=True)
        entries[name] = []
        for i in range(n):
            s = make(digits, seed, i)
            path = s.write(sub / f"{i:05d}")
            entries[name].append(describe(s, f"{name}/{path.name}"))
            if (i + 1) % 200 == 0 or i + 1 == n:
                log(f"  {name}: {i + 1}/{n}")
    truth = root / "truth.json"
    write_json(truth, {"split": digits.split, "seed": seed,
                       "mnist_index": f"into MNIST's x_{digits.split}",
                       "box": "left, top, right, bottom in photo pixels (right, bottom exclusive)",
                       **entries})
    return truth
