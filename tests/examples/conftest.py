"""Fixtures for the example tests: where the examples are and how each one is started.

``start_example`` starts one folder of ``examples/`` with :func:`gestalt.testing.start_provider`
in the mode of the test (every test using it runs once per mode) and stops it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from gestalt.testing import JSONInput, Mode, ProviderHarness, StartProvider
from tests.conftest import REPO

EXAMPLES = REPO / "examples"


class StartExample:
    """Start ``examples/EXAMPLE`` in the test's mode (other arguments as ``start_provider``)."""

    def __init__(self, start: StartProvider, mode: Mode) -> None:
        self._start = start
        self._mode = mode

    def __call__(
        self,
        example: str,
        *,
        name: str = "test",
        config: Mapping[str, JSONInput] | None = None,
    ) -> ProviderHarness:
        return self._start(EXAMPLES / example, mode=self._mode, name=name, config=config)


@pytest.fixture(params=["subprocess", "inprocess"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Both harness modes, one test run each."""
    value: Mode = request.param
    return value


@pytest.fixture
def start_example(mode: Mode, gestalt_provider: StartProvider) -> Iterator[StartExample]:
    """Start ``examples/<name>`` in this test's mode; everything started is stopped after."""
    yield StartExample(gestalt_provider, mode)
