"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def test_artifacts():
    """A trained + exported artifacts folder (see tests/fixtures.py); treat it as read-only."""
    from tests.fixtures import ensure_test_artifacts
    from train.data import DataError

    try:
        return ensure_test_artifacts()
    except DataError as exc:
        pytest.skip(f"no MNIST to build test artifacts: {exc}")
