"""Photo or scan of one handwritten digit -> a 28x28 uint8 image built the way MNIST was.

MNIST digits are light on dark, fitted into a 20x20 box keeping their aspect ratio (with
anti-aliasing), then placed in a 28x28 field so that their centre of mass sits at the centre.
``preprocess_image`` reproduces that from arbitrary pictures, in numpy alone:

1-3. the ink is found (``ink.find_ink``): gray, polarity, uneven light and noise, blank images
   rejected;
4. the digit is the heaviest connected piece of ink plus the pieces near it; pieces running
   along the image's sides and specks away from the digit are dropped; anti-aliased edges
   are kept as soft intensities;
5. it is cropped; strokes much thinner than MNIST's (a fine pen, a pencil) are thickened;
6. it is scaled into 20x20 with area averaging and centred on its centre of mass.

    from mnist_edge import preprocess_image
    x = preprocess_image(frame)            # numpy [H,W], [H,W,3] or [H,W,4], or a PIL image
    clf.predict(x)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mnist_edge import imageops as ops
from mnist_edge.errors import BlankImageError
from mnist_edge.ink import KEEP_MARGIN, find_ink

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

BOX = 20            # the digit's longest side inside the 28x28 field, as in MNIST
FIELD = 28
CENTRE = 14.0       # MNIST's mean centre of mass, in pixel-index coordinates
EDGE_SPAN = 0.6     # a component along one side spanning 60% of it is a page edge, not ink
GROUP_MARGIN = 0.25  # pieces within 25% of the digit's size of it belong to it...
MIN_PIECE = 0.02     # ...if they hold 2% of its ink mass
THIN_STROKE = 1.3    # strokes thinner than this (pixels, in the 20x20 box) are thickened...
TARGET_STROKE = 1.9  # ...to about this: MNIST's median


def preprocess_image(image: np.ndarray | PILImage) -> np.ndarray:
    """Normalise a picture of one digit to MNIST's format.

    Args:
        image: numpy array [H,W] (gray), [H,W,1], [H,W,3] (RGB) or [H,W,4] (RGBA), uint8,
            uint16, bool or float in [0, 1]; or a PIL image. Any polarity, size and position.

    Returns:
        uint8 [28,28], light digit on a black background, ready for ``Classifier.predict``.

    Raises:
        BlankImageError: the image holds no ink (uniform, or only noise).
        InputError: the array has an unusable shape, dtype or values.
    """
    ink = find_ink(image)
    return to_field(ink.z, _digit_mask(ink.mask, ink.z))


def to_field(z: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Steps 5-6: the ink ``keep`` marks (with its soft edges), cropped, its strokes brought to
    MNIST's width if thinner, scaled into 20x20 and centred: uint8 [28,28]."""
    rows, cols = np.nonzero(keep.any(axis=1))[0], np.nonzero(keep.any(axis=0))[0]  # as MNIST: the
    if rows.size == 0:                             # box of the ink proper, not of its faint fringe
        raise BlankImageError("no ink found: the image is blank or holds only noise")
    t, b, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = KEEP_MARGIN
    t0, l0 = max(0, t - m), max(0, left - m)  # a window a margin wider, for the soft edges
    soft = z[t0:b + m, l0:right + m] * ops.dilate(keep[t0:b + m, l0:right + m], m)
    digit = soft[t - t0:b - t0, left - l0:right - l0]
    box = _scaled(digit)
    width = stroke_width(box)
    side = max(digit.shape)
    if width < THIN_STROKE and side * TARGET_STROKE / BOX >= 1:
        # a fine pen or a pencil: thicken the strokes (in the crop's own pixels) to MNIST's width
        grow = int(round((TARGET_STROKE - width) * side / BOX / 2))
        if grow >= 1:
            digit = ops.dilate(np.pad(digit, grow), grow)
            box = _scaled(digit)
    peak = box.max()
    if peak <= 0:
        raise BlankImageError("no ink found: the image is blank or holds only noise")
    return _place(box / peak)


def _scaled(digit: np.ndarray) -> np.ndarray:
    h, w = digit.shape
    scale = BOX / max(h, w)
    return ops.resize(digit, max(1, round(h * scale)), max(1, round(w * scale)))


def stroke_width(digit: np.ndarray) -> float:
    """Mean stroke width in pixels of a digit scaled into the 20x20 box: twice its area over its
    outline (MNIST's training digits: median 1.84, 10th percentile 1.36)."""
    m = digit > 0.5 * float(digit.max()) if digit.size else digit.astype(bool)
    p = np.pad(m, 1)
    edges = int((p[:, 1:] != p[:, :-1]).sum() + (p[1:] != p[:-1]).sum())
    return 2.0 * float(m.sum()) / max(edges, 1)


def _digit_mask(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The pixels of the digit: the heaviest ink component and its nearby pieces.

    Components reaching two sides of the image (table edges, scanner lids, shadow lines) or
    lying along one side are left out unless nothing else holds ink; specks far from the digit
    are dropped.
    """
    c = ops.components(mask, ink)
    if c is None:
        return mask
    h, w = mask.shape
    mass, top, bottom, left, right = c.mass, c.top, c.bottom, c.left, c.right
    sides = ((top == 0).astype(int) + (bottom == h - 1) + (left == 0) + (right == w - 1))
    along = (((top == 0) | (bottom == h - 1)) & (right - left + 1 >= EDGE_SPAN * w)) | \
            (((left == 0) | (right == w - 1)) & (bottom - top + 1 >= EDGE_SPAN * h))
    edge = (sides >= 2) | along
    if edge.all():
        edge[:] = False
    score = np.where(edge, -1.0, mass)
    main = int(np.argmax(score))
    chosen = np.zeros(len(mass), dtype=bool)
    chosen[main] = True
    for _ in range(8):  # pieces near the digit (a detached bar, a broken stroke) join it
        t, b = top[chosen].min(), bottom[chosen].max()
        lo, hi = left[chosen].min(), right[chosen].max()
        margin = GROUP_MARGIN * max(b - t + 1, hi - lo + 1)
        near = ((top <= b + margin) & (bottom >= t - margin)
                & (left <= hi + margin) & (right >= lo - margin))
        grown = chosen | (near & ~edge & (mass >= MIN_PIECE * mass[main]))
        if (grown == chosen).all():
            break
        chosen = grown
    return c.pixels(chosen, mask.shape)


def _place(digit: np.ndarray) -> np.ndarray:
    """Put the digit in a 28x28 field with its centre of mass at MNIST's centre."""
    h, w = digit.shape
    mass = float(digit.sum())
    cy = float(digit.sum(axis=1) @ np.arange(h)) / mass
    cx = float(digit.sum(axis=0) @ np.arange(w)) / mass
    oy = int(np.clip(round(CENTRE - cy), 0, FIELD - h))
    ox = int(np.clip(round(CENTRE - cx), 0, FIELD - w))
    out = np.zeros((FIELD, FIELD), dtype=np.float32)
    out[oy:oy + h, ox:ox + w] = digit
    pixels: np.ndarray = np.rint(out * 255.0).astype(np.uint8)
    return pixels
