"""Fuzz class "crafted decoder headers": small image files whose headers and tables ask the
decoder for memory or time.

JPEGs flooded with marker segments or fill bytes, or declaring huge frames; TIFFs with huge
strip tables, huge tag counts or a BigTIFF entry count; PNG, GIF and BMP headers declaring huge
images; damaged EXIF blocks (offsets, counts and orientations out of range). ``random_spec``
draws a case, ``build_case`` writes its file from the seed corpus; the worker runs it through
the CLI (cases.headers), so anything Pillow prints on stderr counts as a failure, and a case
that takes longer than fuzz.SHORT_TIMEOUT_S is a hang.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

KINDS = ("jpeg-segments", "jpeg-fill", "jpeg-frame", "tiff-strips", "tiff-tag", "bigtiff",
         "png-header", "gif-header", "bmp-header", "exif")
SEGMENTS = (1, 30, 1000, 1024, 1025, 5000, 100_000)  # around the runtime's limit
VALUES = (1, 1000, 65_536, 65_537, 100_000)
DIMS = (0, 1, 2, 1000, 7071, 65_535, 65_536, 100_000, 2**31 - 1, 2**32 - 1)
ORIENTATIONS = (0, 1, 3, 6, 8, 9, 255, 65_535)


def random_spec(rng: np.random.Generator) -> dict:
    """One case: a kind of crafted header and its numbers."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    return {"kind": pick(KINDS), "n": int(pick(SEGMENTS)), "values": int(pick(VALUES)),
            "w": int(pick(DIMS)), "h": int(pick(DIMS)), "marker": int(rng.integers(0xE0, 0xF0)),
            "orientation": int(pick(ORIENTATIONS)), "seed": int(rng.integers(1 << 30)),
            "command": pick(("predict", "read"))}


def build_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """The worker job for one case, after writing its file in ``scratch``."""
    kind = spec["kind"]
    suffix = {"jpeg": ".jpg", "tiff": ".tif", "bigtiff": ".tif", "png": ".png", "gif": ".gif",
              "bmp": ".bmp", "exif": ".jpg"}[kind.split("-")[0]]
    path = scratch / f"case{suffix}"
    path.write_bytes(_file(spec, corpus))
    return {"target": "headers", "artifacts": str(artifacts), "path": str(path),
            "command": spec["command"]}


def _file(spec: dict, corpus: Path) -> bytes:
    kind, n = spec["kind"], spec["n"]
    if kind.startswith("jpeg") or kind == "exif":
        data = (corpus / "photo.jpg").read_bytes()
        frame = _find_frame(data)
        if kind == "jpeg-segments":  # empty or one-byte segments before or after the frame
            segment = bytes([0xFF, spec["marker"], 0, 2 + n % 2]) + b"\x00" * (n % 2)
            at = 2 if spec["seed"] % 2 else frame
            return data[:at] + segment * n + data[at:]
        if kind == "jpeg-fill":  # fill bytes before a marker
            return data[:2] + b"\xff" * n + data[2:]
        if kind == "jpeg-frame":  # a frame declaring w x h, baseline or progressive
            body = data[frame + 4:frame + 2 + struct.unpack(">H", data[frame + 2:frame + 4])[0]]
            sof = 0xC2 if spec["seed"] % 2 else 0xC0
            dims = struct.pack(">HH", min(spec["h"], 0xFFFF), min(spec["w"], 0xFFFF))
            new = bytes([0xFF, sof]) + data[frame + 2:frame + 4] + body[:1] + dims + body[5:]
            return data[:frame] + new + data[frame + 4 + len(body):]
        return _with_exif(data, spec)
    if kind in ("tiff-strips", "tiff-tag", "bigtiff"):
        return _tiff(spec)
    if kind == "png-header":
        return _png(spec)
    if kind == "gif-header":
        return _gif(spec)
    data = (corpus / "digit.bmp").read_bytes()  # bmp-header
    return data[:18] + struct.pack("<ii", min(spec["w"], 2**31 - 1),
                                   -min(spec["h"], 2**31 - 1) if spec["seed"] % 2
                                   else min(spec["h"], 2**31 - 1)) + data[26:]


def _find_frame(data: bytes) -> int:
    """The offset of a JPEG's frame header (SOF0/1/2)."""
    i = 2
    while i + 4 <= len(data) and data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return i


def _with_exif(data: bytes, spec: dict) -> bytes:
    """The JPEG with an EXIF block whose IFD is damaged: entries pointing past its end, counts
    out of range, a loop, an orientation of any value, random bytes."""
    rng = np.random.default_rng(spec["seed"])
    entries = [(0x0112, 3, 1, spec["orientation"] << 16 if spec["seed"] % 3 == 0
                else spec["orientation"]),
               (0x010F, 2, spec["values"], int(rng.integers(0, 1 << 32))),  # Make, anywhere
               (0x8769, 4, 1, 8),                                          # Exif IFD: a loop
               (0x0110, int(rng.integers(0, 20)), int(rng.integers(0, 1 << 32)), 26)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    block = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", int(rng.integers(2)) * 8)
    if spec["seed"] % 5 == 0:
        block = block[:int(rng.integers(len(block)))]  # cut short
    if spec["seed"] % 7 == 0:
        block = b"II*\x00" + rng.bytes(int(rng.integers(0, 200)))
    app1 = b"Exif\x00\x00" + block
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _tiff(spec: dict) -> bytes:
    """A small gray TIFF; its strip table, or another numeric tag, holds ``values`` entries."""
    rows = spec["values"] if spec["kind"] == "tiff-strips" else 8
    big = spec["kind"] == "bigtiff"
    pixels_at = 16 if big else 8
    table_at = pixels_at + 8
    count_kind = 16 if big else 4
    table = struct.pack(f"<{rows}{'Q' if big else 'I'}", *([pixels_at] * rows))
    counts_at = table_at + len(table)
    counts = struct.pack(f"<{rows}{'Q' if big else 'I'}", *([1] * rows))
    extra_at = counts_at + len(counts)
    extra = b"\x00\x01" * (spec["values"] if spec["kind"] == "tiff-tag" else 1)
    ifd_at = extra_at + len(extra)
    tags = [(256, 4, 1, 1), (257, 4, 1, rows), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, count_kind, rows, table_at), (277, 3, 1, 1), (278, 4, 1, 1),
            (279, count_kind, rows, counts_at), (0x9000 + spec["marker"], 3, len(extra) // 2,
                                                 extra_at)]
    if big:
        n = spec["n"] if spec["seed"] % 2 else len(tags)  # an entry count beyond the entries
        out = b"II+\x00" + struct.pack("<HHQ", 8, 0, ifd_at) + b"\x80" * 8 + table + counts
        out += extra + struct.pack("<Q", n)
        out += b"".join(struct.pack("<HHQQ", *t) for t in tags) + struct.pack("<Q", 0)
        return out
    out = b"II*\x00" + struct.pack("<I", ifd_at) + b"\x80" * 8 + table + counts + extra
    out += struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags)
    return out + struct.pack("<I", 0)


def _png(spec: dict) -> bytes:
    """A PNG header declaring w x h at any depth and colour type, over a few rows of data."""
    depth, colour = [(8, 0), (16, 6), (1, 0), (8, 3), (16, 2)][spec["seed"] % 5]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", spec["w"] & 0xFFFFFFFF, spec["h"] & 0xFFFFFFFF, depth,
                       colour, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096)
    plte = chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + plte + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def _gif(spec: dict) -> bytes:
    """A GIF whose screen and first frame declare w x h (16-bit fields: at most 65,535)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    w, h = min(spec["w"], 0xFFFF), min(spec["h"], 0xFFFF)
    data[6:10] = struct.pack("<HH", w, h)
    at = data.find(b"\x2c")  # the image descriptor
    if at > 0:
        data[at + 5:at + 9] = struct.pack("<HH", w, h)
    return bytes(data)
