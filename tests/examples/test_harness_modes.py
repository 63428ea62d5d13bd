"""What the two harness modes have in common beyond the API: a fresh provider per start.

A subprocess start always imports the provider's module anew. An in-process start imports it
into the test process; the harness forgets it between starts, so a later start does not get
the state the previous run left (counters, a cache provider that its ``close()`` closed).
"""

from __future__ import annotations

from gestalt.testing import start_provider
from tests.examples.conftest import EXAMPLES


def test_inprocess_starts_are_independent() -> None:
    times = []
    for _ in range(2):
        with start_provider(EXAMPLES / "hello", mode="inprocess") as hello:
            result = hello.invoke("greet", {"name": "independent-starts"})
            times.append(result.decode(dict[str, int | str])["times"])
    assert times == [1, 1]
