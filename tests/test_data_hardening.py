"""Hostile or mistaken inputs to the data loader and the export stage: refused early, in one line.

Special files are refused unopened, declared sizes are checked before anything is read or
allocated, and export refuses a model it cannot describe or convert honestly.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.data import IDX_STEMS, DataError, load_mnist
from common.formats import FORMATS, KEYS, parse_formats
from tests.test_export import copy_artifacts

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(1)


def _arrays(n_train=60, n_test=20) -> dict[str, np.ndarray]:
    return {
        "x_train": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": RNG.integers(0, 10, n_train).astype(np.uint8),
        "x_test": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": RNG.integers(0, 10, n_test).astype(np.uint8),
    }


def _idx_header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def _idx_folder(folder: Path) -> Path:
    folder.mkdir()
    for key, arr in _arrays().items():
        (folder / IDX_STEMS[key]).write_bytes(_idx_header(arr.shape) + arr.tobytes())
    return folder


def _npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def _refusal(path, peak_limit: int = 20 << 20) -> str:
    """load_mnist's DataError text for ``path``; fails if it allocated more than ``peak_limit``."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            load_mnist(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(err.value)
    assert "\n" not in text
    assert peak < peak_limit, f"allocated {peak / 2**20:.0f} MB before refusing: {text}"
    return text


# --- 1. special files are refused unopened ------------------------------------------------------

def _load_or_unblock(fifo: Path, path: str | None) -> BaseException | None:
    """load_mnist(path) in a thread; a reader still blocked on ``fifo`` after 5 s is released."""
    outcome: list[BaseException | None] = []

    def target():
        try:
            load_mnist(path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 (handed to the test)
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # EOF for the blocked reader
        thread.join(5)
        pytest.fail(f"load_mnist blocked on the FIFO {fifo}")
    return outcome[0]


@pytest.mark.parametrize("via", ["--data", "MNIST_DATA"])
def test_fifo_as_data_is_refused_without_blocking(tmp_path, monkeypatch, via):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    if via == "MNIST_DATA":
        monkeypatch.setenv("MNIST_DATA", str(fifo))
    exc = _load_or_unblock(fifo, str(fifo) if via == "--data" else None)
    assert isinstance(exc, DataError)
    assert str(fifo) in str(exc) and "named pipe (FIFO)" in str(exc) and "\n" not in str(exc)


def test_fifo_inside_an_idx_folder_is_named(tmp_path):
    folder = _idx_folder(tmp_path / "idx")
    (folder / IDX_STEMS["x_test"]).unlink()
    os.mkfifo(folder / IDX_STEMS["x_test"])
    exc = _load_or_unblock(folder / IDX_STEMS["x_test"], str(folder))
    assert isinstance(exc, DataError)
    assert IDX_STEMS["x_test"] in str(exc) and "named pipe (FIFO)" in str(exc)


def test_dev_zero_as_data_says_it_is_a_device():
    text = _refusal("/dev/zero")
    assert "/dev/zero" in text and "character device" in text
    assert "allow_pickle" not in text


# --- 2. declared sizes are checked before reading -----------------------------------------------

def test_gzipped_idx_declaring_huge_images_is_refused_unread(tmp_path):
    """A small gzip whose header declares 600 images of 1024x1024 (and whose data inflates)."""
    folder = _idx_folder(tmp_path / "idx")
    (folder / IDX_STEMS["x_test"]).unlink()
    bomb = _idx_header((600, 1024, 1024)) + bytes(64 << 20)
    (folder / (IDX_STEMS["x_test"] + ".gz")).write_bytes(gzip.compress(bomb, compresslevel=1))
    text = _refusal(folder)
    assert IDX_STEMS["x_test"] in text
    assert "(600, 1024, 1024)" in text and "expected (N, 28, 28)" in text


@pytest.mark.parametrize("key, shape", [("x_train", (1_000_001, 28, 28)),
                                        ("y_train", (1_000_001,))])
def test_idx_declaring_more_than_a_million_items_is_refused_unread(tmp_path, key, shape):
    folder = _idx_folder(tmp_path / "idx")
    (folder / IDX_STEMS[key]).unlink()
    data = _idx_header(shape) + bytes(8 << 20)
    (folder / (IDX_STEMS[key] + ".gz")).write_bytes(gzip.compress(data, compresslevel=1))
    text = _refusal(folder)
    assert IDX_STEMS[key] in text and "1,000,001" in text and "1,000,000" in text


@pytest.mark.parametrize("key, shape", [("x_train", (10**9, 28, 28)),
                                        ("x_test", (1_000_001, 28, 28)),
                                        ("y_test", (1_000_001,))])
def test_npz_declaring_too_many_images_is_refused_before_loading(tmp_path, key, shape):
    """Only the member's .npy header is read: no MemoryError, no gigabytes allocated."""
    path = tmp_path / "mnist.npz"
    arrays = _arrays()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            if name == key:
                zf.writestr(f"{name}.npy", _npy_header(shape) + bytes(1 << 20))
            else:
                buf = io.BytesIO()
                np.save(buf, arr)
                zf.writestr(f"{name}.npy", buf.getvalue())
    text = _refusal(path)
    assert str(path) in text and key in text and f"{shape[0]:,}" in text and "1,000,000" in text


# --- 3. messages that say what is wrong ---------------------------------------------------------

def test_pickled_npz_says_arrays_must_be_plain(tmp_path):
    arrays = _arrays()
    arrays["x_train"] = arrays["x_train"].astype(object)
    np.savez(tmp_path / "mnist.npz", **arrays)
    text = _refusal(tmp_path / "mnist.npz")
    assert "x_train" in text and "pickled" in text and "plain uint8/integer arrays" in text
    assert "download it again" not in text


@pytest.mark.parametrize("text", [",", "", " , ,"])
def test_empty_format_list_is_an_error_naming_the_keys(text):
    with pytest.raises(ValueError) as err:
        parse_formats(text)
    assert all(key in str(err.value) for key in KEYS)
    assert parse_formats("all") == FORMATS == parse_formats(" all ")


def test_cli_empty_formats_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime" / "src")])}
    done = subprocess.run([sys.executable, "-m", "export", "--artifacts", str(tmp_path),
                           "--formats", ","], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--formats" in lines[0] and "no format given" in lines[0]
    assert all(key in lines[0] for key in KEYS)


# --- 4. and 5. export: honest training block, finite models, any path ---------------------------

def _other_model(path: Path) -> None:
    """A different architecture with the same input and output, saved over ``path``."""
    from common.tf import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(path)


@pytest.mark.parametrize("metrics_hash", ["this model", "another model", "no field"])
def test_manifest_training_block_describes_this_model_only(tmp_path, test_artifacts,
                                                           metrics_hash):
    from common.artifacts import weights_sha256
    from export.export import ExportConfig, run

    folder = copy_artifacts(test_artifacts, tmp_path / "artifacts")
    old_hash = weights_sha256(folder / "model.keras")
    _other_model(folder / "model.keras")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("weights_sha256", None)
    if metrics_hash != "no field":
        metrics["weights_sha256"] = (weights_sha256(folder / "model.keras")
                                     if metrics_hash == "this model" else old_hash)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    lines: list[str] = []
    result = run(ExportConfig(artifacts=str(folder), formats="tflite_float32"), log=lines.append)
    assert result.failures == []
    manifest = json.loads((folder / "manifest.json").read_text())
    warnings = [line for line in lines if line.startswith("warning:")]
    if metrics_hash == "this model":
        assert manifest["training"] == metrics and warnings == []
    else:
        assert manifest["training"] is None
        assert len(warnings) == 1 and "metrics.json describes another model" in warnings[0]


def _poison(src: Path, dst: Path, how: str) -> None:
    from common.tf import import_tensorflow

    import_tensorflow()
    import keras

    model = keras.saving.load_model(src, compile=False)
    weights = model.get_weights()
    if how == "NaN weight":
        weights[0].flat[0] = np.nan
    else:  # finite weights whose activations overflow to inf, then NaN through softmax
        weights = [w * np.float32(1e30) if w.ndim > 1 else w for w in weights]
    model.set_weights(weights)
    model.save(dst)


@pytest.mark.parametrize("how", ["NaN weight", "overflowing weights"])
def test_non_finite_model_is_refused_before_converting(tmp_path, test_artifacts, capsys, how):
    from export.__main__ import main

    folder = copy_artifacts(test_artifacts, tmp_path / "artifacts")
    before = (folder / "manifest.json").read_bytes()
    _poison(test_artifacts / "model.keras", folder / "model.keras", how)
    capsys.readouterr()
    code = main(["--artifacts", str(folder), "--formats", "onnx_int8"])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "model.keras" in err[0] and "NaN or infinite" in err[0], err
    assert "Traceback" not in captured.err and "exporting" not in captured.out
    assert (folder / "manifest.json").read_bytes() == before


def test_export_to_a_non_utf8_folder_works(tmp_path, test_artifacts):
    """Regression: a folder name that is not UTF-8 (the interpreter gets bytes, not a path)."""
    from export.export import ExportConfig, run

    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/art\xff"))
    copy_artifacts(test_artifacts, folder)
    result = run(ExportConfig(artifacts=str(folder), formats="tflite_float32"),
                 log=lambda line: None)
    assert result.failures == []
    assert [e["key"] for e in result.manifest["files"]][:2] == ["tflite_int8", "tflite_float32"]
