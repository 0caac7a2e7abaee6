"""The ink of a photo or scan: light on dark, the paper's background removed, in numpy alone.

The first steps of reading a picture, shared by one digit (``normalize.preprocess_image``) and by
a whole number (``reader.read_lines``):

1. grayscale (ITU-R 601 luma); transparent pixels are composited onto the paper (a mostly
   opaque picture's own, else the side that contrasts with the opaque ink); arrays larger than
   2048 pixels a side are shrunk as image files are; large images are box-reduced to about
   256x256 pixels,
   then (from 48 px a side) blurred 3x3 against noise;
2. uniform bands along the sides (a table or scanner lid beyond the page) are set aside;
   polarity = whichever side of the background holds more ink mass (dark ink on light paper
   is inverted to light on dark);
3. the background is estimated on a mesh of cells and interpolated, so uneven lighting
   (gradients, vignettes, soft shadows) is subtracted: first from each cell's paper side, then,
   with the ink found that way left out, from the median of the rest; Otsu's threshold then
   separates ink from background, and images whose ink does not stand out of the noise are
   rejected as blank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from mnist_edge import imageops as ops
from mnist_edge.errors import BlankImageError, InputError
from mnist_edge.images import MAX_PIXELS, shrink_factor

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

WORK_PIXELS = 256 * 256  # larger inputs are box-reduced to about this many pixels first
NOISE_SAMPLE = 16384  # pixels sampled for the noise of a finer view
SOFT = 0.4          # ink pieces whose mean intensity is below 40% of the strokes' level...
FILLED = 0.3        # ...and that fill 30% of their box are shading, not strokes
BLUR_MIN_SIDE = 48  # smaller images (already digit-sized) are not blurred
MESH = 16           # background cells: the shorter side is cut into about this many...
COARSE_MESH = 6     # ...and into this many for the first look (wider than a thick stroke)
CELL_MIN = 4        # ...of at least this many pixels
MIN_FREE = 0.25     # a cell with less background than this (all ink) is filled from its neighbours
PAPER_PERCENTILE = 10.0  # first estimate of a cell's paper level: its paper-side quartile
UNEVEN_RING = 0.05  # a border ring varying by 5% of the image's contrast is unevenly lit
NOISE_SIGMAS = 3.0  # deviations beyond 3 noise sigmas count as ink when choosing the polarity
SHADING_RESIDUE = 0.1  # ...and beyond 10% of the image's range
MIN_CONTRAST = 0.04  # ink must differ from the background by 10% of the full range...
NOISE_FACTOR = 8.0   # ...and by 8 standard deviations of the (blurred) background noise
THRESHOLD_NOISE = 4.0  # ink pixels stand 4 noise sigmas above the background at least
FLOOR = 0.5         # intensities below this fraction of the threshold become background
EDGE_DEPTH = 0.2    # bands of table or scanner lid reach at most 20% into the image...
EDGE_STEP = 0.06    # ...and end in a step sharper than 6% of its side
KEEP_MARGIN = 2     # pixels kept around the digit's components (its anti-aliased edges)
MIN_INK_PIXELS = 4
OPAQUE_PICTURE = 0.5  # an image more opaque than this shows its own paper (see _composite)
PAD_PIXELS = 4      # find_ink(pad=True) adds this many working pixels of paper around a picture
PAD_LEVEL = 0.2     # ...on the sides within 20% of its contrast of its level


@dataclass
class Ink:
    """The ink of a picture at working resolution: light on dark, background removed."""

    z: np.ndarray     # float32 [h,w] in [0,1]: soft intensities, anti-aliased edges kept
    mask: np.ndarray  # bool [h,w]: the ink proper (above the threshold)
    scale: int        # input pixels per working pixel, along each side
    offset: tuple[int, int] = (0, 0)  # working pixels of paper added above and to the left
                                       # of the input (find_ink's ``pad``)


def find_ink(image: np.ndarray | PILImage, work_pixels: int = WORK_PIXELS,
             detail_pixels: int | None = None, pad: bool = False) -> Ink:
    """Steps 1-3: the picture's ink; BlankImageError if none.

    The paper (polarity, uneven light, page edges) is read at about ``work_pixels`` pixels; the
    ink is then taken at up to ``detail_pixels`` when given, against that paper scaled up, so a
    fine pen's strokes are not averaged away. With ``pad``, ink that reaches a side where the
    picture ends in paper (a tight crop) is looked for again with PAD_PIXELS working pixels of
    paper added there (see _padded), so it no longer touches the image's border and is not taken
    for a page's edge; a picture whose ink touches no such side is read as it is.
    """
    full, shrunk = to_gray(image)
    if min(full.shape) < 1:
        raise InputError(f"image has shape {full.shape}; it needs at least one pixel")
    scale = ops.reduction(full.shape, work_pixels)
    fine = ops.reduction(full.shape, detail_pixels) if detail_pixels else scale
    ink = _find_ink(full, scale, fine)
    if pad:
        m = ink.mask
        touched = ((bool(m[0].any()), bool(m[-1].any())),
                   (bool(m[:, 0].any()), bool(m[:, -1].any())))
        # whole blocks of both reductions: each sees the picture as it would unpadded
        padded, top, left = _padded(full, PAD_PIXELS * scale * fine // math.gcd(scale, fine),
                                    touched)
        if padded is not full:
            ink = _find_ink(padded, scale, fine)
            ink.offset = (top // ink.scale, left // ink.scale)
    ink.scale *= shrunk
    return ink


def _find_ink(full: np.ndarray, scale: int, fine: int) -> Ink:
    """find_ink on the gray picture, reduced by ``scale`` for the paper and ``fine`` for the
    ink."""
    gray = _smooth(ops.reduce(full, 0, scale))
    ink, noise, paper = _ink(gray)
    if fine < scale:
        ink, noise = _ink_in_detail(_smooth(ops.reduce(full, 0, fine)), paper, noise)
        scale = fine
    ink_map = _scaled_ink(ink, noise)
    shading = _shading(ink_map)
    if shading.any():  # set the shading aside and look again at what remains
        ink = np.where(ops.dilate(shading, KEEP_MARGIN), 0.0, ink).astype(np.float32)
        ink_map = _scaled_ink(ink, noise)
    return Ink(ink_map.z, ink_map.mask, scale)


def _padded(gray: np.ndarray, margin: int,
            touched: tuple[tuple[bool, bool], tuple[bool, bool]]) -> tuple[np.ndarray, int, int]:
    """``gray`` with ``margin`` pixels of paper added on each side that ink ``touched`` (top,
    bottom; left, right) where the picture ends in paper (its outermost row or column at the
    picture's level, allowing for uneven light: a tight crop), and the pixels added at its top
    and left; ``gray`` itself when no side is. Other sides (a table, a scanner lid, a turned
    page's corners) are left as they are: what touches them is still a page's edge."""
    sample = ops.sample(gray)
    level = float(ops.median(sample))
    lo, hi = ops.percentile(sample, [1, 99])
    near = max(MIN_CONTRAST, PAD_LEVEL * float(hi - lo))
    widths, levels = [], []
    for view, ends in zip((gray, gray.T), touched, strict=True):  # rows, then columns
        sides = [float(ops.median(ops.sample(line))) for line in (view[0], view[-1])]
        widths.append(tuple(margin if end and abs(side - level) < near else 0
                            for side, end in zip(sides, ends, strict=True)))
        levels.append(tuple(sides))
    if not any(any(w) for w in widths):
        return gray, 0, 0
    out = np.pad(gray, widths, mode="constant", constant_values=levels)
    return out, widths[0][0], widths[1][0]


def _scaled_ink(ink: np.ndarray, noise: float) -> Ink:
    """Otsu's threshold, the strokes' level and the soft intensities of an ink map (scale 1)."""
    threshold = ops.otsu(ink if ink.size <= WORK_PIXELS else ink[::2, ::2])
    strokes = ink[ink > threshold]
    level = float(ops.percentile(strokes, 90)) if strokes.size else 0.0
    if strokes.size < MIN_INK_PIXELS or level < max(MIN_CONTRAST, NOISE_FACTOR * noise):
        raise BlankImageError("no ink found: the image is blank or holds only noise")
    threshold = max(threshold, THRESHOLD_NOISE * noise)
    floor = FLOOR * threshold
    z = np.clip((ink - floor) / (level - floor), 0.0, 1.0).astype(np.float32)
    return Ink(z, ink > threshold, 1)


def _shading(ink: Ink) -> np.ndarray:
    """Pieces of the ink map that are shading left over, not strokes: soft (their intensities
    ramp up from the threshold instead of standing flat at the strokes' level) and filled
    (they cover much of their box, as no handwritten stroke does unless it is bold and flat)."""
    c = ops.components(ink.mask, ink.z)
    if c is None:
        return np.zeros_like(ink.mask)
    filled = c.area / ((c.bottom - c.top + 1) * (c.right - c.left + 1))
    soft = (c.mass / c.area < SOFT) & (filled > FILLED) & (c.area >= 4 * MIN_INK_PIXELS)
    return c.pixels(soft, ink.mask.shape)


def _smooth(gray: np.ndarray) -> np.ndarray:
    """A 3x3 blur against noise, for pictures larger than a digit-sized crop."""
    return ops.blur3(gray) if min(gray.shape) >= BLUR_MIN_SIDE else gray


@dataclass
class _Paper:
    """What step 3 learnt about the paper, at working resolution."""

    dark_ink: bool
    background: np.ndarray   # the paper's level under the ink
    page: np.ndarray         # bands of table or scanner lid beyond the page
    ink: np.ndarray          # where the ink roughly is (left out of the noise estimate)


def _ink_in_detail(gray: np.ndarray, paper: _Paper, noise: float) -> tuple[np.ndarray, float]:
    """The ink of a finer view of the same picture, against the paper scaled up to it."""
    h, w = gray.shape
    rows = np.minimum(np.arange(h) * paper.page.shape[0] // h, paper.page.shape[0] - 1)
    cols = np.minimum(np.arange(w) * paper.page.shape[1] // w, paper.page.shape[1] - 1)
    page = paper.page[np.ix_(rows, cols)]
    a = 1.0 - gray if paper.dark_ink else gray
    dev = a - ops.resize(paper.background, h, w)
    dev[page] = 0.0
    step = max(1, int(np.sqrt(h * w / NOISE_SAMPLE)))  # the noise, from an even sample
    free = dev[::step, ::step][~(paper.ink | paper.page)[np.ix_(rows[::step], cols[::step])]]
    if free.size > 8:
        noise = ops.mad(free)
    return np.clip(dev, 0.0, None).astype(np.float32), noise


def to_gray(image: object) -> tuple[np.ndarray, int]:
    """float32 [H,W] in [0,1], shrunk as image files are (see images.py), and the input pixels
    per pixel of it; transparent pixels composited onto the paper."""
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image, without importing PIL
        from mnist_edge.images import pil_to_array

        image = pil_to_array(cast("PILImage", image))
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or a PIL image, got {type(image).__name__}")
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"image has shape {a.shape}; expected [H,W], [H,W,1], [H,W,3] or [H,W,4]")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise InputError(f"image has {a.shape[1]}x{a.shape[0]} pixels, more than the "
                         f"{MAX_PIXELS} this reader takes (as for image files); shrink it first")
    a = _to_unit(a)
    alpha = None
    if a.ndim == 3:
        if a.shape[2] == 4:
            alpha, a = a[..., 3], a[..., :3]
        a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if alpha is not None and alpha.min() < 0.999:
        a = _composite(a, alpha)
    k = shrink_factor(a.shape)  # a long thin strip, too, as a file of its shape would be
    return np.ascontiguousarray(ops.shrink(a, k), dtype=np.float32), k


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Transparent pixels are paper: white or black, on the paper's side. A picture that is
    mostly opaque (a photo turned in an editor, its corners left transparent) shows its paper:
    the side of most of its pixels. Otherwise the opaque pixels are the ink (a digit drawn on a
    transparent canvas), and the paper is the side that contrasts with it."""
    weight = float(alpha.sum())
    if weight <= 0:
        raise BlankImageError("no ink found: the image is fully transparent")
    opaque = alpha > 0.5
    if opaque.mean() > OPAQUE_PICTURE:
        light = float(ops.median(ops.sample(gray[opaque]))) >= 0.5
    else:
        light = float((alpha * gray).sum()) / weight < 0.5
    composited: np.ndarray = alpha * gray + (1.0 - alpha) * np.float32(1.0 if light else 0.0)
    return composited


def _to_unit(a: np.ndarray) -> np.ndarray:
    if a.size == 0:
        raise InputError(f"image has shape {a.shape}; it needs at least one pixel")
    kind = a.dtype.kind
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535.0)
    if kind in "iu":
        lo, hi = a.min(), a.max()
        if lo < 0 or hi > 255:
            raise InputError(f"integer pixels must lie in 0..255 (or use uint16), got {lo}..{hi}")
        return a.astype(np.float32) / np.float32(255.0)
    if kind == "f":
        lo, hi = a.min(), a.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError("image contains NaN or infinite values")
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(f"float pixels must lie in [0, 1], got {lo:.4g}..{hi:.4g}; "
                             "divide by 255 or pass uint8")
        return np.clip(a.astype(np.float32), 0.0, 1.0)
    raise InputError(f"image has dtype {a.dtype}; pass uint8, uint16, bool or float pixels")


def _ink(gray: np.ndarray) -> tuple[np.ndarray, float, _Paper]:
    """Ink made light on dark with the (possibly uneven) background subtracted, and the noise.

    The background is read from a coarse mesh of cells and interpolated, so gradients,
    vignettes and shadows are followed. The polarity is the side of the background holding
    more ink mass (dark ink on light paper is inverted). The paper level of each cell is first
    taken from its paper side (a low percentile), then, with the ink found that way left out,
    as the median of what remains.
    """
    page = _page_edges(gray)
    dark = _dark_ink(gray, page)
    a = 1.0 - gray if dark else gray
    dev = a - _background(a, PAPER_PERCENTILE, COARSE_MESH, page)
    rest = dev[~page]
    free = rest[rest <= ops.median(rest)]
    noise = 1.4826 * float(ops.median(ops.median(rest) - free)) if free.size else 0.0
    mask = (dev > max(NOISE_SIGMAS * noise, ops.otsu(np.clip(rest, 0, None)) / 2)) & ~page
    mask = ops.fill_holes(ops.dilate(mask, 1))  # inside a stroke wider than a cell is ink too
    background = _background(a, 50.0, MESH, mask | page)
    dev = a - background
    dev[page] = 0.0
    free = ~(mask | page)
    noise = ops.mad(dev[free]) if free.sum() > 8 else noise
    return (np.clip(dev, 0.0, None).astype(np.float32), noise,
            _Paper(dark, background, page, mask))


def _dark_ink(gray: np.ndarray, page: np.ndarray) -> bool:
    """Whether the ink is darker than the paper: the side of the background holding more ink mass.

    The background is the border ring's median when the ring is even, counting only pixels that
    also stand out of a fine mesh of local medians (a shadow or a vignette does not). When
    shading runs along the ring, three views vote: the ring, and the coarse and a fine mesh
    (the ring is fooled by shadows reaching the border, the meshes by strokes wider than their
    cells; they rarely fail together).
    """
    ring = ops.border(np.where(page, np.nan, gray))
    ring = ring[~np.isnan(ring)]
    if ring.size == 0:
        ring = gray.ravel()
    rest = ops.sample(gray[~page])
    lo, hi = ops.percentile(rest, [1, 99])
    spread = float(hi - lo)
    fine = (gray - _background(gray, 50.0, MESH, page))[~page]
    fine_cut = NOISE_SIGMAS * ops.mad(fine)
    ring_dev = (gray - np.float32(ops.median(ring)))[~page]
    # the ring's view: what stands out of its surroundings (a fine mesh of local medians), on the
    # side of the ring it lies; a shadow or a vignette differs from the ring over wide areas,
    # but not from its surroundings
    views = [np.where((np.sign(ring_dev) == np.sign(fine)) & (np.abs(fine) > fine_cut),
                      fine, 0.0)]
    if ops.mad(ring) > UNEVEN_RING * spread:  # shading along the border: ask the meshes too
        views += [(gray - _background(gray, 50.0, COARSE_MESH, page))[~page], fine]
    votes = voters = 0
    for dev in views:
        # beyond the noise, and beyond what a mesh leaves of smooth shading (a tenth of the
        # image's range), so a fine pen's little ink outweighs a lighting gradient's residue
        cut = max(NOISE_SIGMAS * ops.mad(dev), SHADING_RESIDUE * spread)
        darker = float(np.clip(-dev - cut, 0, None).sum())
        lighter = float(np.clip(dev - cut, 0, None).sum())
        if darker or lighter:  # a view that sees nothing beyond the cut abstains
            voters += 1
            votes += darker > lighter
    return 2 * votes > voters


def _page_edges(gray: np.ndarray) -> np.ndarray:
    """Uniform bands along the sides (a table or scanner lid beyond the page's edge), as a mask.

    A band is a run of rows (or columns) from a side whose medians sit far from the page's level
    and end in a sharp step within the outer EDGE_DEPTH of the image; gradual changes (lighting)
    are not bands.
    """
    page = np.zeros(gray.shape, dtype=bool)
    if min(gray.shape) < BLUR_MIN_SIDE:
        return page
    level = float(ops.median(ops.sample(gray)))
    for view, image in ((page, gray), (page.T, gray.T)):
        n = image.shape[0]
        depth = int(EDGE_DEPTH * n)
        for from_end in (False, True):
            p = ops.median((image[::-1] if from_end else image)[:depth + 1], axis=1)
            jump = p[0] - level
            if abs(jump) < MIN_CONTRAST:
                continue
            gone = np.nonzero(np.abs(p - level) < abs(jump) / 4)[0]   # back at the page's level
            near = np.nonzero(np.abs(p - level) < abs(jump) * 3 / 4)[0]  # the step begins
            if gone.size == 0 or near[0] < 1 or gone[0] - near[0] > max(3, EDGE_STEP * n):
                continue
            k = int(gone[0]) + max(1, int(gone[0]) // 4)
            if from_end:
                view[n - k:] = True
            else:
                view[:k] = True
    return page


def _background(a: np.ndarray, percentile: float, mesh: int,
                masked: np.ndarray | None = None) -> np.ndarray:
    """Smooth background: a percentile of each mesh cell (masked pixels left out), interpolated."""
    h, w = a.shape
    cell = max(CELL_MIN, min(h, w) // mesh)
    gh, gw = -(-h // cell), -(-w // cell)
    if masked is None:
        masked = np.zeros(a.shape, dtype=bool)
    if gh * gw <= 1 or min(h, w) < BLUR_MIN_SIDE or masked.all():  # small: digit-sized, one level
        sel = a if masked.all() else a[~masked]
        return np.full_like(a, float(ops.percentile(sel, percentile)))
    pad = ((0, gh * cell - h), (0, gw * cell - w))
    cells = ops.pad(a, pad, edge=True).reshape(gh, cell, gw, cell).transpose(0, 2, 1, 3)
    m = ops.pad(masked, pad, edge=True).reshape(gh, cell, gw, cell).transpose(0, 2, 1, 3)
    cells = np.sort(np.where(m, np.inf, cells).reshape(gh, gw, cell * cell), axis=2)
    free = cell * cell - m.reshape(gh, gw, cell * cell).sum(axis=2)
    pick = np.clip(np.rint(percentile / 100 * (free - 1)), 0, None).astype(np.int64)
    grid = np.take_along_axis(cells, pick[..., None], axis=2)[..., 0].astype(np.float32)
    grid[free < MIN_FREE * cell * cell] = np.nan
    grid = ops.fill(grid)
    grid = ops.median3(grid)
    return ops.resize(grid, gh * cell, gw * cell)[:h, :w].astype(np.float32)
