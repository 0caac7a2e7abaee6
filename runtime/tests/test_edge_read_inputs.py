"""Classifier.read on the pictures users hand it: large files (boxes in the input's pixels), PIL
images with an EXIF orientation, transparent corners, digits cropped tight to the edge."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from common import photos
from mnist_edge import Classifier

EDGE = [sys.executable, "-m", "mnist_edge"]


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


@pytest.fixture(scope="module")
def known(mnist_test, clf):
    """Test digits the model reads when clean: {label: [indices]}."""
    x, y = mnist_test
    ok = np.nonzero(clf.predict(x[:2000]).labels == y[:2000])[0]
    return {d: [int(i) for i in ok if y[i] == d] for d in range(10)}


def number(mnist_test, known, text: str, seed: int, size: tuple[int, int] = (640, 480),
           **options):
    """``text`` drawn on a page photo (uint8 [H,W]) and each digit's ink box."""
    x, y = mnist_test
    rng = np.random.default_rng(seed)
    idx = [known[int(c)][int(rng.integers(len(known[int(c)])))] for c in text]
    s = photos.plain_number(photos.Digits(x, y, "test"), idx, rng, frame=size, **options)
    return s.image, [g.box for g in s.glyphs]


def read_right(clf, mnist_test, known, text: str, seed: int, **options):
    """``number`` for the first seed from ``seed`` whose photo the reader reads as ``text``.

    These tests are about the pictures (their size, orientation, edges), not about how well a
    freshly trained reader reads one particular drawing of the number: a photo it misreads is
    replaced by another drawing of the same number."""
    for s in range(seed, seed + 10):
        image, boxes = number(mnist_test, known, text, s, **options)
        if clf.read(image).number == text:
            return image, boxes
    pytest.fail(f"the reader read none of 10 photos of {text} right")


def overlap(a, b) -> float:
    """Intersection over union of two boxes (left, top, right, bottom)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_boxes_of_a_large_file_are_in_its_own_pixels(clf, mnist_test, known, tmp_path):
    # a 4000x3000 photo is decoded shrunk: its boxes came out in the shrunk image's pixels
    from PIL import Image

    image, truth = read_right(clf, mnist_test, known, "1396", 3, size=(4000, 3000), height=500)
    path = tmp_path / "big.jpg"
    Image.fromarray(image).save(path, quality=90)
    reading = clf.read(path)
    assert reading.number == "1396"
    for digit, box in zip(reading.digits, truth, strict=True):
        assert overlap(digit.box, box) > 0.7, (digit.box, box)
        assert 0 <= digit.box[0] < digit.box[2] <= 4000 and 0 <= digit.box[1] < digit.box[3] <= 3000
    done = subprocess.run([*EDGE, "read", str(clf.manifest.path.parent), str(path), "--json"],
                          capture_output=True, text=True, timeout=300)
    row = json.loads(done.stdout)
    assert [d["box"] for d in row["digits"]] == [list(d.box) for d in reading.digits]


def test_a_pil_image_is_read_upright_by_its_exif_orientation(clf, mnist_test, known, tmp_path):
    # read(path) turned the photo upright, read(Image.open(path)) read it sideways
    from PIL import Image

    image, _ = read_right(clf, mnist_test, known, "1396", 7)
    path = tmp_path / "sideways.jpg"
    stored = Image.fromarray(np.rot90(image))  # a camera held sideways...
    exif = stored.getexif()
    exif[0x0112] = 6  # ...says how to turn it upright
    stored.save(path, quality=92, exif=exif)
    from_file = clf.read(path)
    with Image.open(path) as img:
        from_pil = clf.read(img)
    assert from_file.number == from_pil.number == "1396"
    assert [d.box for d in from_pil.digits] == [d.box for d in from_file.digits]


@pytest.mark.parametrize("angle", [5, -5, 8])
def test_transparent_corners_are_paper(clf, mnist_test, known, tmp_path, angle):
    # a photo turned in an editor leaves its corners transparent: they read as black ink
    from PIL import Image

    image, _ = number(mnist_test, known, "1396", 7)
    photo = Image.fromarray(image)
    turned = photo.convert("RGBA").convert("RGBa").rotate(  # premultiplied, as editors turn
        angle, expand=True, resample=Image.Resampling.BICUBIC).convert("RGBA")
    white = photo.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=255)
    path = tmp_path / "turned.png"
    turned.save(path)
    # transparent pixels are paper: the same reading as the photo turned with white corners
    # (whether a turned number reads right is the reader's own matter)
    assert clf.read(path).number == clf.read(np.asarray(turned)).number \
        == clf.read(np.asarray(white)).number


def test_a_digit_drawn_on_a_transparent_canvas_is_still_read(clf, mnist_test):
    # the opaque pixels are the ink: the paper is the side that contrasts with them
    x, y = mnist_test
    canvas = np.zeros((140, 140, 4), np.uint8)
    canvas[..., 3] = np.kron(x[0], np.ones((5, 5), np.uint8))  # dark ink drawn as alpha
    assert clf.read(canvas).number == str(y[0])
def test_digits_touching_the_edges_are_read(clf, mnist_test, known):
    # cropped to the ink, nothing was read; flush left lost its first digit
    image, boxes = read_right(clf, mnist_test, known, "1396", 9, shading=0)
    left, top = min(b[0] for b in boxes) + 2, min(b[1] for b in boxes) + 2
    right, bottom = max(b[2] for b in boxes) - 2, max(b[3] for b in boxes) - 2
    assert clf.read(image[top:bottom, left:right]).number == "1396"
    assert clf.read(image[top:bottom, left:]).number == "1396"
    assert clf.read(image[:, left:]).number == "1396"


def test_a_digit_cropped_to_its_ink_is_mostly_read_as_predict_reads_it(clf, mnist_test, known):
    # a tight crop used to read nothing while predict gave a digit; crops flush with the ink on
    # every side are still the weak case (read and predict agree on 60% of these with the test
    # model and 71% with the full export, predict itself often finding no ink): this floor keeps
    # what works
    from mnist_edge import MnistEdgeError, preprocess_image

    agree = total = 0
    for digit in range(10):
        for seed in range(5):
            image, (box,) = number(mnist_test, known, str(digit), seed)
            for inset in range(3):
                tight = image[box[1] + inset:box[3] - inset, box[0] + inset:box[2] - inset]
                try:
                    said = str(int(clf.predict(preprocess_image(tight)).labels[0]))
                except MnistEdgeError:
                    said = ""
                agree += clf.read(tight).number == said
                total += 1
    print(f"\ntight crops: read answers as predict does on {agree}/{total}")
    assert agree >= 0.55 * total
