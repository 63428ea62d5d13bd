"""The plugin the runtime benchmark serves: the same work as ``bare_provider.py``."""

from __future__ import annotations

import time

from gestalt import Model, Plugin

plugin = Plugin("bench")


class EchoInput(Model):
    """A small typed input."""

    name: str
    count: int = 1


@plugin.operation
def echo(params: EchoInput) -> dict[str, object]:
    """Decode, build and encode a small result: the per-call overhead case."""
    return {"name": params.name, "count": params.count}


@plugin.operation
def io() -> str:
    """Wait 5 ms as if on a database or HTTP call: the concurrency case."""
    time.sleep(0.005)
    return "done"
