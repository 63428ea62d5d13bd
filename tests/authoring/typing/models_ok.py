"""Must pass ``mypy --strict``: Model fields, decorators and results keep their types."""

from __future__ import annotations

from gestalt import OK, Model, Plugin, Request, Response, field, operation


class Item(Model):
    name: str
    count: int = field(default=0, description="How many")
    tags: list[str] = field(default_factory=list)
    note: str | None = None


plugin = Plugin("typed")


@plugin.operation(title="Get", read_only=True)
def get(params: Item, req: Request) -> Response[Item]:
    return OK(Item(name=params.name + req.token, count=params.count + 1))


@plugin.operation
async def ping() -> str:
    return "pong"


@operation(id="module.level")
def module_level(params: Item) -> int:
    return params.count


item: Item = get(Item("a"), Request()).body
count: int = module_level(Item(name="b", count=2, tags=["x"], note=None))
