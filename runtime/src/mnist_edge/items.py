"""Photo of one item (a garment, a shoe, any object: not a handwritten digit) -> the 28x28
image a model trained on Fashion-MNIST-style data expects.

Fashion-MNIST's pictures are product photos trimmed to the item, its longest side scaled to 28
pixels, centred in a 28x28 field and negated (a light item on black). ``preprocess_item``
does the same with any picture of one item on a plain background, in numpy alone:

1. grayscale (ITU-R 601 luma), transparent pixels on the paper, large pictures shrunk, as for
   digits (``ink.to_gray``);
2. the background is the median of the picture's outer ring; when it is light, the picture is
   negated (a dark item on white paper becomes light on black), and the background level is
   subtracted;
3. the item is the box of the pixels that stand out of the background (by 8% of the full range
   and by 6 standard deviations of the ring's noise, after a 3x3 blur): the picture is cropped
   to it;
4. the crop is padded to a square (centred), scaled to 28x28 with area averaging and stretched
   so its brightest pixel is 255.

Unlike the digit path there is no centre-of-mass shift, no stroke thickening and no choice
among pieces: everything that stands out belongs to the item. Models whose manifest says
``"dataset": {"kind": "items"}`` get this path from ``Classifier.predict_files``.

    from mnist_edge.items import preprocess_item
    x = preprocess_item(photo)             # numpy [H,W], [H,W,3] or [H,W,4], or a PIL image
    clf.predict(x)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mnist_edge import imageops as ops
from mnist_edge.errors import BlankImageError
from mnist_edge.ink import to_gray

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

FIELD = 28
MIN_CONTRAST = 0.08   # the item stands 8% of the full range out of the background...
NOISE_SIGMAS = 6.0    # ...and 6 noise sigmas of the (blurred) outer ring


def preprocess_item(image: np.ndarray | PILImage) -> np.ndarray:
    """Normalise a picture of one item to Fashion-MNIST's format.

    Args:
        image: numpy array [H,W] (gray), [H,W,1], [H,W,3] (RGB) or [H,W,4] (RGBA), uint8,
            uint16, bool or float in [0, 1]; or a PIL image. Either polarity, any size.

    Returns:
        uint8 [28,28], a light item on a black background, ready for ``Classifier.predict``.

    Raises:
        BlankImageError: nothing stands out of the background (a uniform picture, or noise).
        InputError: the array has an unusable shape, dtype or values.
    """
    gray, _ = to_gray(image)
    ring = ops.border(gray)
    paper = float(ops.median(ops.sample(ring)))
    a = 1.0 - gray if paper > 0.5 else gray
    level = 1.0 - paper if paper > 0.5 else paper
    a = np.clip(a - np.float32(level), 0.0, None)
    smooth = ops.blur3(a) if min(a.shape) >= 3 else a
    noise = ops.mad(ops.border(smooth))
    mask = smooth > max(MIN_CONTRAST, NOISE_SIGMAS * noise)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        raise BlankImageError("nothing found: the picture is uniform or holds only noise")
    item = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = item.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = item
    field = ops.resize(square, FIELD, FIELD)
    peak = float(field.max())
    if peak <= 0:
        raise BlankImageError("nothing found: the picture is uniform or holds only noise")
    pixels: np.ndarray = np.rint(np.clip(field / peak, 0.0, 1.0) * 255.0).astype(np.uint8)
    return pixels
