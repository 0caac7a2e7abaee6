"""Fixtures for the runtime tests, which run against the *installed* mnist_edge package.

They need exported models and MNIST test digits, and import neither TensorFlow nor the
project's train/export code:

- ``MNIST_EDGE_TEST_ARTIFACTS``: an artifacts folder with manifest.json and the exported files
  (``make test`` passes the one built by ``python -m checks.testmodels``);
- ``MNIST_DATA`` (mnist.npz or a folder of IDX files), else Keras's cache
  ~/.keras/datasets/mnist.npz.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from mnist_edge import backends
from mnist_edge.arrays import open_idx, read_idx_header

# the same examples on every run: a failure seen once is seen again
settings.register_profile("mnist-edge", derandomize=True)
settings.load_profile("mnist-edge")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = os.environ.get("MNIST_EDGE_TEST_ARTIFACTS")
    if not folder:
        pytest.skip("MNIST_EDGE_TEST_ARTIFACTS is not set (make test-runtime sets it to the folder "
                    "printed by `.venv/bin/python -m checks.testmodels`)")
    path = Path(folder)
    if not (path / "manifest.json").is_file():
        pytest.fail(f"MNIST_EDGE_TEST_ARTIFACTS={folder} holds no manifest.json")
    return path


@pytest.fixture(scope="session")
def manifest(artifacts) -> dict:
    return json.loads((artifacts / "manifest.json").read_text())


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 10,000 test images (uint8 [N,28,28]) and labels."""
    src = Path(os.environ.get("MNIST_DATA") or Path.home() / ".keras" / "datasets" / "mnist.npz")
    if src.is_dir():
        found = {}
        for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                         stem.replace("-idx", ".idx") + ".gz"):
                if (src / name).is_file():
                    found[stem] = _read_idx(src / name)
        if len(found) == 2:
            return found["t10k-images-idx3-ubyte"], found["t10k-labels-idx1-ubyte"]
    elif src.is_file():
        with np.load(src) as npz:
            return npz["x_test"], npz["y_test"].astype(np.int64)
    pytest.skip(f"no MNIST test data at {src}; set MNIST_DATA to mnist.npz or an IDX folder")


def _read_idx(path: Path) -> np.ndarray:
    """A whole IDX file (MNIST's own), through the runtime's IDX header reader."""
    with open_idx(path) as fh:
        shape = read_idx_header(fh, path)
        return np.frombuffer(fh.read(), dtype=np.uint8).reshape(shape)


def installed_backends() -> list[str]:
    """Backends usable in this venv (tensorflow only if it happens to be installed)."""
    return [name for name in backends.BACKENDS if backends.unusable_reason(name) is None]


def pytest_report_header(config):
    return f"mnist_edge backends here: {', '.join(installed_backends()) or 'none'}"
