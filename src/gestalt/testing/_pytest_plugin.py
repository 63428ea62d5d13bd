"""The ``gestalt`` pytest plugin: fixtures for provider tests (registered on install)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gestalt.testing._harness import ProviderHarness, StartProvider, start_provider

if TYPE_CHECKING:
    from gestalt.local import LocalServices


@pytest.fixture
def gestalt_provider(tmp_path: Path) -> Iterator[StartProvider]:
    """A function like :func:`gestalt.testing.start_provider`; every provider it started is
    stopped after the test. Service data goes under the test's ``tmp_path`` unless
    ``data_dir`` is given. Annotate the test parameter with :class:`~gestalt.testing.StartProvider`.
    """
    started: list[ProviderHarness] = []

    @functools.wraps(start_provider)
    def start(*args: Any, **kwargs: Any) -> ProviderHarness:
        if kwargs.get("data_dir") is None:
            kwargs["data_dir"] = tmp_path / f"gestalt-data-{len(started)}"
        harness = start_provider(*args, **kwargs)
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        harness.stop()


@pytest.fixture
def gestalt_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServices]:
    """The embedded Cache, IndexedDB and S3 services (a ``gestalt.local.LocalServices``), with
    ``GESTALT_*_SOCKET`` set for the test so ``gestalt.Cache()``, ``gestalt.IndexedDB()`` and
    ``gestalt.S3()`` reach them."""
    from gestalt.local import LocalServices

    services = LocalServices(tmp_path / "gestalt-data")
    for key, value in services.start().items():
        monkeypatch.setenv(key, value)
    yield services
    services.stop()
