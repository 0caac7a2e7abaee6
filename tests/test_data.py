"""The MNIST loader: npz and IDX (raw and gzipped) files written here, and every bad-input case."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.data import IDX_STEMS, DataError, load_mnist, read_idx, to_model_input

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _arrays(n_train=60, n_test=20):
    return {
        "x_train": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": RNG.integers(0, 10, n_train).astype(np.uint8),
        "x_test": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": RNG.integers(0, 10, n_test).astype(np.uint8),
    }


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, arrays: dict, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_STEMS.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return folder


def assert_same(ds, arrays):
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(ds, key), value)


def test_npz_roundtrip(tmp_path):
    arrays = _arrays()
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    assert_same(load_mnist(tmp_path / "mnist.npz"), arrays)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_folder(tmp_path, gz):
    arrays = _arrays()
    assert_same(load_mnist(write_idx_folder(tmp_path / "idx", arrays, gz)), arrays)


def test_env_var_is_used(tmp_path, monkeypatch):
    arrays = _arrays()
    np.savez(tmp_path / "m.npz", **arrays)
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "m.npz"))
    assert load_mnist().source == str(tmp_path / "m.npz")


def test_preprocessing_contract():
    x = np.array([[[0, 255] * 14] * 28], dtype=np.uint8)
    out = to_model_input(x)
    assert out.shape == (1, 28, 28, 1) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0


def _bad_case(tmp_path, case):
    a = _arrays()
    p = tmp_path / "bad.npz"
    if case == "missing":
        return tmp_path / "nope.npz", "no such file"
    if case == "truncated npz":
        np.savez(p, **a)
        p.write_bytes(p.read_bytes()[:500])
        return p, "not a readable npz"
    if case == "missing key":
        del a["y_test"]
        np.savez(p, **a)
        return p, "lacks y_test"
    if case == "wrong shape":
        a["x_train"] = a["x_train"].reshape(60, 784)
        np.savez(p, **a)
        return p, "x_train has shape (60, 784)"
    if case == "wrong dtype":
        a["x_test"] = a["x_test"].astype(np.float32)
        np.savez(p, **a)
        return p, "x_test has dtype float32"
    if case == "labels out of range":
        a["y_train"][3] = 11
        np.savez(p, **a)
        return p, "labels in 0..11"
    if case == "count mismatch":
        a["y_test"] = a["y_test"][:-1]
        np.savez(p, **a)
        return p, "20 test images but 19 test labels"
    folder = write_idx_folder(tmp_path / "idx", a, gz=case.endswith("gz"))
    target = folder / (IDX_STEMS["x_test"] + (".gz" if case.endswith("gz") else ""))
    if case.startswith("bad magic"):
        raw = bytearray(idx_bytes(a["x_test"]))
        raw[2] = 0x0D
        target.write_bytes(gzip.compress(bytes(raw)) if case.endswith("gz") else bytes(raw))
        return folder, "bad magic number"
    if case.startswith("truncated idx"):
        raw = idx_bytes(a["x_test"])[:-100]
        target.write_bytes(gzip.compress(raw) if case.endswith("gz") else raw)
        return folder, "wrong length"
    if case == "missing idx file":
        target.unlink()
        return folder, "missing t10k-images-idx3-ubyte"
    if case == "corrupt gzip":
        target.write_bytes(gzip.compress(idx_bytes(a["x_test"]))[:200])
        return folder, "truncated or corrupt"
    raise AssertionError(case)


BAD_CASES = ["missing", "truncated npz", "missing key", "wrong shape", "wrong dtype",
             "labels out of range", "count mismatch", "bad magic raw", "bad magic gz",
             "truncated idx raw", "truncated idx gz", "missing idx file", "corrupt gzip"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_data_gives_clear_error(tmp_path, case):
    path, message = _bad_case(tmp_path, case)
    with pytest.raises(DataError) as err:
        load_mnist(path)
    text = str(err.value)
    assert message in text and str(path.name) in text and "\n" not in text


def test_read_idx_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        read_idx(tmp_path / "empty", "x_test")


@pytest.mark.parametrize("case", ["truncated npz", "labels out of range", "bad magic gz"])
def test_cli_bad_data_is_one_line(tmp_path, case):
    """`python -m train` on bad data: one stderr line, exit 1, no traceback, nothing written."""
    path, message = _bad_case(tmp_path, case)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "train", "--data", str(path), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "must be at least 1"),
    (["--batch-size", "abc"], "is not a whole number"),
    (["--optimizer", "sgd"], "invalid choice"),
    (["--validation-split", "1.5"], "must be in [0, 1)"),
])
def test_cli_bad_flags(flags, message):
    proc = subprocess.run([sys.executable, "-m", "train", *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_help_lists_flags():
    proc = subprocess.run([sys.executable, "-m", "train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--data", "--out", "--epochs", "--batch-size", "--optimizer", "--seed",
                 "MNIST_DATA"):
        assert flag in proc.stdout
