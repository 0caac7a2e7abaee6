"""The "no digit" gate beside the classifier: letters, symbols, shapes, textures and blank
images are answered "no digit" with the reason, digits keep their answers, and a manifest
without a gate (or --no-gate) works as if there were none."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from test_edge_cli import run

from mnist_edge import Classifier
from mnist_edge.errors import IntegrityError


@pytest.fixture(scope="module")
def clf(artifacts, manifest):
    if not manifest.get("gate"):
        pytest.fail(f"{artifacts} lists no gate; the test artifacts are built with one "
                    "(python -m checks.testmodels)")
    return Classifier.load(artifacts)


def _pictures() -> list[tuple[str, np.ndarray]]:
    """Dark ink on white paper, 160x160: things a camera sees that are not one digit."""
    from PIL import Image, ImageDraw, ImageFont

    out = []

    def canvas():
        im = Image.new("L", (160, 160), 255)
        return im, ImageDraw.Draw(im)

    font = ImageFont.load_default(size=110)
    for text in ("A", "K", "M", "W", "X", "%", "#", "@", "&", "R"):
        im, d = canvas()
        d.text((80, 80), text, fill=0, font=font, anchor="mm")
        out.append((f"char-{ord(text)}", np.asarray(im)))
    im, d = canvas()
    d.rectangle((30, 40, 130, 120), fill=0)
    out.append(("filled-box", np.asarray(im)))
    im, d = canvas()
    star = [(80 + (60 if k % 2 == 0 else 25) * math.cos(k * math.pi / 5 - math.pi / 2),
             80 + (60 if k % 2 == 0 else 25) * math.sin(k * math.pi / 5 - math.pi / 2))
            for k in range(10)]
    d.polygon(star, fill=0)
    out.append(("star", np.asarray(im)))
    im, d = canvas()
    for k in range(5):
        d.line((20 + 30 * k, 20, 20 + 30 * k, 140), fill=0, width=6)
        d.line((20, 20 + 30 * k, 140, 20 + 30 * k), fill=0, width=6)
    out.append(("grid", np.asarray(im)))
    yy, xx = np.mgrid[0:160, 0:160]
    out.append(("checkers", np.where(((yy // 20) + (xx // 20)) % 2 == 0, 0, 255).astype(np.uint8)))
    return out


@pytest.fixture(scope="module")
def picture_files(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("nondigits")
    paths = []
    for name, image in _pictures():
        paths.append(folder / f"{name}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def test_digits_keep_their_answers_and_few_are_refused(clf, mnist_test):
    x, y = mnist_test
    plain = clf.predict(x[:2000])
    pred = clf.predict(x[:2000], refuse=True)
    assert np.array_equal(pred.labels, plain.labels)       # refusing never changes a digit
    assert pred.digit_scores is not None and pred.digit_scores.shape == (2000,)
    assert ((pred.digit_scores >= 0) & (pred.digit_scores <= 1)).all()
    assert pred.refused.mean() <= 0.03
    # the reason of every refusal, and only of refusals, names the threshold
    for refused, why, score in zip(pred.refused, pred.reasons, pred.digit_scores, strict=True):
        assert refused == (why is not None)
        if refused:
            assert score < clf.threshold and f"{clf.threshold:.2f}" in why
        else:
            assert score >= clf.threshold


def test_pictures_that_are_not_digits_are_answered_no_digit(clf, picture_files):
    results = clf.predict_files(picture_files)
    refused = [r for r in results if r.no_digit is not None]
    assert len(refused) >= 0.7 * len(results), [(r.path, r.label) for r in results]
    for r in refused:
        assert r.ok and r.label is None and r.error is None
        assert r.no_digit.startswith(("not a digit: the gate's digit score", "blank: no ink"))
    # without the gate every one of them with ink gets a digit, as before
    bare = Classifier.load(clf.manifest.path, gate=False)
    assert bare.gate is None
    answered = bare.predict_files(picture_files)
    assert all(r.label is not None for r in answered if r.error is None)
    assert sum(r.label is not None for r in answered) >= len(answered) - 2


def test_a_blank_image_is_an_answer_with_the_gate_and_an_error_without(clf, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 200).save(blank)
    [r] = clf.predict_files([blank])
    assert r.ok and r.label is None and r.no_digit.startswith("blank")
    [r] = Classifier.load(clf.manifest.path, gate=False).predict_files([blank])
    assert not r.ok and r.no_digit is None and "no ink" in r.error
    pred = clf.predict(np.zeros((2, 28, 28), np.uint8), refuse=True)
    assert pred.refused.all() and all(w.startswith("blank") for w in pred.reasons)


# Printed characters that do not look like a digit, for read: it cuts a line into marks and the
# gate scores each, and the strokes of a letter often pass for a digit's (the gate's weak spot,
# docs/no-digit.md): about half are answered "no digit" (12-16 of these 28 and 3 of the 4 shapes
# on three trained readers, 2026-12-07)
CHARACTERS = "ACEFHJKMNPQRTUVWXY%#@&?!*+=<"
READ_REFUSED = 0.4


def test_read_answers_no_digit_for_many_non_digits_and_reads_numbers_as_before(clf, mnist_test):
    from PIL import Image, ImageDraw, ImageFont

    from common import photos

    font = ImageFont.load_default(size=110)
    pictures = [image for name, image in _pictures() if not name.startswith("char-")]
    for text in CHARACTERS:
        im = Image.new("L", (160, 160), 255)
        ImageDraw.Draw(im).text((80, 80), text, fill=0, font=font, anchor="mm")
        pictures.append(np.asarray(im))
    readings = [clf.read(image) for image in pictures]
    answered = [r for r in readings if r.no_digit is not None]
    assert len(answered) >= READ_REFUSED * len(readings), [r.number for r in readings]
    for r in answered:
        assert r.number == "" and r.digits == ()
        assert r.refused or r.no_digit.startswith(("blank", "no digit"))
    x, y = mnist_test
    rng = np.random.default_rng(5)
    same = 0
    for _ in range(10):
        idx = rng.choice(2000, int(rng.integers(2, 6)), replace=False)
        image = photos.plain_number(photos.Digits(x, y, "test"), idx.tolist(), rng).image
        gated, bare = clf.read(image), clf.read(image, refuse=False)
        same += gated.number == bare.number
        assert bare.no_digit is None and bare.refused == ()
        assert all(d.digit_score is not None for d in gated.digits)
    assert same >= 9


def test_the_cli_prints_no_digit_with_the_reason(artifacts, picture_files, tmp_path):
    done = run("predict", artifacts, *picture_files, "--json")
    assert done.returncode == 0, done.stderr             # an answer, not a failure
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(picture_files)
    refused = [row for row in rows if row["label"] is None]
    assert len(refused) >= 0.7 * len(rows)
    assert all(row["no_digit"].startswith(("not a digit", "blank")) for row in refused)
    text = run("predict", artifacts, picture_files[0])
    if json.loads(done.stdout.splitlines()[0])["label"] is None:
        assert "\tno digit\tnot a digit" in text.stdout
    bare = run("predict", artifacts, *picture_files, "--json", "--no-gate")
    assert all(json.loads(line).get("label") is not None or "error" in json.loads(line)
               for line in bare.stdout.splitlines())
    assert sum(json.loads(line).get("label") is not None
               for line in bare.stdout.splitlines()) >= len(picture_files) - 2
    info = run("info", artifacts)
    assert "gate" in info.stdout and "no digit" in info.stdout


def test_without_a_gate_in_the_manifest_nothing_is_refused(artifacts, picture_files, tmp_path):
    folder = tmp_path / "nogate"
    shutil.copytree(artifacts, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["gate"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    clf = Classifier.load(folder)
    assert clf.gate is None and clf.threshold is None and "gate" not in clf.info()
    assert all(r.no_digit is None for r in clf.predict_files(picture_files))


def test_a_damaged_gate_file_is_refused_at_load(artifacts, manifest, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(artifacts, folder)
    gate_file = folder / manifest["gate"]["files"][0]["path"]
    data = bytearray(gate_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gate_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Classifier.load(folder)
    assert Classifier.load(folder, gate=False).gate is None
