"""Decoding image files safely with Pillow (imported here only, when a file is read).

The pixel count is checked from the header before any pixel is decoded, so a small file
declaring a huge image (a decompression bomb) is refused; JPEGs are decoded at reduced
scale when large; EXIF orientation is applied, as a phone camera intends it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # Pillow is imported when a file is read, not with the package
    from PIL.Image import Image as PILImage

from mnist_edge.errors import InputError

MAX_PIXELS = 50_000_000   # a 48 MP phone photo fits; larger declared sizes are refused unread
DECODE_MAX = 1024         # decode (JPEG draft mode) and shrink to about this many pixels a side
MAX_FILE_BYTES = 200 * 1024 * 1024


def _pil() -> tuple[ModuleType, ModuleType]:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise InputError("reading image files needs Pillow; fix: pip install 'mnist-edge[images]' "
                         "(or pip install pillow)") from None
    return Image, ImageOps


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to a numpy array (gray [H,W], RGB [H,W,3] or RGBA [H,W,4])."""
    Image, ImageOps = _pil()
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not an image")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: {size} bytes is too large for an image of one digit")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_PIXELS or w <= 0 or h <= 0:
                raise InputError(f"{path}: declares {w}x{h} pixels, more than the {MAX_PIXELS} "
                                 "this reader decodes; shrink the image first")
            if img.format == "JPEG":
                # DCT-domain downscale: fast, little memory
                img.draft(None, (DECODE_MAX, DECODE_MAX))
            img.load()
            img = ImageOps.exif_transpose(img)
            if max(img.size) > 2 * DECODE_MAX:
                img = img.reduce(max(img.size) // DECODE_MAX)
            return pil_to_array(img)
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: declares more pixels than this reader decodes safely") from None
    except Exception as exc:  # Pillow's decoders raise many types on corrupt data
        kind = "not a recognised image format" if type(exc).__name__ == "UnidentifiedImageError" \
            else f"cannot decode ({_short(exc)}); the file is corrupt or truncated"
        raise InputError(f"{path}: {kind}") from None


def pil_to_array(img: PILImage) -> np.ndarray:
    """A PIL image as uint8/uint16/float numpy: gray, RGB or RGBA (transparency kept as alpha)."""
    mode = img.mode
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img).astype(np.uint16)
    if mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = a.max() if a.size else 1.0
        return (a / (255.0 if top <= 255 else 65535.0 if top <= 65535 else top)).clip(0, 1)
    has_alpha = "A" in mode or "a" in mode or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__
