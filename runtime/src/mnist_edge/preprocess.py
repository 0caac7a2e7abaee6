"""Photo or scan of one handwritten digit -> a 28x28 uint8 image built the way MNIST was.

MNIST digits are light on dark, fitted into a 20x20 box keeping their aspect ratio (with
anti-aliasing), then placed in a 28x28 field so that their centre of mass sits at the centre.
``preprocess_image`` reproduces that from arbitrary pictures, in numpy alone:

1. grayscale (ITU-R 601 luma); transparent pixels are composited onto the background that
   contrasts with the opaque content; large images are box-reduced to at most 512 px a side;
2. background = median of the border ring; polarity = whichever side of the background holds
   more ink mass (dark ink on light paper is inverted to light on dark);
3. a 3x3 blur (images of 48 px and more), then Otsu's threshold separates ink from
   background; images whose ink does not stand out of the noise are rejected as blank;
4. the digit is cropped to the box holding all but a sliver of the ink mass (stray specks
   fall outside), scaled into 20x20 with area averaging and centred on its centre of mass.

    from mnist_edge import preprocess_image
    x = preprocess_image(frame)            # numpy [H,W], [H,W,3] or [H,W,4], or a PIL image
    clf.predict(x)
"""

from __future__ import annotations

import numpy as np

from mnist_edge.errors import BlankImageError, InputError

BOX = 20            # the digit's longest side inside the 28x28 field, as in MNIST
FIELD = 28
CENTRE = 14.0       # MNIST's mean centre of mass, in pixel-index coordinates
WORK_MAX = 512      # larger inputs are box-reduced to this many pixels a side first
BLUR_MIN_SIDE = 48  # smaller images (already digit-sized) are not blurred
MIN_CONTRAST = 0.10  # ink must differ from the background by 10% of the full range...
NOISE_FACTOR = 8.0   # ...and by 8 standard deviations of the (blurred) background noise
FLOOR = 0.5         # intensities below this fraction of the Otsu threshold become background
TRIM = 0.002         # ink mass left outside the crop on each side (drops isolated specks)
MIN_INK_PIXELS = 4


def preprocess_image(image) -> np.ndarray:
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
    gray = _to_gray(image)
    if min(gray.shape) < 1:
        raise InputError(f"image has shape {gray.shape}; it needs at least one pixel")
    gray = _reduce(gray, WORK_MAX)
    ink = _ink(gray)
    ink = _blur3(ink) if min(ink.shape) >= BLUR_MIN_SIDE else ink
    border = _border(ink)
    noise = 1.4826 * float(np.median(np.abs(border - np.median(border)))) if border.size else 0.0
    noise = noise / 3.0 if min(gray.shape) >= BLUR_MIN_SIDE else noise
    threshold = _otsu(ink)
    strokes = ink[ink > threshold]
    level = float(np.percentile(strokes, 90)) if strokes.size else 0.0
    if strokes.size < MIN_INK_PIXELS or level < max(MIN_CONTRAST, NOISE_FACTOR * noise):
        raise BlankImageError("no ink found: the image is blank or holds only noise")
    floor = FLOOR * threshold
    z = np.clip((ink - floor) / (level - floor), 0.0, 1.0)
    top, bottom = _extent(z.sum(axis=1))
    left, right = _extent(z.sum(axis=0))
    digit = z[top:bottom + 1, left:right + 1]
    h, w = digit.shape
    scale = BOX / max(h, w)
    digit = _resize(digit, max(1, round(h * scale)), max(1, round(w * scale)))
    peak = digit.max()
    if peak <= 0:
        raise BlankImageError("no ink found: the image is blank or holds only noise")
    return _place(digit / peak)


def _to_gray(image) -> np.ndarray:
    """float32 [H,W] in [0,1]; alpha composited onto the background that contrasts with the ink."""
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image, without importing PIL
        from mnist_edge.images import pil_to_array

        image = pil_to_array(image)
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or a PIL image, got {type(image).__name__}")
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"image has shape {a.shape}; expected [H,W], [H,W,1], [H,W,3] or [H,W,4]")
    a = _to_unit(a)
    alpha = None
    if a.ndim == 3:
        if a.shape[2] == 4:
            alpha, a = a[..., 3], a[..., :3]
        a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if alpha is not None and alpha.min() < 0.999:
        weight = float(alpha.sum())
        if weight <= 0:
            raise BlankImageError("no ink found: the image is fully transparent")
        content = float((alpha * a).sum()) / weight
        background = 1.0 if content < 0.5 else 0.0
        a = alpha * a + (1.0 - alpha) * background
    return np.ascontiguousarray(a, dtype=np.float32)


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


def _reduce(a: np.ndarray, limit: int) -> np.ndarray:
    """Average k x k blocks so that both sides are at most ``limit`` (an anti-aliased shrink)."""
    k = -(-max(a.shape) // limit)
    if k <= 1:
        return a
    h, w = a.shape
    hh, ww = max(k, h - h % k), max(k, w - w % k)
    if hh > h or ww > w:  # a side shorter than one block: pad by repeating the edge
        a = np.pad(a, ((0, max(0, hh - h)), (0, max(0, ww - w))), mode="edge")
    a = a[:hh, :ww]
    return a.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3), dtype=np.float32)


def _border(a: np.ndarray) -> np.ndarray:
    """The outer ring (1/16 of each side, at least one pixel): mostly background."""
    h, w = a.shape
    r = max(1, min(h, w) // 16)
    if 2 * r >= h or 2 * r >= w:
        return a.ravel()
    return np.concatenate([a[:r].ravel(), a[-r:].ravel(), a[r:-r, :r].ravel(), a[r:-r, -r:].ravel()])


def _ink(gray: np.ndarray) -> np.ndarray:
    """Distance from the background towards the ink side: light-on-dark, background near 0."""
    background = float(np.median(_border(gray)))
    dev = gray - np.float32(background)
    light = float(np.clip(dev, 0, None).sum())
    dark = float(np.clip(-dev, 0, None).sum())
    return np.clip(-dev if dark > light else dev, 0.0, None)


def _blur3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    out = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            out += p[dy:dy + h, dx:dx + w]
    return out / np.float32(9.0)


def _otsu(a: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that best separates the values into two classes."""
    top = float(a.max())
    if top <= 0:
        return 0.0
    hist, edges = np.histogram(a, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def _extent(profile: np.ndarray) -> tuple[int, int]:
    """First and last index of the span holding all but TRIM of the mass on each side."""
    cum = np.cumsum(profile, dtype=np.float64)
    total = cum[-1]
    first = int(np.searchsorted(cum, TRIM * total, side="right"))
    last = int(np.searchsorted(cum, (1 - TRIM) * total, side="left"))
    return min(first, last), max(first, last)


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights: area averaging when shrinking, linear interpolation when growing."""
    m = np.zeros((dst, src), dtype=np.float32)
    if dst <= src:
        step = src / dst
        for i in range(dst):
            lo, hi = i * step, (i + 1) * step
            for j in range(int(lo), min(src, int(np.ceil(hi)))):
                m[i, j] = min(hi, j + 1) - max(lo, j)
        return m / m.sum(axis=1, keepdims=True)
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    j0 = np.floor(pos).astype(int)
    j1 = np.minimum(j0 + 1, src - 1)
    frac = (pos - j0).astype(np.float32)
    m[np.arange(dst), j0] += 1 - frac
    m[np.arange(dst), j1] += frac
    return m


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    return _resize_matrix(a.shape[0], h) @ a @ _resize_matrix(a.shape[1], w).T


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
    return np.rint(out * 255.0).astype(np.uint8)
