"""What the README and `--help` promise, one small test each: the version, the least confident
digit, `read`'s text lines, folders, `--crops` on a file, `--unverified`, text `--top-k`, ties."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from mnist_edge import Classifier, backends


def run(*args):
    done = subprocess.run([sys.executable, "-m", "mnist_edge", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


def page(rows: list[np.ndarray]) -> np.ndarray:
    """A white page with each row's MNIST digits written dark, 2x size, well apart."""
    height = 80 + 90 * len(rows)
    width = 80 + 64 * max(len(r) for r in rows)
    out = np.full((height, width), 255, np.uint8)
    for r, digits in enumerate(rows):
        for c, digit in enumerate(digits):
            big = np.kron(digit, np.ones((2, 2), np.uint8))
            y, x = 40 + 90 * r, 40 + 64 * c
            out[y:y + 56, x:x + 56] = np.minimum(out[y:y + 56, x:x + 56], 255 - big)
    return out


@pytest.fixture(scope="module")
def two_rows(mnist_test, clf):
    """(image, labels of row 1, labels of row 2) in two rows: for each digit, the first test image
    of it that the model classifies right on its own (this tests reading, not the classifier)."""
    x, y = mnist_test
    right = clf.predict(x[:1000]).labels == y[:1000]
    first = [int(np.nonzero((y[:1000] == d) & right)[0][0]) for d in range(10)]
    top, bottom = [first[d] for d in (2, 0, 2, 6)], [first[d] for d in (1, 3, 9)]
    return page([x[top], x[bottom]]), y[top], y[bottom]


def test_version_is_the_installed_distributions():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"mnist-edge {metadata.version('mnist-edge')}"


def test_a_readings_confidence_is_its_least_confident_digit(clf, two_rows):
    reading = clf.read(two_rows[0])
    assert len(reading.digits) >= 5
    assert reading.confidence == min(d.confidence for d in reading.digits)


def test_read_prints_one_line_per_photo_with_lines_separated_by_a_space(two_rows, artifacts,
                                                                         tmp_path):
    from PIL import Image

    image = two_rows[0]
    Image.fromarray(image).save(tmp_path / "note.png")
    done = run("read", artifacts, tmp_path / "note.png")
    assert done.returncode == 0, done.stderr
    name, number, confidence = done.stdout.rstrip("\n").split("\t")
    assert name == str(tmp_path / "note.png")
    # the API's reading, its two lines joined by a space (whether it is right: test_edge_read)
    reading = Classifier.load(artifacts).read(image)
    assert reading.number.count("\n") == 1
    assert number == reading.number.replace("\n", " ")
    assert float(confidence) == pytest.approx(reading.confidence, abs=1e-4)


def test_read_on_a_folder_reads_every_photo_in_it(two_rows, artifacts, tmp_path):
    from PIL import Image

    image = two_rows[0]
    (tmp_path / "scans" / "sub").mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "scans" / "a.png")
    Image.fromarray(image[:130]).save(tmp_path / "scans" / "sub" / "b.jpg", quality=95)
    (tmp_path / "scans" / "notes.txt").write_text("not a photo")
    done = run("read", artifacts, tmp_path / "scans")
    assert done.returncode == 0, done.stderr
    got = {row.split("\t")[0]: row.split("\t")[1] for row in done.stdout.splitlines()}
    clf = Classifier.load(artifacts)
    assert got == {str(path): clf.read(path).number.replace("\n", " ")
                   for path in (tmp_path / "scans" / "a.png", tmp_path / "scans" / "sub" / "b.jpg")}
    assert got[str(tmp_path / "scans" / "a.png")].count(" ") == 1


def test_read_crops_naming_a_file_is_one_line_and_exit_2(two_rows, artifacts, tmp_path):
    from PIL import Image

    Image.fromarray(two_rows[0]).save(tmp_path / "note.png")
    (tmp_path / "taken").write_text("mine")
    done = run("read", artifacts, tmp_path / "note.png", "--crops", tmp_path / "taken")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--crops" in done.stderr and "not a folder" in \
        done.stderr
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("command", ["read", "bench"])
def test_help_of_read_and_bench_names_every_flag(command):
    done = run(command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    flags = {"read": ["--backend", "--threads", "--unverified", "--json", "--crops", "--camera",
                      "--video", "--every", "--stable", "--camera-api"],
             "bench": ["--backend", "--threads", "--json"]}[command]
    for flag in flags:
        assert flag in done.stdout, flag


def test_text_top_k_lists_the_next_digits_most_likely_first(artifacts, mnist_test, tmp_path):
    x, _ = mnist_test
    np.save(tmp_path / "two.npy", x[:2])
    expected = Classifier.load(artifacts).predict(x[:2]).probabilities
    done = run("predict", artifacts, tmp_path / "two.npy", "--top-k", "3")
    assert done.returncode == 0, done.stderr
    for i, row in enumerate(done.stdout.splitlines()):
        fields = row.split("\t")
        assert fields[0] == f"{tmp_path / 'two.npy'}[{i}]" and len(fields) == 5
        order = np.argsort(-expected[i], kind="stable")[:3]
        assert int(fields[1]) == order[0]
        assert float(fields[2]) == pytest.approx(expected[i][order[0]], abs=1e-4)
        for field, label in zip(fields[3:], order[1:], strict=True):
            digit, _, prob = field.partition(":")
            assert int(digit) == label and float(prob) == pytest.approx(expected[i][label],
                                                                         abs=1e-4)


def test_unverified_is_needed_to_run_a_bare_file_on_tflite_runtime(artifacts, manifest, mnist_test,
                                                                   tmp_path):
    if backends.unusable_reason("tflite-runtime") is not None:
        pytest.skip("tflite-runtime is not installed here (make test-runtime runs this test in "
                    ".venv-tflite, which has it)")
    x, y = mnist_test
    np.save(tmp_path / "ten.npy", x[:10])
    bare = tmp_path / "model.tflite"
    int8 = next(f["path"] for f in manifest["files"] if f["key"] == "tflite_int8")
    bare.write_bytes((artifacts / int8).read_bytes())
    refused = run("predict", bare, tmp_path / "ten.npy", "--backend", "tflite-runtime")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "--unverified" in refused.stderr
    done = run("predict", bare, tmp_path / "ten.npy", "--backend", "tflite-runtime",
               "--unverified")
    assert done.returncode == 0, done.stderr
    labels = [int(row.split("\t")[1]) for row in done.stdout.splitlines()]
    assert np.mean(np.array(labels) == y[:10]) >= 0.9


def _blends(a: np.ndarray, b: np.ndarray):
    for w in np.linspace(0.0, 1.0, 401):
        yield np.clip(np.rint(w * a + (1 - w) * b), 0, 255).astype(np.uint8)


def _is_tie(probabilities: np.ndarray) -> bool:
    top = np.sort(probabilities)[-2:]
    return bool(top[0] == top[1])


def _lower_of_the_tie(probabilities: np.ndarray) -> int:
    return int(np.nonzero(probabilities == probabilities.max())[0].min())


@pytest.fixture(scope="module")
def pairs(mnist_test):
    x, y = mnist_test
    return [(x[np.nonzero(y == d)[0][k]], x[np.nonzero(y == e)[0][k]])
            for k in range(5) for d, e in ((3, 8), (4, 9), (1, 7), (5, 6))]


def test_a_tie_in_an_array_goes_to_the_lower_digit_in_the_api_and_the_cli(artifacts, pairs,
                                                                          tmp_path):
    # the int8 file, the CLI's first choice for a folder: its outputs are quantized, ties exact
    clf = Classifier.load(artifacts, key="tflite_int8")
    tie = next((blend for a, b in pairs for blend in _blends(a, b)
                if _is_tie(clf.predict(blend[None]).probabilities[0])), None)
    assert tie is not None, "no blend of the test pairs ties the int8 model's top two outputs"
    pred = clf.predict(tie[None])
    lower = _lower_of_the_tie(pred.probabilities[0])
    assert pred.labels[0] == lower and pred.top_k(2)[0][0][0] == lower
    np.save(tmp_path / "tie.npy", tie[None])
    done = run("predict", artifacts, tmp_path / "tie.npy", "--top-k", "2")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split("\t")[1]) == lower, done.stdout


def test_a_tie_in_an_image_file_goes_to_the_lower_digit_in_the_api_and_the_cli(artifacts, pairs,
                                                                               tmp_path):
    from PIL import Image

    clf = Classifier.load(artifacts, key="tflite_int8")
    found = None
    for n, (a, b) in enumerate(pairs):
        blends = list(_blends(255 - a, 255 - b))  # dark ink on white, as a scan
        paths = [tmp_path / f"p{n}-{k}.png" for k in range(len(blends))]
        for blend, path in zip(blends, paths, strict=True):
            Image.fromarray(blend).save(path)
        found = next((r for r in clf.predict_files(paths)
                      if r.probabilities is not None and _is_tie(r.probabilities)), None)
        if found is not None:
            break
    assert found is not None, "no blend of the test pairs ties the int8 model's top two outputs"
    lower = _lower_of_the_tie(found.probabilities)
    assert found.label == lower
    done = run("predict", artifacts, found.path, "--top-k", "2")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split("\t")[1]) == lower, done.stdout
