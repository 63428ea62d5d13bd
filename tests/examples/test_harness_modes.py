"""What the two harness modes should have in common beyond the API: a fresh provider per start.

A subprocess start always imports the provider's module anew. An in-process start imports it
into the test process, and a later in-process start of the same project gets the module that
is still in ``sys.modules``, with whatever state the previous run left (counters, a cache
provider that its ``close()`` closed). ``tests/examples/conftest.py`` works around it.
"""

from __future__ import annotations

from gestalt.testing import start_provider
from tests.examples.conftest import EXAMPLES, forget_module


def test_inprocess_starts_are_independent() -> None:
    forget_module(EXAMPLES / "hello")
    times = []
    try:
        for _ in range(2):
            with start_provider(EXAMPLES / "hello", mode="inprocess") as hello:
                times.append(hello.invoke("greet", {"name": "independent-starts"}).body["times"])
    finally:
        forget_module(EXAMPLES / "hello")
    assert times == [1, 1]
