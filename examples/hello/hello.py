"""Hello: a small integration plugin showing typed operations and hooks.

* ``greet`` takes a typed ``Model`` and returns one;
* ``stats`` is read-only (a GET the host may cache or expose to read-only roles);
* ``reset`` is restricted to the ``admin`` role;
* a session catalog adds an operation for callers whose subject is an admin;
* a post-connect hook stores the connected account's region as connection metadata.
"""

from __future__ import annotations

from pathlib import Path

from gestalt import ConnectedToken, Error, Model, Plugin, Request, field

plugin = Plugin.from_manifest(Path(__file__).with_name("manifest.yaml"))
GREETINGS: dict[str, int] = {}


class GreetInput(Model):
    """Who to greet, and how loudly."""

    name: str = field(description="the name to greet")
    excited: bool = field(default=False, description="end with an exclamation mark")


class Greeting(Model):
    """A greeting and how often this name was greeted."""

    message: str
    times: int


@plugin.operation(title="Greet someone", description="Say hello and count the greetings.")
def greet(params: GreetInput, request: Request) -> Greeting:
    """Greet ``params.name``; refuse an empty name with a 400."""
    name = params.name.strip()
    if not name:
        raise Error(400, "name must not be empty")
    GREETINGS[name] = GREETINGS.get(name, 0) + 1
    caller = request.subject.display_name or "someone"
    mark = "!" if params.excited else "."
    return Greeting(message=f"Hello {name}{mark} (asked by {caller})", times=GREETINGS[name])


@plugin.operation(method="GET", read_only=True, title="Greeting statistics")
def stats() -> dict[str, int]:
    """How many greetings each name received."""
    return dict(GREETINGS)


@plugin.operation(allowed_roles=["admin"], title="Forget all greetings")
def reset() -> dict[str, int]:
    """Clear the statistics (admins only)."""
    forgotten = len(GREETINGS)
    GREETINGS.clear()
    return {"forgotten": forgotten}


@plugin.session_catalog
def catalog_for(request: Request) -> dict[str, object] | None:
    """Admins also see an audit operation in their catalog."""
    if request.access.role != "admin":
        return None
    return {
        "name": plugin.name,
        "operations": [{"id": "audit", "method": "GET", "title": "Audit greetings"}],
    }


@plugin.post_connect
def remember_region(token: ConnectedToken) -> dict[str, str]:
    """Keep the region the account connected from."""
    return {"region": token.metadata.get("region", "unknown")}
