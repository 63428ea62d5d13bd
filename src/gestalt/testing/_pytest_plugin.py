"""The ``gestalt`` pytest plugin: fixtures for provider tests (registered on install)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gestalt.testing._harness import ProviderHarness, start_provider

StartProvider = Callable[..., ProviderHarness]


@pytest.fixture
def gestalt_provider(tmp_path: Path) -> Iterator[StartProvider]:
    """A function like :func:`gestalt.testing.start_provider`; every provider it started is
    stopped after the test. Service data goes under the test's ``tmp_path`` unless
    ``data_dir`` is given."""
    started: list[ProviderHarness] = []

    def start(root: str | os.PathLike[str], *args: Any, **kwargs: Any) -> ProviderHarness:
        kwargs.setdefault("data_dir", tmp_path / f"gestalt-data-{len(started)}")
        harness = start_provider(root, *args, **kwargs)
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        harness.stop()


@pytest.fixture
def gestalt_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The embedded Cache, IndexedDB and S3 services, with ``GESTALT_*_SOCKET`` set for the
    test so ``gestalt.Cache()``, ``gestalt.IndexedDB()`` and ``gestalt.S3()`` reach them."""
    from gestalt.local import LocalServices

    services = LocalServices(tmp_path / "gestalt-data")
    for key, value in services.start().items():
        monkeypatch.setenv(key, value)
    yield services
    services.stop()
