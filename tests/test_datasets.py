"""The dataset travels with the model: training records it (name, kind, class names, its test
set's sha256), export and the checks verify on it, the manifest and the runtime give the class
names, and a model of another kind than digits gets the generic photo path.

The end-to-end tests train and export a small Fashion-MNIST model as a user would (Debian's
dataset-fashion-mnist); without the package they skip and say how to install it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.data import DataError, load_mnist
from common.dataset import (
    FASHION_SHA256,
    MNIST_SHA256,
    fingerprint,
    identify,
    load_for,
    read_labels,
)
from tests.conftest import local_mnist

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
# the small model make test trains: enough for its int8 files to hold the format table's rule
TRAIN_FLAGS = ["--epochs", "3"]

needs_fashion = pytest.mark.skipif(
    not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST is not installed at {FASHION} (apt-get install dataset-fashion-mnist)")
needs_mnist = pytest.mark.skipif(local_mnist() is None,
                                 reason="no local MNIST ($MNIST_DATA or Keras's cache)")


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (gzipped) of a uint8 array, as LeCun's and Fashion-MNIST's."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _idx_folder(folder: Path, n: int = 200, seed: int = 0) -> Path:
    """A small IDX dataset of random 28x28 pictures with labels 0..9."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for split in ("train", "t10k"):
        _idx(folder / f"{split}-images-idx3-ubyte.gz",
             rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


# ------------------------------------------------------------------ identity and class names
@needs_mnist
def test_mnist_is_recognised_wherever_it_lies():
    ds = load_mnist(local_mnist())
    info = identify(ds)
    assert (info.name, info.kind, info.classes) == ("MNIST", "digits",
                                                    tuple(str(d) for d in range(10)))
    digest = hashlib.sha256(ds.x_test.tobytes() + ds.y_test.astype(np.uint8).tobytes())
    assert info.test_sha256 == digest.hexdigest() == MNIST_SHA256


@needs_fashion
def test_fashion_mnist_gives_its_class_names_and_kind():
    info = identify(load_mnist(FASHION))
    assert (info.name, info.kind, list(info.classes)) == ("Fashion-MNIST", "items", NAMES)
    assert info.test_sha256 == FASHION_SHA256 and info.source == str(FASHION)


def test_a_folder_with_labels_txt_names_its_classes(tmp_path):
    folder = _idx_folder(tmp_path / "my-shapes")
    names = [f"shape {i}" for i in range(10)]
    (folder / "labels.txt").write_text("\n".join(names) + "\n\n")
    info = identify(load_mnist(folder))
    assert (info.name, info.kind, list(info.classes)) == ("my-shapes", "items", names)
    assert identify(load_mnist(folder), kind="digits").kind == "digits"
    other = tmp_path / "other.txt"
    other.write_text("\n".join(n.upper() for n in names))
    assert list(identify(load_mnist(folder), labels=other).classes) == [n.upper() for n in names]


def test_an_unknown_folder_without_labels_is_items_named_0_to_9(tmp_path):
    info = identify(load_mnist(_idx_folder(tmp_path / "scans")))
    assert (info.name, info.kind, info.classes) == ("scans", "items",
                                                    tuple(str(d) for d in range(10)))


@pytest.mark.parametrize("text, message", [
    ("a\nb\nc\n", "holds 3 lines, expected 10 class names"),
    ("\n".join("abcdefgh") + "\n\nj", "line 9 is empty"),
    ("\n".join("abcdefghia"), "'a' is named twice"),
    ("\n".join([*"abcdefghi", "x" * 65]), "is longer than 64 characters"),
    ("\n".join([*"abcdefghi", "j\x1bk"]), "holds a control character"),
])
def test_a_bad_labels_file_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_labels(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_a_labels_path_that_is_not_a_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/zero")):
        with pytest.raises(DataError, match="not a file|cannot read") as info:
            read_labels(path)
        assert "\n" not in str(info.value)


def test_labels_that_are_not_utf8_are_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"\xff\xfe" + b"a\n" * 10)
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_labels(path)


# ------------------------------------------------------------------ the data a model verifies on
def test_the_recorded_dataset_is_loaded_and_another_refused(tmp_path, monkeypatch):
    one, two = _idx_folder(tmp_path / "one", seed=1), _idx_folder(tmp_path / "two", seed=2)
    record = identify(load_mnist(one)).as_dict()
    monkeypatch.setenv("MNIST_DATA", str(two))      # the recorded source wins over the variable
    assert fingerprint(load_for(record, None, "m.keras")) == record["test_sha256"]
    assert fingerprint(load_for(record, one, "m.keras")) == record["test_sha256"]
    with pytest.raises(DataError) as info:
        load_for(record, two, "m.keras")
    text = str(info.value)
    assert text.startswith(f"m.keras was trained on one ({one}), but {two} holds another "
                           "dataset") and "\n" not in text
    moved = dict(record, source=str(tmp_path / "gone"))
    with pytest.raises(DataError, match="which is not on this machine; pass --data"):
        load_for(moved, None, "m.keras")
    assert fingerprint(load_for(None, None, "m.keras")) == fingerprint(load_mnist(two))


@needs_mnist
def test_an_mnist_model_whose_files_moved_finds_mnist_through_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", local_mnist())
    record = {"name": "MNIST", "kind": "digits", "source": str(tmp_path / "moved.npz"),
              "test_sha256": MNIST_SHA256}
    assert fingerprint(load_for(record, None, "m.keras")) == MNIST_SHA256


# ------------------------------------------------------------------ end to end on Fashion-MNIST
def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run("-m", "mnist_edge", *[str(a) for a in args])


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A small Fashion-MNIST model trained and exported as a user would, with MNIST_DATA
    pointing at MNIST digits (when here): export must find Fashion-MNIST by itself."""
    if not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not installed at {FASHION} "
                    "(apt-get install dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("fashion") / "fash"
    env = dict(os.environ)
    if local_mnist():
        env["MNIST_DATA"] = local_mnist()
    done = _run("-m", "train", "--data", str(FASHION), "--out", str(out), *TRAIN_FLAGS, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    done = _run("-m", "export", "--artifacts", str(out), env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return out


@pytest.fixture(scope="module")
def fashion_test():
    if not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed")
    ds = load_mnist(FASHION)
    return ds.x_test, ds.y_test


def test_training_records_fashion_mnist(fashion):
    metrics = json.loads((fashion / "metrics.json").read_text())
    assert metrics["dataset"]["name"] == "Fashion-MNIST"
    assert metrics["dataset"]["classes"] == NAMES and metrics["dataset"]["kind"] == "items"


def test_export_verifies_on_fashion_mnist_without_being_told(fashion, fashion_test):
    import keras

    x, y = fashion_test
    model = keras.models.load_model(fashion / "model.keras")
    truth = float((model.predict(x / np.float32(255), verbose=0).argmax(axis=1) == y).mean())
    m = json.loads((fashion / "manifest.json").read_text())
    assert m["labels"] == NAMES
    assert {k: m["dataset"][k] for k in ("name", "kind")} == {"name": "Fashion-MNIST",
                                                              "kind": "items"}
    assert m["keras_reference"]["test_accuracy"] == pytest.approx(truth, abs=1e-4)
    assert truth > 0.8   # a Fashion-MNIST model scored on MNIST digits would be near 10%
    keys = {f["key"] for f in m["files"]}
    assert {"tflite_int8", "tflite_float32", "onnx_float32", "onnx_int8"} <= keys
    for f in m["files"]:
        assert abs(f["verification"]["accuracy"] - truth) <= 0.003, f


def test_export_refuses_another_dataset_in_one_line(fashion):
    before = (fashion / "manifest.json").read_bytes()
    data = local_mnist()
    if data is None:
        pytest.skip("no local MNIST to pass as the wrong dataset")
    done = _run("-m", "export", "--artifacts", str(fashion), "--data", data)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "was trained on Fashion-MNIST" in lines[0] and "holds MNIST" in lines[0]
    assert (fashion / "manifest.json").read_bytes() == before
    done = _run("-m", "checks.parity", "--artifacts", str(fashion), "--data", data,
                "--out", str(fashion.parent / "reports"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and "was trained on Fashion-MNIST" in lines[-1], done.stderr


def test_the_runtime_answers_with_class_names(fashion, fashion_test):
    from mnist_edge import Classifier

    x, y = fashion_test
    clf = Classifier.load(fashion)
    assert clf.labels == NAMES and clf.kind == "items"
    pred = clf.predict(x[:2000])
    assert pred.names == [NAMES[i] for i in pred.labels]
    assert np.mean(np.array(pred.names) == np.array([NAMES[i] for i in y[:2000]])) > 0.8
    info = _cli("info", fashion)
    assert "Fashion-MNIST (items)" in info.stdout and "Ankle boot" in info.stdout
    assert _cli("verify", fashion).returncode == 0   # every file passes its golden set


def _photo(item: np.ndarray, rng: np.random.Generator) -> bytes:
    """A Fashion-MNIST item as a photo: a dark item on light paper, 4x larger, off-centre in a
    wider frame, with sensor noise; JPEG."""
    from PIL import Image

    big = np.asarray(Image.fromarray(255 - item).resize((112, 112), Image.BICUBIC), np.float32)
    frame = np.full((180, 220), 255.0, np.float32)
    top, left = rng.integers(10, 58), rng.integers(10, 98)
    frame[top:top + 112, left:left + 112] = big
    frame = np.clip(frame * 0.9 + 10 + rng.normal(0, 3, frame.shape), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8)).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_photos_of_items_take_the_generic_path(fashion, fashion_test, tmp_path):
    from mnist_edge import Classifier

    x, y = fashion_test
    rng = np.random.default_rng(5)
    paths = []
    for i in range(200):
        path = tmp_path / f"item{i:03d}.jpg"
        path.write_bytes(_photo(x[i], rng))
        paths.append(path)
    clf = Classifier.load(fashion)
    results = clf.predict_files(paths)
    photo = np.array([r.label for r in results]) == y[:200]
    plain = clf.predict(x[:200]).labels == y[:200]
    assert all(r.name == NAMES[r.label] for r in results if r.label is not None)
    assert photo.mean() >= plain.mean() - 0.05, (photo.mean(), plain.mean())
    done = _cli("predict", fashion, paths[0], "--json")
    row = json.loads(done.stdout)
    assert done.returncode == 0 and row["name"] == NAMES[row["label"]] == results[0].name
    done = _cli("predict", fashion, paths[0])
    assert done.stdout.split("\t")[2] == results[0].name


def test_read_says_it_is_for_digit_models(fashion, tmp_path):
    from mnist_edge import Classifier
    from mnist_edge.errors import ModelError

    path = tmp_path / "shirt.png"
    path.write_bytes(_photo(np.full((28, 28), 200, np.uint8), np.random.default_rng(0)))
    done = _cli("read", fashion, path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "read is for digit models" in lines[0] and "Fashion-MNIST (items)" in lines[0]
    with pytest.raises(ModelError, match="watch is for digit models"):
        Classifier.load(fashion).watch(str(path))
