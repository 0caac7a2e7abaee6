"""Every bad input gives one clear error of the package's own type, never a crash."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnist_edge import (
    BackendError,
    BlankImageError,
    Classifier,
    InputError,
    IntegrityError,
    MnistEdgeError,
    ModelError,
    backends,
    preprocess_image,
)


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 28, 27), np.uint8), "shape (2, 28, 27)"),
    (np.zeros((5,), np.uint8), "shape (5,)"),
    (np.zeros((2, 28, 28, 3), np.uint8), "shape (2, 28, 28, 3)"),
    (np.full((1, 28, 28), np.nan, np.float32), "NaN or infinite"),
    (np.full((1, 28, 28), np.inf, np.float64), "NaN or infinite"),
    (np.full((1, 28, 28), 255.0, np.float32), "divide by 255"),
    (np.full((1, 28, 28), -0.5, np.float32), "[0, 1]"),
    (np.full((1, 28, 28), 300, np.int32), "0..255"),
    (np.zeros((1, 28, 28), bool), "dtype bool"),
    (np.zeros((1, 28, 28), complex), "dtype complex128"),
    (np.zeros((1, 28, 28), object), "dtype object"),
    ("seven.png", "numpy array"),
])
def test_bad_arrays_are_refused_with_a_clear_message(clf, images, message):
    with pytest.raises(InputError, match=None) as info:
        clf.predict(images)
    assert message in str(info.value) and "\n" not in str(info.value)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16, np.int64,
                                         np.float16, np.float32, np.float64, np.bool_]),
                  shape=st.sampled_from([(28, 28), (1, 28, 28), (3, 28, 28, 1), (2, 28, 28), (28,),
                                         (0, 28, 28), (28, 28, 2), (4, 7, 28)]),
                  elements=None))
def test_any_array_gives_a_prediction_or_an_input_error(clf, x):
    # the documented rule (Classifier.predict): [N,28,28], [N,28,28,1] or one [28,28(,1)] image;
    # uint8, other integers within 0..255, or finite floats in [0, 1] (rounding up to 1e-3
    # outside is clipped); anything else is an InputError
    shape_ok = x.shape in ((28, 28), (28, 28, 1)) or x.shape[1:] in ((28, 28), (28, 28, 1))
    finite = x.dtype.kind != "f" or x.size == 0 or bool(np.isfinite(x.astype(np.float64)).all())
    lo, hi = (float(x.min()), float(x.max())) if x.size and finite else (0.0, 0.0)
    values_ok = (x.dtype == np.uint8 or (x.dtype.kind in "iu" and lo >= 0 and hi <= 255)
                 or (x.dtype.kind == "f" and finite and lo >= -1e-3 and hi <= 1 + 1e-3))
    if not (shape_ok and (values_ok or x.size == 0)):
        with pytest.raises(InputError) as info:
            clf.predict(x)
        assert str(info.value) and "\n" not in str(info.value)
        return
    p = clf.predict(x)
    assert len(p) == (1 if x.shape in ((28, 28), (28, 28, 1)) else x.shape[0])
    np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, atol=1e-5)


def _copy(artifacts: Path, tmp_path: Path) -> Path:
    out = tmp_path / "art"
    shutil.copytree(artifacts, out, ignore=shutil.ignore_patterns("*.keras", "*.png", "sm"))
    return out


def _first(folder: Path) -> tuple[dict, Path]:
    m = json.loads((folder / "manifest.json").read_text())
    entry = m["files"][0]
    return m, folder / entry["path"]


def test_missing_model_and_folder_without_manifest(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        Classifier.load(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match="has no manifest.json"):
        Classifier.load(tmp_path)


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_empty_garbage_and_truncated_model_files(artifacts, manifest, tmp_path, suffix):
    (tmp_path / f"empty{suffix}").write_bytes(b"")
    (tmp_path / f"text{suffix}").write_text("not a model at all\n" * 50)
    for name in (f"empty{suffix}", f"text{suffix}"):
        with pytest.raises(ModelError):
            Classifier.load(tmp_path / name)
    entry = next(f for f in manifest["files"] if f["path"].endswith(suffix))
    data = (artifacts / entry["path"]).read_bytes()
    for cut in (9, 100, 5000, len(data) // 2, len(data) - 50):
        (tmp_path / f"cut{suffix}").write_bytes(data[:cut])
        try:
            Classifier.load(tmp_path / f"cut{suffix}")
        except (ModelError, BackendError):
            continue
        pytest.fail(f"a {suffix} file cut to {cut} bytes loaded without an error")


def test_through_the_manifest_a_changed_file_is_refused_before_loading(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path)
    _, path = _first(folder)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit flipped in the weights
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        Classifier.load(folder)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(IntegrityError, match="size"):
        Classifier.load(folder)
    path.unlink()
    with pytest.raises(ModelError, match="no such model file"):
        Classifier.load(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(schema_version=99), "unknown manifest schema_version 99"),
    (lambda m: m.update(files=[]), "lists no exported files"),
    (lambda m: m["files"][0].update(path="../../etc/passwd"), "relative to the manifest"),
    (lambda m: m["files"][0].pop("sha256"), "lacks 'sha256'"),
])
def test_bad_manifests_are_refused(artifacts, tmp_path, edit, message):
    folder = _copy(artifacts, tmp_path)
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        Classifier.load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Classifier.load(folder / "manifest.json")


def test_missing_backend_names_the_pip_install(artifacts, manifest, monkeypatch):
    monkeypatch.setattr(backends, "unusable_reason", lambda name: f"{name} is not installed")
    with pytest.raises(BackendError, match="pip install"):
        Classifier.load(artifacts)
    tflite = next(f for f in manifest["files"] if f["format"] == "tflite")
    with pytest.raises(BackendError, match=r"pip install 'mnist-edge\[litert\]'"):
        Classifier.load(artifacts / tflite["path"])
    with pytest.raises(BackendError, match="unknown backend"):
        Classifier.load(artifacts, backend="tensorrt")


def test_a_backend_of_the_wrong_format_is_refused(artifacts, manifest):
    tflite = next(f for f in manifest["files"] if f["format"] == "tflite")
    with pytest.raises(BackendError, match="runs onnx models"):
        Classifier.load(artifacts / tflite["path"], backend="onnxruntime")


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 1000)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))


def test_bad_image_files_each_get_their_error_and_good_ones_are_answered(clf, mnist_test, tmp_path):
    from PIL import Image

    x, y = mnist_test
    good = tmp_path / "good.png"
    Image.fromarray(255 - x[0]).resize((120, 120)).save(good)
    jpg = tmp_path / "good.jpg"
    Image.fromarray(255 - x[0]).resize((120, 120)).save(jpg)
    files = {
        "empty.png": b"",
        "text.png": b"hello, not an image",
        "cut.png": good.read_bytes()[:200],
        "cut.jpg": jpg.read_bytes()[:300],
        "bomb.png": _png_header(100_000, 100_000),
        "big.png": _png_header(9_000, 9_000),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    Image.new("RGB", (200, 150), (180, 200, 190)).save(tmp_path / "blank.png")
    paths = [good, *(tmp_path / n for n in files), tmp_path / "blank.png", tmp_path / "missing.png",
             jpg]
    results = clf.predict_files(paths)
    assert [r.path for r in results] == [str(p) for p in paths]
    assert results[0].label == y[0] and results[-1].label == y[0]
    errors = {Path(r.path).name: r.error or r.no_digit for r in results[1:-1]}
    assert all(r.label is None and r.probabilities is None for r in results[1:-1])
    # with a "no digit" gate a blank photo is an answer, not an error
    assert [Path(r.path).name for r in results if r.no_digit] == (
        ["blank.png"] if clf.gate is not None else [])
    assert "empty file" in errors["empty.png"]
    assert "not a recognised image format" in errors["text.png"]
    assert ("corrupt or truncated" in errors["cut.png"]
            and "corrupt or truncated" in errors["cut.jpg"])
    assert "more pixels than" in errors["bomb.png"]  # Pillow's own bomb check fires first
    assert "9000x9000" in errors["big.png"]
    assert "no ink" in errors["blank.png"]
    assert "no such file" in errors["missing.png"]


@pytest.mark.parametrize("image", [
    np.zeros((50, 50), np.uint8), np.full((64, 80, 3), 200, np.uint8),
    np.random.default_rng(0).normal(128, 20, (100, 100)).clip(0, 255).astype(np.uint8),
    np.zeros((40, 40, 4), np.uint8),
])
def test_images_without_ink_are_reported_as_blank(image):
    with pytest.raises(BlankImageError, match="no ink"):
        preprocess_image(image)


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.bool_, np.int32]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=70)))
def test_preprocess_gives_28x28_or_an_input_error(x):
    try:
        out = preprocess_image(x)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 0


def test_errors_share_one_base_type():
    for exc in (ModelError, IntegrityError, BackendError, InputError, BlankImageError):
        assert issubclass(exc, MnistEdgeError)
