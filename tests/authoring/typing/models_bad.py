"""Must fail ``mypy --strict`` on the marked lines (see test_model_typing.py)."""

from __future__ import annotations

from gestalt import Model, Plugin, field


class Item(Model):
    name: str
    count: int = field(default=0)


plugin = Plugin("typed")


@plugin.operation
def get(params: Item) -> Item:
    return params


Item(name="a", count="many")  # error: arg-type
Item(count=1)  # error: call-arg
name: int = get(Item(name="a")).name  # error: assignment
