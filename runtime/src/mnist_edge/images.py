"""Decoding image files safely with Pillow (imported here only, when a file is read).

Only the formats in SUPPORTED_FORMATS are decoded (Pillow alone would hand a PostScript file to
Ghostscript, whatever its name). The header is checked before any pixel is decoded: a small
file declaring a huge image (a decompression bomb) is refused, and so is one whose decoded
pixels would not fit in a small device's memory; JPEGs are decoded at reduced scale instead.
Large images are shrunk a strip at a time; EXIF orientation is applied, as a phone camera
intends it. Devices, FIFOs and sockets are refused without being opened.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:  # Pillow is imported when a file is read, not with the package
    from PIL.Image import Image as PILImage

from mnist_edge.errors import InputError

# Pillow format -> file suffixes: the only formats decoded (the PPM plugin reads all of netpbm)
SUPPORTED_FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "BMP": (".bmp",),
                     "GIF": (".gif",), "TIFF": (".tif", ".tiff"), "WEBP": (".webp",),
                     "PPM": (".pgm", ".ppm", ".pnm", ".pbm")}
IMAGE_SUFFIXES = frozenset(s for suffixes in SUPPORTED_FORMATS.values() for s in suffixes)
MAX_PIXELS = 50_000_000   # a 48 MP phone photo fits; larger declared sizes are refused unread
# width x height x bands x bytes per band, from the header (JPEG: only its coefficients, when it
# comes in several scans). At this limit `mnist-edge predict` peaked at 201 MB RSS (WebP, whose
# decoder holds 4 copies; 223 MB with an ONNX model), 170 MB for other formats, 48 MB for none
MAX_DECODED_BYTES = 40_000_000
DECODE_MAX = 1024         # decode (JPEG draft mode) and shrink to about this many pixels a side
MAX_FILE_BYTES = 200 * 1024 * 1024
STRIP_PIXELS = 1 << 20    # large images are shrunk this many pixels at a time
_FORMAT_NAMES = ", ".join(SUPPORTED_FORMATS)
_DEEP = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")  # gray deeper than 8 bits, kept as is


def _pil() -> tuple[ModuleType, ModuleType]:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise InputError("reading image files needs Pillow; fix: pip install 'mnist-edge[images]' "
                         "(or pip install pillow)") from None
    return Image, ImageOps


def not_a_file(mode: int) -> str | None:
    """What a path whose ``st_mode`` is ``mode`` is, if not a regular file ("a folder", ...)."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, symlinks followed, if it is a regular file.

    Raises:
        InputError: missing, a folder, a device, FIFO or socket (refused unopened: reading a FIFO
            would block), or unreadable.
    """
    try:
        kind = not_a_file(os.stat(path).st_mode)
        if kind is None:  # opened without blocking, and checked again: it may have changed
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            try:
                kind = not_a_file(os.fstat(fd).st_mode)
                if kind is None:
                    if hasattr(os, "O_NONBLOCK"):
                        os.set_blocking(fd, True)
                    return os.fdopen(fd, "rb")
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
    except FileNotFoundError:
        broken = " (a broken symbolic link)" if os.path.islink(path) else ""
        raise InputError(f"{path}: no such file{broken}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    raise InputError(f"{path}: is {kind}, not a file")


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to a numpy array (gray [H,W], RGB [H,W,3] or RGBA [H,W,4])."""
    Image, ImageOps = _pil()
    path = Path(path)
    with open_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise InputError(f"{path}: empty file (0 bytes), not an image")
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for an image of one digit")
        img, orientation = _decode(Image, fh, path)
    if isinstance(orientation, int) and 2 <= orientation <= 8:
        # transposed after the shrink, so that no full-size copy is made
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.info["exif"] = exif.tobytes()
        img = ImageOps.exif_transpose(img)
    return pil_to_array(img)


def _decode(Image: ModuleType, fh: BinaryIO, path: Path) -> tuple[PILImage, int | None]:
    """The image in ``fh`` shrunk (see _shrink), and its EXIF orientation.

    The full-size image, and the decoder's buffers, are freed when this returns.
    """
    try:
        with warnings.catch_warnings():  # MAX_PIXELS is lower: Pillow's warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=list(SUPPORTED_FORMATS))
        with img:
            _check_size(img, fh, path)
            if img.format in ("JPEG", "MPO"):  # MPO: a JPEG with more pictures after it
                # DCT-domain downscale: fast, little memory
                img.draft(None, (DECODE_MAX, DECODE_MAX))
            img.load()
            return _shrink(img), img.getexif().get(0x0112)  # EXIF Orientation
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{path}: declares more pixels than this reader decodes safely") \
            from None
    except Exception as exc:  # Pillow's decoders raise many types on corrupt data
        if type(exc).__name__ != "UnidentifiedImageError":
            raise InputError(f"{path}: cannot decode ({_short(exc)}); the file is corrupt or "
                             "truncated") from None
    fh.seek(0)
    other = _other_format(Image, fh.read(16))
    if other:
        raise InputError(f"{path}: is in {other} format, not a supported image format "
                         f"({_FORMAT_NAMES})")
    raise InputError(f"{path}: not a recognised image format (supported: {_FORMAT_NAMES})")


def _check_size(img: PILImage, fh: BinaryIO, path: Path) -> None:
    """Refuse, from the header alone, an image too large to decode on a small device."""
    w, h = img.size
    if w * h > MAX_PIXELS or w <= 0 or h <= 0:
        raise InputError(f"{path}: declares {w}x{h} pixels, more than the {MAX_PIXELS} "
                         "this reader decodes; shrink the image first")
    if img.format in ("JPEG", "MPO"):  # decoded at reduced scale (draft), unless in several scans
        decoded = _jpeg_coefficient_bytes(fh, w, h)
        if decoded > MAX_DECODED_BYTES:
            raise InputError(f"{path}: a progressive (multi-scan) JPEG of {w}x{h} pixels, whose "
                             f"{decoded / 1e6:.0f} MB of DCT coefficients are more than the "
                             f"{MAX_DECODED_BYTES / 1e6:.0f} MB this reader decodes; shrink it "
                             "or save it as a baseline JPEG")
        return
    # libwebp decodes to RGBX or RGBA; TIFF strips are read at the file's depth
    bands = 4 if img.format == "WEBP" else len(img.getbands())
    depth = 2 if img.mode.startswith("I;16") else 4 if img.mode in ("I", "F") else 1
    bits = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    if isinstance(bits, tuple) and bits:
        depth = max(depth, -(-int(max(bits)) // 8))
    decoded = w * h * bands * depth
    if decoded > MAX_DECODED_BYTES:
        raise InputError(f"{path}: declares {w}x{h} pixels, {decoded / 1e6:.0f} MB once decoded "
                         f"({bands} bands of {8 * depth} bits), more than the "
                         f"{MAX_DECODED_BYTES / 1e6:.0f} MB this reader decodes; shrink the image "
                         "or save it as JPEG")


def _jpeg_coefficient_bytes(fh: BinaryIO, w: int, h: int) -> int:
    """Bytes of DCT coefficients libjpeg holds for a JPEG in several scans, 0 for one scan.

    A progressive JPEG, or one with a scan per component, is decoded through a buffer of all its
    coefficients (2 bytes a sample) whatever the draft scale: 290 MB for a 500-byte file declaring
    8000x6000. Pillow does not parse the scans, so the markers up to the first one are read here.
    """
    start = fh.tell()
    try:
        fh.seek(2)  # past SOI
        progressive = False
        sampling: list[tuple[int, int]] = []  # each component's sampling factors (h, v)
        while True:
            marker = fh.read(2)
            while marker[1:] == b"\xff":  # fill bytes
                marker = marker[1:] + fh.read(1)
            if len(marker) < 2 or marker[0] != 0xFF:
                return 0  # not a marker where one belongs: the decoder reports it
            if marker[1] == 0xD9:  # end of image before any scan
                return 0
            if 0xD0 <= marker[1] <= 0xD8 or marker[1] == 0x01:
                continue  # markers without a length
            body = fh.read(max(0, int.from_bytes(fh.read(2), "big") - 2))
            if marker[1] == 0xDA:  # the first scan
                if not body or not sampling or (not progressive and body[0] >= len(sampling)):
                    return 0  # one scan of all components: decoded a row of blocks at a time
                hmax, vmax = max(s[0] for s in sampling), max(s[1] for s in sampling)
                return 2 * sum(w * h * hs * vs // (hmax * vmax) for hs, vs in sampling)
            if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC) and len(body) > 5:
                progressive = marker[1] in (0xC2, 0xC6, 0xCA, 0xCE)
                sampling = [(max(1, b >> 4), max(1, b & 15)) for b in body[7:6 + 3 * body[5]:3]]
    finally:
        fh.seek(start)


def _other_format(Image: ModuleType, prefix: bytes) -> str | None:
    """The unsupported image format whose signature ``prefix`` begins with, if any."""
    Image.init()
    for name, (_, accept) in getattr(Image, "OPEN", {}).items():
        try:
            if name not in SUPPORTED_FORMATS and accept is not None and accept(prefix) is True:
                return str(name)
        except Exception:  # a signature test that cannot read a short prefix
            continue
    return None


def _shrink(img: PILImage) -> PILImage:
    """The decoded image in a mode pil_to_array takes, box-reduced to about DECODE_MAX a side.

    A strip at a time: Pillow would otherwise make full-size copies (RGBA is premultiplied
    before it is reduced, a palette image is expanded to RGB).
    """
    w, h = img.size
    factor = max(w, h) // DECODE_MAX if max(w, h) > 2 * DECODE_MAX else 1
    if factor == 1:
        return _normalised(img)
    from PIL import Image

    rows = factor * max(1, STRIP_PIXELS // (w * factor))
    out = None
    for top in range(0, h, rows):
        strip = _normalised(img.crop((0, top, w, min(h, top + rows))))
        deep16 = strip.mode.startswith("I;16")  # Pillow reduces 16-bit gray as 32-bit
        strip = strip.convert("I").reduce(factor).convert("I;16") if deep16 \
            else strip.reduce(factor)
        if out is None:
            out = Image.new(strip.mode, (-(-w // factor), -(-h // factor)))
        out.paste(strip, (0, top // factor))
    assert out is not None
    return out


def _normalised(img: PILImage) -> PILImage:
    """``img`` as L, RGB or RGBA, or as deeper gray (I;16, I, F); transparency kept as alpha."""
    mode = img.mode
    if mode in _DEEP:
        return img
    if mode == "LAB":  # its A and B bands are colours, not alpha: the lightness is the picture
        return img.getchannel("L")
    if mode == "La":  # premultiplied gray + alpha: Pillow converts it to LA only
        img = img.convert("LA")
    bands = img.getbands()
    if "A" in bands or "a" in bands or "transparency" in img.info:
        target = "RGBA"
    else:
        target = "L" if mode in ("1", "L") else "RGB"
    return img if img.mode == target else img.convert(target)


def pil_to_array(img: PILImage) -> np.ndarray:
    """A PIL image as uint8/uint16/float numpy: gray, RGB or RGBA (transparency kept as alpha).

    Any PIL mode: premultiplied alpha (La, RGBa) is undone, palettes are expanded, CMYK, YCbCr
    and HSV become RGB, LAB its lightness. 16-bit gray stays uint16; 32-bit integer and float
    gray become floats in [0, 1]: floats already within [0, 1] as they are, other ranges scaled
    by 255, 65535 or their maximum.
    """
    img = _normalised(img)
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, top = (a.min(), a.max()) if a.size else (0.0, 1.0)
        if mode == "F" and lo >= 0.0 and top <= 1.0:
            return a
        return (a / (255.0 if top <= 255 else 65535.0 if top <= 65535 else top)).clip(0, 1)
    return np.asarray(img)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__
