"""Decoding image files safely with Pillow (imported here only, when a file is read).

Only the formats in SUPPORTED_FORMATS are decoded (Pillow alone would hand a PostScript file to
Ghostscript, whatever its name). The header is checked before any pixel is decoded: a small
file declaring a huge image (a decompression bomb) is refused, and so is one whose decoded
pixels would not fit in a small device's memory; JPEGs are decoded at reduced scale instead.
Large images are shrunk a strip at a time; EXIF orientation is applied, as a phone camera
intends it. Devices, FIFOs and sockets are refused without being opened. The tables Pillow
reads whole when it opens a file (a JPEG's marker segments, a TIFF's tag values) are counted
first, so a small file listing millions of them is refused before Pillow holds them in memory.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np

if TYPE_CHECKING:  # Pillow is imported when a file is read, not with the package
    from PIL.Image import Image as PILImage

from mnist_edge.errors import ImageTooLargeError, InputError, UnsupportedImageError

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
# Pillow keeps every JPEG marker segment before the image data as a Python object: 4 M empty
# ones (16 MB) took 568 MB. Cameras and editors write about 5-30 (an ICC profile in 64 KB pieces
# adds a few dozen); fill bytes between markers count as segments too
MAX_JPEG_SEGMENTS = 1024
# ...and every value of a numeric TIFF tag as a Python int: a 2.5 M-entry strip table (20 MB)
# took 689 MB and 15 s. One strip per row of a 48 MP photo's 6,000 rows is 6,000
MAX_TIFF_VALUES = 65_536
_NUMERIC_TIFF_TYPES = frozenset({3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 16, 17, 18})
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


@dataclass(frozen=True)
class Decoded:
    """A decoded image, shrunk to about DECODE_MAX a side and turned upright (EXIF)."""

    pixels: np.ndarray     # gray [H,W], RGB [H,W,3] or RGBA [H,W,4] (see pil_to_array)
    scale: int             # input pixels per pixel of ``pixels``, along each side
    size: tuple[int, int]  # the input's width and height, upright


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to a numpy array (gray [H,W], RGB [H,W,3] or RGBA [H,W,4])."""
    return decode_file(path).pixels


def decode_file(path: str | os.PathLike[str]) -> Decoded:
    """Decode an image file (see the module docstring); InputError for a file that is not one."""
    Image, _ = _pil()
    path = Path(path)
    with open_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise InputError(f"{path}: empty file (0 bytes), not an image")
        if size > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{path}: {size} bytes is too large for an image of one "
                                     "digit")
        # Pillow warns on stderr about damaged tags and EXIF blocks, and about pixel counts
        # above its own bomb limit (MAX_PIXELS is lower): noise here, where the file is decoded
        # or refused in one line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img, scale, full, orientation = _decode(Image, fh, path)
            return _upright(img, scale, full, orientation)


def decode_bytes(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> Decoded:
    """Decode an image held in memory (an upload), with the checks of ``decode_file``;
    ``name`` stands for the path in messages, ``max_pixels`` may only lower MAX_PIXELS."""
    Image, _ = _pil()
    if not data:
        raise InputError(f"{name}: empty (0 bytes), not an image")
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"{name}: {len(data)} bytes is too large for an image of one "
                                 "digit")
    with warnings.catch_warnings():  # as in decode_file
        warnings.simplefilter("ignore")
        img, scale, full, orientation = _decode(Image, io.BytesIO(data), name,
                                                min(max_pixels, MAX_PIXELS))
        return _upright(img, scale, full, orientation)


def decode_pil(img: PILImage) -> Decoded:
    """A PIL image as ``decode_file`` gives a file: shrunk, and turned upright by its EXIF."""
    with warnings.catch_warnings():  # as in decode_file
        warnings.simplefilter("ignore")
        orientation = _orientation(img)
        return _upright(_shrink(img), shrink_factor(img.size), img.size, orientation)


def _upright(img: PILImage, scale: int, size: tuple[int, int],
             orientation: int | None) -> Decoded:
    if isinstance(orientation, int) and 2 <= orientation <= 8:
        # transposed after the shrink, so that no full-size copy is made
        Image, ImageOps = _pil()
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.info["exif"] = exif.tobytes()
        img = ImageOps.exif_transpose(img)
        if orientation >= 5:  # a quarter turn
            size = (size[1], size[0])
    return Decoded(pil_to_array(img), scale, size)


def _orientation(img: PILImage) -> int | None:
    """The EXIF orientation of ``img``; None when absent or unreadable (a damaged EXIF block:
    the picture is read as it is stored)."""
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # Pillow's EXIF parser raises many types on a damaged block
        return None
    return value if isinstance(value, int) else None


def _decode(Image: ModuleType, fh: BinaryIO, path: Path | str,
            max_pixels: int = MAX_PIXELS) -> tuple[PILImage, int, tuple[int, int], int | None]:
    """The image in ``fh`` shrunk (see _shrink), the input pixels per pixel of it, the input's
    size and its EXIF orientation.

    The full-size image, and the decoder's buffers, are freed when this returns.
    """
    try:
        jpeg = _check_tables(fh, path)
        img = Image.open(fh, formats=list(SUPPORTED_FORMATS))
        with img:
            _check_size(img, jpeg, path, max_pixels)
            full = img.size
            if img.format in ("JPEG", "MPO"):  # MPO: a JPEG with more pictures after it
                # DCT-domain downscale: fast, little memory
                img.draft(None, (DECODE_MAX, DECODE_MAX))
            img.load()
            draft = max(1, round(full[0] / max(1, img.size[0])))
            return (_shrink(img), draft * shrink_factor(img.size), full, _orientation(img))
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{path}: declares more pixels than this reader decodes "
                                 "safely") from None
    except Exception as exc:  # Pillow's decoders raise many types on corrupt data
        if type(exc).__name__ != "UnidentifiedImageError":
            raise InputError(f"{path}: cannot decode ({short_error(exc)}); the file is corrupt or "
                             "truncated") from None
    fh.seek(0)
    other = _other_format(Image, fh.read(16))
    if other:
        raise UnsupportedImageError(f"{path}: is in {other} format, not a supported image "
                                    f"format ({_FORMAT_NAMES})")
    raise UnsupportedImageError(f"{path}: not a recognised image format (supported: "
                                f"{_FORMAT_NAMES})")


@dataclass(frozen=True)
class _JpegHeader:
    """What the markers of a JPEG say before its first scan."""

    segments: int                     # marker segments (and fill bytes) read
    progressive: bool
    sampling: tuple[tuple[int, int], ...]  # each component's sampling factors (h, v)
    scan: bytes | None                # the first scan's header


def _check_tables(fh: BinaryIO, path: Path | str) -> _JpegHeader | None:
    """Refuse a JPEG or TIFF listing more entries than Pillow should hold (see MAX_JPEG_SEGMENTS,
    MAX_TIFF_VALUES); a JPEG's header, for _check_size."""
    head = fh.read(4)
    fh.seek(0)
    if head[:3] == b"\xff\xd8\xff":
        jpeg = _jpeg_header(fh)
        if jpeg.segments > MAX_JPEG_SEGMENTS:
            raise InputError(f"{path}: a JPEG with more than {MAX_JPEG_SEGMENTS} marker segments "
                             "before its image data, more than any camera or editor writes; "
                             "save it again")
        return jpeg
    if head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        values = _tiff_values(fh)
        if values > MAX_TIFF_VALUES:
            raise InputError(f"{path}: a TIFF tag with {values} values (a strip or tile table, "
                             f"...), more than the {MAX_TIFF_VALUES} this reader takes; save it "
                             "again with larger strips, or as PNG")
    return None


def _tiff_values(fh: BinaryIO) -> int:
    """The most values a numeric tag of the first IFD holds (the IFD's entries when more):
    Pillow unpacks them all into Python ints when it opens the file. 0 when unreadable."""
    try:
        head = fh.read(16)
        order: Literal["little", "big"] = "little" if head[:2] == b"II" else "big"
        big = int.from_bytes(head[2:4], order) == 43  # BigTIFF: 8-byte counts and offsets
        fh.seek(int.from_bytes(head[8:16] if big else head[4:8], order))
        width = 8 if big else 2
        entries = int.from_bytes(fh.read(width), order)
        if entries > MAX_TIFF_VALUES:
            return entries
        size = 20 if big else 12
        table = fh.read(entries * size)
        most = 0
        for i in range(0, len(table) - size + 1, size):
            kind = int.from_bytes(table[i + 2:i + 4], order)
            count = int.from_bytes(table[i + 4:i + 4 + (8 if big else 4)], order)
            if kind in _NUMERIC_TIFF_TYPES:
                most = max(most, count)
        return most
    finally:
        fh.seek(0)


def _check_size(img: PILImage, jpeg: _JpegHeader | None, path: Path | str,
                max_pixels: int = MAX_PIXELS) -> None:
    """Refuse, from the header alone, an image too large to decode on a small device."""
    w, h = img.size
    if w * h > max_pixels or w <= 0 or h <= 0:
        raise ImageTooLargeError(f"{path}: declares {w}x{h} pixels, more than the {max_pixels} "
                                 "this reader decodes; shrink the image first")
    if img.format in ("JPEG", "MPO"):  # decoded at reduced scale (draft), unless in several scans
        decoded = _jpeg_coefficient_bytes(jpeg, w, h) if jpeg else 0
        if decoded > MAX_DECODED_BYTES:
            raise ImageTooLargeError(f"{path}: a progressive (multi-scan) JPEG of {w}x{h} "
                                     f"pixels, whose {decoded / 1e6:.0f} MB of DCT coefficients "
                                     f"are more than the {MAX_DECODED_BYTES / 1e6:.0f} MB this "
                                     "reader decodes; shrink it or save it as a baseline JPEG")
        return
    # libwebp decodes to RGBX or RGBA; TIFF strips are read at the file's depth
    bands = 4 if img.format == "WEBP" else len(img.getbands())
    depth = 2 if img.mode.startswith("I;16") else 4 if img.mode in ("I", "F") else 1
    bits = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    if isinstance(bits, tuple) and bits:
        depth = max(depth, -(-int(max(bits)) // 8))
    decoded = w * h * bands * depth
    if decoded > MAX_DECODED_BYTES:
        raise ImageTooLargeError(f"{path}: declares {w}x{h} pixels, {decoded / 1e6:.0f} MB once "
                                 f"decoded ({bands} bands of {8 * depth} bits), more than the "
                                 f"{MAX_DECODED_BYTES / 1e6:.0f} MB this reader decodes; shrink "
                                 "the image or save it as JPEG")


def _jpeg_coefficient_bytes(jpeg: _JpegHeader, w: int, h: int) -> int:
    """Bytes of DCT coefficients libjpeg holds for a JPEG in several scans, 0 for one scan.

    A progressive JPEG, or one with a scan per component, is decoded through a buffer of all its
    coefficients (2 bytes a sample) whatever the draft scale: 290 MB for a 500-byte file declaring
    8000x6000. Pillow does not parse the scans, so the markers up to the first one are read here.
    """
    sampling, body = jpeg.sampling, jpeg.scan
    if not body or not sampling or (not jpeg.progressive and body[0] >= len(sampling)):
        return 0  # one scan of all components: decoded a row of blocks at a time
    hmax, vmax = max(s[0] for s in sampling), max(s[1] for s in sampling)
    return 2 * sum(w * h * hs * vs // (hmax * vmax) for hs, vs in sampling)


def _jpeg_header(fh: BinaryIO) -> _JpegHeader:
    """The markers of a JPEG up to its first scan, counted up to MAX_JPEG_SEGMENTS + 1."""
    fh.seek(2)  # past SOI
    progressive = False
    sampling: tuple[tuple[int, int], ...] = ()
    segments = 0
    try:
        while segments <= MAX_JPEG_SEGMENTS:
            segments += 1
            marker = fh.read(2)
            while marker[1:] == b"\xff" and segments <= MAX_JPEG_SEGMENTS:  # fill bytes
                segments += 1
                marker = marker[1:] + fh.read(1)
            if len(marker) < 2 or marker[0] != 0xFF or marker[1] == 0xD9:
                break  # not a marker where one belongs, or the end: the decoder reports it
            if 0xD0 <= marker[1] <= 0xD8 or marker[1] in (0x01, 0xFF):
                continue  # markers without a length
            body = fh.read(max(0, int.from_bytes(fh.read(2), "big") - 2))
            if marker[1] == 0xDA:  # the first scan
                return _JpegHeader(segments, progressive, sampling, body)
            if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC) and len(body) > 5:
                progressive = marker[1] in (0xC2, 0xC6, 0xCA, 0xCE)
                sampling = tuple((max(1, b >> 4), max(1, b & 15))
                                 for b in body[7:6 + 3 * body[5]:3])
        return _JpegHeader(segments, progressive, sampling, None)
    finally:
        fh.seek(0)


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
    factor = shrink_factor(img.size)
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


def shrink_factor(size: tuple[int, ...]) -> int:
    """The box side an image of ``size`` (either order) is shrunk by before it is read: 1 up to
    2 * DECODE_MAX a side."""
    side = max(size)
    return side // DECODE_MAX if side > 2 * DECODE_MAX else 1


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


def short_error(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__
