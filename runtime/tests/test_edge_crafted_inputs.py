"""Files and arrays crafted to take memory or time: a JPEG flooded with marker segments, a TIFF
with millions of strips, a sparse model file, long thin arrays, a FIFO or an endless duration
given to `bench`, a damaged EXIF block. Each is answered or refused in one line, within the
memory of a small device and in seconds."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from test_edge_inputs import PEAK_RSS_MB, answers, errors, page, peak_rss_mb, run

from mnist_edge import images as edge_images
from mnist_edge.manifest import read_manifest

SECONDS = 30  # "in seconds": far below the minutes these inputs took, on a loaded test machine


@pytest.fixture(scope="module")
def digit(mnist_test):
    """MNIST's first test digit as dark ink on white paper (PIL, 84x84), and its label."""
    from PIL import Image

    x, y = mnist_test
    return Image.fromarray(255 - x[0]).resize((84, 84)), int(y[0])


def jpeg_bytes(img, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **options)
    return buf.getvalue()


def timed_peak(*args) -> tuple[float, float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    rss, done = peak_rss_mb(*args)
    return rss, time.perf_counter() - start, done


# ------------------------------------------------------------------ decoder tables
def test_a_jpeg_flooded_with_empty_marker_segments_is_refused_in_one_line(artifacts, digit,
                                                                          tmp_path):
    # 4 M empty APP0 segments before the frame (16 MB): Pillow kept each one, 568 MB peak
    data = jpeg_bytes(page(digit[0], 120, 120))
    path = tmp_path / "flood.jpg"
    path.write_bytes(data[:2] + b"\xff\xe0\x00\x02" * 4_000_000 + data[2:])
    rss, seconds, done = timed_peak("predict", artifacts, path)
    assert rss < PEAK_RSS_MB, f"{rss:.0f} MB peak RSS"
    assert seconds < SECONDS
    assert done.returncode == 1
    assert "marker segments" in errors(done)[str(path)]


def test_a_jpeg_with_the_usual_segments_is_still_read(artifacts, digit, tmp_path):
    # an ICC profile in 64 KB pieces and an EXIF block: what cameras and editors write
    img, label = digit
    path = tmp_path / "camera.jpg"
    exif = img.getexif()
    exif[0x010F] = "camera"
    icc = bytes(range(256)) * 1024  # 256 KB: five APP2 segments
    path.write_bytes(jpeg_bytes(page(img, 300, 300).convert("RGB"), exif=exif, icc_profile=icc))
    done = run("predict", artifacts, path)
    assert done.returncode == 0, done.stderr
    assert answers(done) == {str(path): label}


def tiff_with_strips(path, rows: int) -> None:
    """A 1-pixel-wide gray TIFF of ``rows`` rows, one strip per row (two tables of ``rows``
    LONGs: 8 bytes a row), every strip reading the same byte."""
    pixel_at = 8
    offsets_at = pixel_at + 2
    counts_at = offsets_at + 4 * rows
    ifd = counts_at + 4 * rows
    tags = [(256, 4, 1, 1), (257, 4, 1, rows), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, rows, offsets_at), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, rows, counts_at)]
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd) + b"\x80\x00")
    out += struct.pack(f"<{rows}I", *([pixel_at] * rows))
    out += struct.pack(f"<{rows}I", *([1] * rows))
    out += struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        out += struct.pack("<HHII", tag, kind, count, value)
    path.write_bytes(bytes(out + struct.pack("<I", 0)))


def test_a_tiff_with_a_huge_strip_table_is_refused_in_one_line(artifacts, tmp_path):
    # 2.5 M strips (20 MB): Pillow unpacked each entry into a Python int, 689 MB and 15 s
    path = tmp_path / "strips.tif"
    tiff_with_strips(path, 2_500_000)
    rss, seconds, done = timed_peak("predict", artifacts, path)
    assert rss < PEAK_RSS_MB, f"{rss:.0f} MB peak RSS"
    assert seconds < SECONDS
    assert done.returncode == 1
    assert f"more than the {edge_images.MAX_TIFF_VALUES}" in errors(done)[str(path)]


def test_a_tiff_with_a_strip_per_row_is_still_read(artifacts, digit, tmp_path):
    from PIL import Image

    img, label = digit
    path = tmp_path / "rows.tif"
    page(img, 300, 3000).save(path, compression="tiff_deflate", strip_size=300)  # a row each
    assert len(Image.open(path).tag_v2[273]) == 3000
    done = run("predict", artifacts, path)
    assert answers(done) == {str(path): label}, done.stderr


def test_a_damaged_exif_block_leaves_stderr_to_mnist_edge(artifacts, digit, tmp_path):
    # a tag whose data lies past the block's end made Pillow print a two-line warning
    img, label = digit
    ifd = (b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHII", 0x010F, 2, 1000, 5000)
           + struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<I", 0))
    path = tmp_path / "exif.jpg"
    path.write_bytes(jpeg_bytes(page(img, 200, 200), exif=b"Exif\x00\x00" + ifd))
    done = run("predict", artifacts, path)
    assert done.stderr == "", done.stderr
    assert answers(done) == {str(path): label}


# ------------------------------------------------------------------ model files
@pytest.mark.parametrize("command", ["verify", "info", "predict"])
def test_a_model_file_of_the_wrong_size_is_refused_unread(artifacts, digit, tmp_path, command):
    # a sparse 500 MB file in place of the model: each command read it all (528 MB) first
    folder = tmp_path / "artifacts"
    shutil.copytree(artifacts, folder)
    entry = read_manifest(folder).files[0]
    with open(entry.path, "r+b") as fh:
        fh.truncate(500 * 1024 * 1024)
    image = tmp_path / "digit.png"
    page(digit[0], 100, 100).save(image)
    rss, seconds, done = timed_peak(command, folder, *([image] if command == "predict" else []))
    assert rss < PEAK_RSS_MB, f"{command}: {rss:.0f} MB peak RSS"
    assert done.returncode != 0
    shown = done.stdout if command == "verify" else done.stderr  # verify: a row per file
    assert f"size {500 * 1024 * 1024} bytes but the manifest says {entry.size}" in shown


# ------------------------------------------------------------------ arrays
CHILD = """
import json, sys, time
import numpy as np
from mnist_edge import Classifier, MnistEdgeError, preprocess_image
clf = Classifier.load(sys.argv[1])
shape = tuple(json.loads(sys.argv[3]))
x = np.full(shape, 255, np.uint8)
x[..., shape[-1] // 2:shape[-1] // 2 + 40] = 0
start = time.perf_counter()
try:
    out = repr(clf.read(x).number) if sys.argv[2] == "read" else str(preprocess_image(x).shape)
except MnistEdgeError as exc:
    out = "refused: " + str(exc)
print(json.dumps([out, time.perf_counter() - start]))
"""


@pytest.mark.parametrize("call", ["read", "preprocess_image"])
@pytest.mark.parametrize("shape", [[1, 70_000], [1, 100_000], [100_000, 3]])
def test_long_thin_arrays_are_answered_within_the_memory_of_a_file(artifacts, call, shape):
    # 1x70,000 raised MemoryError (9 GiB asked), 1x100,000 took 74 s and 18.5 GB: files of any
    # shape are shrunk first, and so are arrays now
    pytest.importorskip("resource", reason="resource.getrusage is POSIX only")
    code = ("import json, resource, subprocess, sys; "
            "d = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "d.returncode, d.stdout, d.stderr]))")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-c", CHILD,
                          str(artifacts), call, json.dumps(shape)],
                         capture_output=True, text=True, timeout=300)
    rss, status, stdout, stderr = json.loads(out.stdout)
    assert status == 0, stderr
    answer, seconds = json.loads(stdout)
    assert rss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10) < PEAK_RSS_MB
    assert seconds < SECONDS, answer
    assert "\n" not in answer


def test_arrays_larger_than_an_image_file_may_be_are_refused_in_one_line(artifacts):
    from mnist_edge import InputError, preprocess_image

    x = np.zeros((1, edge_images.MAX_PIXELS + 1), np.uint8)
    with pytest.raises(InputError, match=f"more than the {edge_images.MAX_PIXELS}"):
        preprocess_image(x)


# ------------------------------------------------------------------ bench
def test_bench_refuses_a_fifo_as_images_in_one_line(artifacts, tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "images.npy"
    os.mkfifo(fifo)
    done = run("bench", artifacts / "model_int8.tflite", "--images", fifo, "--quick",
               timeout=60)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "named pipe" in done.stderr, done.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "1e12"])
def test_bench_refuses_endless_durations_in_one_line(artifacts, value):
    done = run("bench", artifacts / "model_int8.tflite", "--seconds-per-batch", value,
               timeout=60)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "--seconds-per-batch" in done.stderr, done.stderr
