"""Inputs as an attacker or a careless user gives them: formats Pillow should not decode, small
files declaring huge images, every PIL mode, devices, FIFOs and links, macOS debris, files named
against their content. Each bad input gets one stderr line and the others are still answered."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier, InputError, preprocess_image
from mnist_edge import images as edge_images

EDGE = [sys.executable, "-m", "mnist_edge"]
# decoding and preprocessing one image, on a 1 GB Raspberry Pi; measured: 86-201 MB for the
# largest accepted image of each format (a 3651x2738 WebP the worst), 46-48 MB for refused
# ones, so 55 MB (27%) of headroom over the worst
PEAK_RSS_MB = 256
IDX_HEADER = b"\x00\x00\x08\x03" + (28).to_bytes(4, "big") * 2  # after the image count


def run(*args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([*EDGE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def answers(done: subprocess.CompletedProcess) -> dict[str, int]:
    return {row.split("\t")[0]: int(row.split("\t")[1]) for row in done.stdout.splitlines()}


def errors(done: subprocess.CompletedProcess) -> dict[str, str]:
    """stderr as {input: message}, the final count line left out."""
    out = {}
    for line in done.stderr.strip().splitlines():
        assert line.startswith("mnist-edge: "), line
        if not line.endswith("inputs failed"):
            name, _, message = line.removeprefix("mnist-edge: ").partition(": ")
            out[name] = message
    return out


def peak_rss_mb(*args) -> tuple[float, subprocess.CompletedProcess]:
    """Peak RSS of `mnist-edge ARGS` (resource.getrusage of a child), and how it ended."""
    pytest.importorskip("resource", reason="resource.getrusage is POSIX only")
    code = ("import json, resource, subprocess, sys; "
            "d = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "d.returncode, d.stdout, d.stderr]))")
    out = subprocess.run([sys.executable, "-c", code, *EDGE, *map(str, args)],
                         capture_output=True, text=True, timeout=300)
    rss, status, stdout, stderr = json.loads(out.stdout)
    assert "Traceback" not in stderr, stderr
    done = subprocess.CompletedProcess(args, status, stdout, stderr)
    return rss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10), done


def needs_webp() -> None:
    from PIL import features

    if not features.check("webp"):
        pytest.skip("this Pillow was built without WebP")


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


@pytest.fixture(scope="module")
def digit(mnist_test):
    """MNIST's first test digit as dark ink on white paper (PIL, 84x84), and its label."""
    from PIL import Image

    x, y = mnist_test
    return Image.fromarray(255 - x[0]).resize((84, 84)), int(y[0])


def page(digit_img, w: int, h: int, mode: str = "L"):
    """A white page of w x h with the digit in its middle, half as tall as the page."""
    from PIL import Image

    side = min(w, h) // 2
    out = Image.new("L", (w, h), 255)
    out.paste(digit_img.resize((side, side)), ((w - side) // 2, (h - side) // 2))
    return out if mode == "L" else out.convert(mode)


def flat_png(path: Path, w: int, h: int, depth: int, colour: int) -> None:
    """A flat-grey PNG, compressed row by row: a few hundred KB for any size."""
    bands = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" + b"\x80" * (w * bands * depth // 8)
    z = zlib.compressobj(6)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def flat_tiff_16bit_rgba(path: Path, w: int, h: int) -> None:
    """A flat TIFF of 16-bit RGBA samples in one deflated strip (Pillow writes no such file)."""
    z = zlib.compressobj(6)
    row = b"\x80" * (w * 8)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    ifd = 8 + len(data)
    bits = ifd + 2 + 11 * 12 + 4
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 4, bits), (259, 3, 1, 8), (262, 3, 1, 2),
            (273, 4, 1, 8), (277, 3, 1, 4), (278, 4, 1, h), (279, 4, 1, len(data)),
            (284, 3, 1, 1), (338, 3, 1, 2)]
    out = b"II*\x00" + struct.pack("<I", ifd) + data + struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        out += struct.pack("<HHI", tag, kind, count) + (
            struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value))
    path.write_bytes(out + b"\x00" * 4 + struct.pack("<4H", 16, 16, 16, 16))


def progressive_jpeg_declaring(path: Path, w: int, h: int) -> None:
    """A 16x16 progressive 4:4:4 JPEG whose frame header declares w x h (a few hundred bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 200, 200)).save(buf, "JPEG", progressive=True,
                                                     subsampling=0)
    data, i = buf.getvalue(), 2
    while data[i + 1] != 0xC2:  # walk the markers to the progressive frame header
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    path.write_bytes(data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:])


# ------------------------------------------------------------------- 1. formats: no Ghostscript
@pytest.mark.skipif(os.name != "posix", reason="a stand-in `gs` needs a POSIX shell")
def test_postscript_named_jpg_is_refused_and_ghostscript_never_runs(artifacts, tmp_path):
    bin_dir, ran = tmp_path / "bin", tmp_path / "gs-ran"
    bin_dir.mkdir()
    (bin_dir / "gs").write_text(f"#!/bin/sh\ntouch '{ran}'\nexit 1\n")
    (bin_dir / "gs").chmod(0o755)
    (tmp_path / "digit.jpg").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n"
                                        "0 0 moveto 28 28 lineto stroke showpage\n")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = run("predict", artifacts, tmp_path / "digit.jpg", env=env)
    assert not ran.exists(), "Pillow ran Ghostscript on a file the runtime was given"
    message = errors(done)[str(tmp_path / "digit.jpg")]
    assert "not a supported image format (PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM)" in message
    assert done.returncode == 1
    with pytest.raises(InputError, match="not a supported image format"):
        edge_images.load_image(tmp_path / "digit.jpg")


@pytest.mark.parametrize("fmt, suffix, mode", [
    ("PNG", ".png", "L"), ("JPEG", ".jpg", "RGB"), ("JPEG", ".jpeg", "L"), ("BMP", ".bmp", "RGB"),
    ("GIF", ".gif", "P"), ("TIFF", ".tif", "L"), ("TIFF", ".tiff", "RGB"),
    ("WEBP", ".webp", "RGB"), ("PPM", ".pgm", "L"), ("PPM", ".ppm", "RGB"),
    ("PPM", ".pnm", "L"), ("PPM", ".pbm", "1"),
])
def test_every_supported_format_and_suffix_is_read(clf, digit, tmp_path, fmt, suffix, mode):
    if fmt == "WEBP":
        needs_webp()
    img, label = digit
    path = tmp_path / f"digit{suffix}"
    page(img, 120, 100, mode).save(path, format=fmt)
    assert fmt in edge_images.SUPPORTED_FORMATS and suffix in edge_images.IMAGE_SUFFIXES
    [result] = clf.predict_files([path])
    assert result.error is None and result.label == label


# ------------------------------------------------------------------ 2. memory: refused unread
@pytest.mark.parametrize("kind", ["webp-48mp", "png-16bit-rgba", "jpeg-progressive-500-bytes",
                                  "tiff-16bit-rgba-one-strip"])
def test_small_files_declaring_huge_images_are_refused_within_256_mb(artifacts, tmp_path, kind):
    from PIL import Image

    path = tmp_path / {"webp-48mp": "big.webp", "png-16bit-rgba": "big.png",
                       "jpeg-progressive-500-bytes": "big.jpg",
                       "tiff-16bit-rgba-one-strip": "big.tif"}[kind]
    if kind == "webp-48mp":  # 85 KB: 782 MB peak RSS before
        needs_webp()
        Image.new("RGB", (8000, 6000), (200, 200, 200)).save(path, quality=50)
    elif kind == "png-16bit-rgba":  # 403 KB: 623 MB before
        flat_png(path, 7071, 7071, 16, 6)
    elif kind == "jpeg-progressive-500-bytes":  # 288 MB of coefficients, whatever the draft:
        # 332 MB before
        progressive_jpeg_declaring(path, 8000, 6000)
    else:  # a strip of 16-bit samples besides the 8-bit image: 163 MB before, for 10 MP
        flat_tiff_16bit_rgba(path, 3651, 2738)
    assert path.stat().st_size < 500_000
    rss, done = peak_rss_mb("predict", artifacts, path)
    assert rss < PEAK_RSS_MB, f"{path.name}: {rss:.0f} MB peak RSS"
    message = errors(done)[str(path)]
    assert f"more than the {edge_images.MAX_DECODED_BYTES / 1e6:.0f} MB this reader decodes" \
        in message
    assert done.returncode == 1


def test_the_largest_images_accepted_are_read_within_256_mb(artifacts, digit, tmp_path):
    # at the limit, the formats that need the most memory per decoded byte: WebP (libwebp's
    # canvases), a TIFF in one strip, a progressive JPEG (its coefficients)
    from PIL import features

    img, label = digit
    limit = edge_images.MAX_DECODED_BYTES

    def size(pixels: float) -> tuple[int, int]:
        w = int((pixels * 4 / 3) ** 0.5)
        return w, int(pixels // w)

    files = {tmp_path / "limit.webp": (size(limit / 4 - 10_000), {"quality": 80}),
             tmp_path / "limit.tif": (size(limit / 3 - 10_000),
                                      {"compression": "tiff_deflate", "strip_size": 2 ** 31}),
             tmp_path / "limit.jpg": (size(limit / 6 - 10_000),
                                      {"progressive": True, "subsampling": 0, "quality": 90})}
    if not features.check("webp"):
        del files[tmp_path / "limit.webp"]  # this Pillow was built without WebP
    for path, ((w, h), options) in files.items():
        page(img, w, h, "RGB").save(path, **options)
        rss, done = peak_rss_mb("predict", artifacts, path)
        assert rss < PEAK_RSS_MB, f"{path.name} ({w}x{h}): {rss:.0f} MB peak RSS"
        assert done.returncode == 0, done.stderr
        assert answers(done) == {str(path): label}


# ------------------------------------------------------------------------ 3. float images
def test_float_images_follow_their_own_range(clf, digit, tmp_path):
    from PIL import Image

    img, label = digit
    gray = np.asarray(page(img, 90, 90), dtype=np.float32)
    unit, full = tmp_path / "unit.tif", tmp_path / "full.tif"
    Image.fromarray(gray / 255).save(unit)  # mode F, in [0, 1]
    Image.fromarray(gray).save(full)        # mode F, in 0..255
    results = clf.predict_files([unit, full])
    assert [(r.error, r.label) for r in results] == [(None, label), (None, label)]
    with Image.open(unit) as f:
        assert f.mode == "F"
        np.testing.assert_allclose(edge_images.pil_to_array(f), gray / 255, atol=1e-6)


# ---------------------------------------------------------------------------- 4. every mode
@pytest.mark.parametrize("mode", ["1", "L", "P", "PA", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX",
                                  "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B", "F",
                                  "F-unit"])
def test_every_pil_mode_is_read_and_alpha_kept_as_alpha(digit, mode):
    from PIL import Image

    img, _ = digit
    ink = Image.fromarray(255 - np.asarray(img))  # light ink on black, as MNIST
    if mode == "1":
        ink = ink.point(lambda v: 255 if v > 127 else 0)
    reference = preprocess_image(np.asarray(ink))
    white, grey = Image.new("L", ink.size, 255), Image.new("L", ink.size, 128)
    a16 = np.asarray(ink).astype(np.uint16) * 257
    made = {  # the ink drawn as alpha over transparency where the mode has alpha
        "LA": lambda: Image.merge("LA", [white, ink]),
        "La": lambda: Image.merge("La", [ink, ink]),  # premultiplied white
        "PA": lambda: Image.merge("RGBA", [white, white, white, ink]).convert("PA"),
        "RGBA": lambda: Image.merge("RGBA", [white, white, white, ink]),
        "RGBa": lambda: Image.merge("RGBa", [ink, ink, ink, ink]),
        "LAB": lambda: Image.merge("LAB", [ink, grey, grey]),
        "I;16": lambda: Image.fromarray(a16),
        "I;16B": lambda: Image.fromarray(a16.astype(">u2")),
        "F-unit": lambda: Image.fromarray(np.asarray(ink, dtype=np.float32) / 255),
    }
    pil = made[mode]() if mode in made else ink.convert(mode)
    assert pil.mode == mode.removesuffix("-unit")
    array = edge_images.pil_to_array(pil)
    assert array.ndim == 2 or array.shape[2] in (3, 4)
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        assert array.shape[2] == 4
    out = preprocess_image(pil)
    assert np.abs(out.astype(int) - reference).max() <= 2


def test_large_palette_bilevel_and_16_bit_images_are_shrunk_like_any_other(clf, digit,
                                                                            tmp_path):
    from PIL import Image

    img, label = digit
    big = page(img, 3000, 2400)
    paths = [tmp_path / "palette.gif", tmp_path / "bilevel.png", tmp_path / "deep.png"]
    big.convert("RGB").quantize(16).save(paths[0])
    big.convert("1").save(paths[1])
    Image.fromarray(np.asarray(big).astype(np.uint16) * 257).save(paths[2])  # 16-bit gray
    results = clf.predict_files(paths)
    assert [(r.error, r.label) for r in results] == [(None, label)] * 3


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied_to_large_images(clf, digit, tmp_path, suffix):
    from PIL import Image

    img, label = digit
    stored = page(img, 2600, 2200).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated by 270 degrees: upright again
    path = tmp_path / f"rotated{suffix}"
    stored.save(path, exif=exif.tobytes())
    [result] = clf.predict_files([path])
    assert result.error is None and result.label == label


def test_pillows_bomb_warning_is_not_printed_next_to_the_one_line(artifacts, tmp_path):
    path = tmp_path / "huge.png"  # 100 MP declared: above Pillow's warning, below its error
    flat_png(path, 10_000, 10_000, 1, 0)
    done = run("predict", artifacts, path)
    assert len(done.stderr.strip().splitlines()) == 2, done.stderr  # the error, then the count
    assert "10000x10000" in errors(done)[str(path)]


# ------------------------------------------------------------- 5. special files and links
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_devices_fifos_sockets_and_dangling_links_get_one_line_each(artifacts, digit, tmp_path):
    img, label = digit
    folder = tmp_path / "scans"
    folder.mkdir()
    page(img, 90, 90).save(folder / "a.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "gone.png").symlink_to(tmp_path / "nothing-here.png")
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "link.png").symlink_to(folder / "a.png")
    inputs = [folder, tmp_path / "fifo.png", "/dev/null", tmp_path / "link.png"]
    expected = {str(folder / "pipe.png"): "is a named pipe (FIFO)",
                str(folder / "gone.png"): "broken symbolic link",
                str(tmp_path / "fifo.png"): "is a named pipe (FIFO)",
                "/dev/null": "is a character device"}
    if hasattr(socket, "AF_UNIX") and len(str(tmp_path / "sock.png")) < 100:
        with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
            sock.bind(str(tmp_path / "sock.png"))
        inputs.append(tmp_path / "sock.png")
        expected[str(tmp_path / "sock.png")] = "is a socket"
    done = run("predict", artifacts, *inputs, timeout=60)  # a FIFO opened would block for ever
    assert answers(done) == {str(folder / "a.png"): label, str(tmp_path / "link.png"): label}
    bad = errors(done)
    assert bad.keys() == expected.keys()
    assert all(expected[name] in message for name, message in bad.items()), bad
    assert done.returncode == 1


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_folders_follow_symlinks_inside_them_and_walk_each_real_folder_once(artifacts, digit,
                                                                           tmp_path):
    img, label = digit
    folder, outside = tmp_path / "scans", tmp_path / "elsewhere"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    page(img, 90, 90).save(folder / "a.png")
    page(img, 100, 80).save(folder / "sub" / "b.png")
    page(img, 80, 100).save(outside / "c.png")
    (folder / "linked").symlink_to(outside)  # a folder elsewhere: named on stderr, not walked
    (folder / "loop").symlink_to(folder)     # back up: not walked again
    (folder / "again").symlink_to(folder / "sub")  # a second way to sub: walked once, as sub
    (folder / "sub" / "up").symlink_to("..")
    done = run("predict", artifacts, folder, timeout=60)
    assert done.returncode == 1, done.stderr
    assert answers(done) == {str(folder / "a.png"): label, str(folder / "sub" / "b.png"): label}
    assert list(errors(done)) == [str(folder / "linked")]


# ---------------------------------------------------------------- 6. odd names and formats
def test_macos_debris_is_skipped_in_folders_but_read_when_named(artifacts, digit, tmp_path):
    img, label = digit
    folder = tmp_path / "unzipped"
    (folder / "__MACOSX" / "sub").mkdir(parents=True)
    page(img, 90, 90).save(folder / "a.png")
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(74)
    for debris in (folder / "._a.png", folder / "__MACOSX" / "._a.png",
                   folder / "__MACOSX" / "sub" / "b.png"):
        debris.write_bytes(apple_double)
    done = run("predict", artifacts, folder)
    assert done.returncode == 0, done.stderr
    assert answers(done) == {str(folder / "a.png"): label}
    named = run("predict", artifacts, folder / "._a.png")
    assert "not a recognised image format" in errors(named)[str(folder / "._a.png")]
    assert named.returncode == 1


def test_arrays_are_recognised_by_content_whatever_their_name(artifacts, mnist_test, tmp_path):
    x, y = mnist_test
    with gzip.open(tmp_path / "images.gz", "wb") as fh:  # gzipped IDX, named without "idx"
        fh.write(IDX_HEADER[:4] + (3).to_bytes(4, "big") + IDX_HEADER[4:] + x[:3].tobytes())
    with open(tmp_path / "batch", "wb") as fh:  # .npy without its suffix
        np.save(fh, x[3:5])
    (tmp_path / "digits.data").write_bytes(IDX_HEADER[:4] + (2).to_bytes(4, "big")
                                           + IDX_HEADER[4:] + x[5:7].tobytes())
    done = run("predict", artifacts, tmp_path / "images.gz", tmp_path / "batch",
               tmp_path / "digits.data")
    assert done.returncode == 0, done.stderr
    got = answers(done)
    expected = {**{f"{tmp_path / 'images.gz'}[{i}]": y[i] for i in range(3)},
                **{f"{tmp_path / 'batch'}[{i}]": y[3 + i] for i in range(2)},
                **{f"{tmp_path / 'digits.data'}[{i}]": y[5 + i] for i in range(2)}}
    assert got.keys() == expected.keys()
    assert sum(got[k] == expected[k] for k in got) >= len(got) - 1


def test_npz_archives_and_standard_input_are_answered_with_what_to_do(artifacts, mnist_test,
                                                                      tmp_path):
    x, _ = mnist_test
    np.savez(tmp_path / "mnist.npz", x_test=x[:2])
    np.save(tmp_path / "good.npy", x[0])  # one image: answered under its own name
    done = run("predict", artifacts, tmp_path / "mnist.npz", "-", tmp_path / "good.npy")
    bad = errors(done)
    assert ".npz archive" in bad[str(tmp_path / "mnist.npz")]
    assert ".npy" in bad[str(tmp_path / "mnist.npz")]
    assert "standard input is not supported" in bad["-"]
    assert list(answers(done)) == [str(tmp_path / "good.npy")]
    assert done.returncode == 1
