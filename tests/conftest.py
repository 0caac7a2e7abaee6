"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def test_artifacts():
    """A trained + exported artifacts folder (see common/testmodels.py); treat it as read-only."""
    from common.data import DataError
    from common.testmodels import ensure_test_artifacts

    try:
        return ensure_test_artifacts()
    except DataError as exc:
        pytest.skip(f"no MNIST to build test artifacts: {exc}")
