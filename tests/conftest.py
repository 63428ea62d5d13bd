"""Shared test helpers: where the repository and the shared contract live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The read-only ``shared/`` folder beside the checkout (or ``$GESTALT_SHARED``)."""
    env = os.environ.get("GESTALT_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared", REPO.parent.parent / "shared"]
    for candidate in candidates:
        if (candidate / "protocol").is_dir():
            return candidate
    raise FileNotFoundError("shared/ not found beside the repository; set GESTALT_SHARED")


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the shared contract folder."""
    return shared_dir()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-goldens`` rewrites the committed golden output instead of comparing."""
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/goldens/expected from the fragment protos",
    )
