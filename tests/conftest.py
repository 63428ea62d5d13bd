"""Shared test helpers: where the repository and the project's own test data live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
"""Facts the tests check against (protocol descriptors, golden transcripts, seed signatures).

``tests/data/README.md`` says where each of them comes from.
"""


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Path of ``tests/data``."""
    return DATA


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-goldens`` rewrites the committed golden output instead of comparing."""
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/goldens/expected from the fragment protos",
    )
