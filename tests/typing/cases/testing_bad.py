"""Wrong uses of the testing fixtures and results: mypy must reject each marked line.

With an untyped fixture (``Callable[..., ProviderHarness]``) or an ``Any`` body, none of these
would be reported.
"""

from __future__ import annotations

from pathlib import Path

from gestalt.local import LocalServices
from gestalt.testing import StartProvider

HELLO = Path("examples/hello")


def test_wrong(gestalt_provider: StartProvider, gestalt_services: LocalServices) -> None:
    gestalt_provider(HELLO, mode="thread")  # E: arg-type
    gestalt_provider(HELLO, services="yes")  # E: arg-type
    gestalt_provider(HELLO, config={"when": object()})  # E: dict-item
    gestalt_provider(HELLO, ttl=3)  # E: call-arg
    hello = gestalt_provider(HELLO)
    hello.invoke("greet", {"name": HELLO})  # E: dict-item
    result = hello.invoke("greet", {"name": "Ann"})
    name: str = result.body  # E: assignment
    result.body.upper()  # E: union-attr
    result.decode(str).bit_length()  # E: attr-defined
    assert name
    gestalt_services.missing()  # E: attr-defined
