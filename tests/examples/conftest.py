"""Fixtures for the example tests: where the examples are and how each one is started.

``start_example`` starts one folder of ``examples/`` with :func:`gestalt.testing.start_provider`
in the mode of the test (every test using it runs once per mode) and stops it afterwards.

In-process mode imports the example's module into the test process, and a second start would
reuse the module left in ``sys.modules`` by the first, state included (a closed cache stays
closed). Until the harness imports a fresh copy itself (reported, see
``test_harness_modes.py``), the fixture drops the example's module before each in-process start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gestalt.testing import Mode, ProviderHarness, start_provider
from tests.conftest import REPO

EXAMPLES = REPO / "examples"

StartExample = Callable[..., ProviderHarness]


def forget_module(root: Path) -> None:
    """Remove the top-level modules defined in ``root`` from ``sys.modules``."""
    for path in root.glob("*.py"):
        sys.modules.pop(path.stem, None)


@pytest.fixture(params=["subprocess", "inprocess"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Both harness modes, one test run each."""
    value: Mode = request.param
    return value


@pytest.fixture
def start_example(mode: Mode, tmp_path: Path) -> Iterator[StartExample]:
    """Start ``examples/<name>`` in this test's mode; everything started is stopped after."""
    started: list[tuple[ProviderHarness, Path]] = []

    def start(example: str, **kwargs: Any) -> ProviderHarness:
        """Start ``examples/EXAMPLE`` (keyword arguments as for ``start_provider``)."""
        root = EXAMPLES / example
        if mode == "inprocess":
            forget_module(root)
        kwargs.setdefault("data_dir", tmp_path / f"data-{len(started)}")
        harness = start_provider(root, mode=mode, **kwargs)
        started.append((harness, root))
        return harness

    yield start
    for harness, root in reversed(started):
        harness.stop()
        if mode == "inprocess":
            forget_module(root)
