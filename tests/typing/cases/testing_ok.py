"""A provider author's test file using the pytest fixtures: mypy --strict must accept it."""

from __future__ import annotations

from pathlib import Path

from gestalt import Model
from gestalt.local import LocalServices
from gestalt.testing import InvokeResult, JSONValue, ProviderHarness, StartProvider

HELLO = Path("examples/hello")


class Greeting(Model):
    """What ``greet`` answers."""

    message: str
    times: int


def test_greet(gestalt_provider: StartProvider) -> None:
    hello: ProviderHarness = gestalt_provider(
        HELLO, mode="inprocess", config={"region": "eu", "limits": {"calls": 3, "tags": ["a"]}}
    )
    result: InvokeResult = hello.invoke("greet", {"name": "Ann", "tags": ["a", 1, None]})
    body: JSONValue = result.body
    if isinstance(body, dict):
        message: JSONValue = body["message"]
        assert message
    greeting = result.decode(Greeting)
    times: int = greeting.times
    counts: dict[str, int] = hello.invoke("stats").decode(dict[str, int])
    explanation: str = result.error
    assert times and counts and explanation and result.ok and result.status


async def test_ainvoke(gestalt_provider: StartProvider) -> None:
    hello = gestalt_provider(HELLO, "hello:plugin", "integration", data_dir=Path("data"))
    result = await hello.ainvoke("greet", {"name": "Bo"}, context={"subject": {"id": "u:1"}})
    assert result.raw_body


def test_services(gestalt_services: LocalServices) -> None:
    data: Path = gestalt_services.data_dir
    sockets: dict[str, str] = gestalt_services.env()
    assert data and sockets
