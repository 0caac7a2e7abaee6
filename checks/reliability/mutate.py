"""Byte mutations of seed files, described by small JSON-able specs, and the seed corpus.

A spec is a list of operations applied in order to a seed file's bytes, e.g.
``[["flip", 0.31, 5], ["truncate", 0.5]]``. Positions are fractions of the current length so
one spec fits any seed. Both the fuzz driver (random specs) and the hypothesis tests
(strategies) build specs; the worker applies them. Only numpy is imported here.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

HUGE_DIMS = ((100_000, 100_000), (65_500, 65_500), (1, 2_000_000_000), (7_000, 7_000), (0, 0))


def apply(data: bytes, ops: list) -> bytes:
    """``data`` after every operation in ``ops``."""
    buf = bytearray(data)
    for op in ops:
        buf = _apply_one(buf, op)
    return bytes(buf)


def _pos(buf: bytearray, frac: float) -> int:
    return min(int(frac * len(buf)), max(len(buf) - 1, 0))


def _apply_one(buf: bytearray, op: list) -> bytearray:
    kind, args = op[0], op[1:]
    if kind == "truncate":            # keep the first fraction of the bytes
        return buf[: int(args[0] * len(buf))]
    if kind in ("flip", "set", "header", "insert", "delete") and not buf:
        return buf
    if kind == "flip":                # flip one bit
        buf[_pos(buf, args[0])] ^= 1 << (int(args[1]) % 8)
    elif kind == "set":               # overwrite one byte
        buf[_pos(buf, args[0])] = int(args[1]) & 0xFF
    elif kind == "header":            # overwrite one byte among the first 64
                                      # (magic, sizes, offsets)
        buf[min(int(args[0]) % 64, len(buf) - 1)] = int(args[1]) & 0xFF
    elif kind == "append":            # garbage after the end
        buf += np.random.default_rng(int(args[1])).bytes(int(args[0]))
    elif kind == "insert":            # random bytes slipped in
        at = _pos(buf, args[0])
        buf[at:at] = np.random.default_rng(int(args[2])).bytes(int(args[1]))
    elif kind == "delete":            # bytes cut out
        at = _pos(buf, args[0])
        del buf[at:at + int(args[1])]
    elif kind == "random":            # replace everything with random bytes
        return bytearray(np.random.default_rng(int(args[1])).bytes(int(args[0])))
    elif kind == "empty":
        return bytearray()
    elif kind == "dims":              # declare a huge (or zero) image size in a valid header
        return bytearray(declare_size(bytes(buf), int(args[0]), int(args[1])))
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return buf


def declare_size(data: bytes, width: int, height: int) -> bytes:
    """PNG, BMP or JPEG bytes whose header declares width x height (pixels left as they are);
    AVI, MP4 and Matroska videos: see ``_declare_video_size``."""
    if data[:4] in (b"RIFF", b"\x1a\x45\xdf\xa3") or data[4:8] == b"ftyp":
        return _declare_video_size(data, width, height)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        ihdr = struct.pack(">II", width & 0xFFFFFFFF, height & 0xFFFFFFFF) + data[24:29]
        crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
        return data[:16] + ihdr + crc + data[33:]
    if data[:2] == b"BM" and len(data) >= 26:
        return (data[:18] + struct.pack("<ii", min(width, 2**31 - 1), min(height, 2**31 - 1))
                + data[26:])
    if data[:2] == b"\xff\xd8":
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
            at = data.find(marker)
            if at > 0 and at + 9 <= len(data):
                dims = struct.pack(">HH", min(height, 0xFFFF), min(width, 0xFFFF))
                return data[: at + 5] + dims + data[at + 9:]
    return data


def _declare_video_size(data: bytes, width: int, height: int) -> bytes:
    """A video whose container declares width x height: AVI's main and stream headers (and
    every MJPEG frame's SOF0), MP4's track header and video sample entry, Matroska's
    PixelWidth and PixelHeight (in the bytes they already take: at most 255 or 65,535)."""
    buf = bytearray(data)

    def put(found: int, offset: int, fmt: str, *values: int) -> None:
        at = found + offset
        if found >= 0 and at + struct.calcsize(fmt) <= len(buf):
            top = 2 ** (8 * struct.calcsize(fmt[-1])) - 1
            buf[at:at + struct.calcsize(fmt)] = struct.pack(fmt, *(min(v, top) for v in values))

    if data[:4] == b"RIFF":
        put(data.find(b"avih"), 40, "<II", width, height)
        put(data.find(b"strf"), 12, "<II", width, height)
        at = data.find(b"\xff\xc0")
        while at >= 0:
            put(at, 5, ">HH", height, width)
            at = data.find(b"\xff\xc0", at + 9)
    elif data[4:8] == b"ftyp":
        put(data.find(b"tkhd"), 80, ">II", width << 16, height << 16)
        put(data.find(b"stsd"), 44, ">HH", width, height)
    else:
        for element, value in ((b"\xb0", width), (b"\xba", height)):
            at = data.find(b"\xe0")  # the Video element, then its PixelWidth and PixelHeight
            while at >= 0 and data[at + 2:at + 3] != b"\xb0":
                at = data.find(b"\xe0", at + 1)
            at = data.find(element, at) if at >= 0 else -1
            n = data[at + 1] & 0x7F if 0 <= at < len(data) - 1 else 0
            if 1 <= n <= 8 and data[at + 1] & 0x80 and at + 2 + n <= len(data):
                buf[at + 2:at + 2 + n] = min(value, 256 ** n - 1).to_bytes(n, "big")
    return bytes(buf)


# ------------------------------------------------------------------------------ the seed corpus
def build_corpus(folder: Path, digits: np.ndarray) -> Path:
    """Write the image seeds (one MNIST digit as PNG/JPEG/BMP, a 'photo', .npy, IDX) to
    ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    digit = digits[0]
    Image.fromarray(digit).save(folder / "digit.png")
    Image.fromarray(digit).save(folder / "digit.jpg", quality=90)
    Image.fromarray(digit).save(folder / "digit.bmp")
    # a dark digit on paper, larger and in colour: the photo path of the preprocessing
    big = np.asarray(Image.fromarray(255 - digits[1]).resize((160, 120)))
    photo = np.stack([big, np.clip(big.astype(int) - 20, 0, 255).astype(np.uint8), big], axis=-1)
    Image.fromarray(photo).save(folder / "photo.png")
    Image.fromarray(photo).save(folder / "photo.jpg", quality=85)
    Image.fromarray(digit.astype(np.uint16) * 257).save(folder / "gray16.png")
    np.save(folder / "digits.npy", digits[:4])
    (folder / "digits-idx3-ubyte").write_bytes(
        b"\x00\x00\x08\x03" + struct.pack(">III", 4, 28, 28) + digits[:4].tobytes())
    return folder
