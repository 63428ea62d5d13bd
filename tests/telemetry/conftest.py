"""Fixtures for the telemetry tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def socket_path() -> Iterator[Callable[[str], Path]]:
    """``socket_path(name)``: a unix socket path short enough for ``AF_UNIX``."""
    directory = Path(tempfile.mkdtemp(prefix="gst-"))
    yield lambda name: directory / f"{name}.sock"
    shutil.rmtree(directory, ignore_errors=True)
