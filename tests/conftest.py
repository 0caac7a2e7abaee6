"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def test_artifacts():
    """A trained + exported artifacts folder (see checks/testmodels.py); treat it as read-only."""
    from checks.testmodels import ensure_test_artifacts
    from common.data import DataError

    try:
        return ensure_test_artifacts()
    except DataError as exc:
        pytest.skip(f"no MNIST to build test artifacts: {exc}")
