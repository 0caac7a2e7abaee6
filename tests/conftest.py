"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def local_mnist() -> str | None:
    """MNIST here without a download: $MNIST_DATA, else Keras's cached mnist.npz; None when
    neither is there (the tests that train then skip and say so)."""
    cached = Path.home() / ".keras" / "datasets" / "mnist.npz"
    return os.environ.get("MNIST_DATA") or (str(cached) if cached.is_file() else None)


@pytest.fixture(scope="session")
def test_artifacts():
    """A trained + exported artifacts folder (see checks/testmodels.py); treat it as read-only."""
    from checks.testmodels import ensure_test_artifacts
    from common.data import DataError

    try:
        return ensure_test_artifacts()
    except DataError as exc:
        pytest.skip(f"no MNIST to build test artifacts: {exc}")
