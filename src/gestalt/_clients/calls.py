"""The sync and asyncio bases of clients whose methods are host-service calls.

A host-service method is a :class:`~gestalt.gen.hostcalls.Call`: declared once, on a class
rendered from the proto (``gestalt.gen.<pkg>.<name>_methods``) or written by hand for the
RPCs whose arguments need more than the proto says, it reads as a method on both a
:class:`_SyncClient` and an :class:`_AioClient`:

* ``client.method(request)`` with the raw request message sends it with the client's
  invocation token set (where the message has that field) and returns the raw response
  message, as the published SDK does;
* ``client.method(...)`` with the typed arguments of ``build`` returns the decoded result
  (usually a dataclass mirror).

On an :class:`_AioClient` both forms return awaitables. The clients below only hold the
connection (shared channel, relay token), the scope (invocation token, idempotency key)
and the default deadline.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.transport import (
    AioConnection,
    Endpoint,
    SyncConnection,
)
from gestalt.gen.hostcalls import (
    AioHostClient,
    AioMethod,
    Call,
    HostClient,
    Scope,
    SyncHostClient,
    SyncMethod,
)
from gestalt.gen.support import ErrorMapper

__all__ = ["AioMethod", "Call", "Scope", "SyncMethod"]


class _Client(HostClient):
    """What both kinds of client hold: their scope and channel share (with the deadline)."""

    __slots__ = ()

    #: The connection type (sync or asyncio) a subclass uses.
    _connection: Any
    #: The generated stub class (sync or asyncio) of a client that names one per subclass.
    _stubs: ClassVar[Any]

    def __init__(
        self,
        endpoint: Endpoint,
        factory: Any,
        errors: ErrorMapper,
        scope: Scope,
        timeout: float | None,
    ) -> None:
        self._scope = scope
        self._conn = self._connection(endpoint, factory, errors, timeout)


class _SyncClient(_Client, SyncHostClient, Closing):
    """Base of the sync clients whose methods are :class:`Call` descriptors."""

    __slots__ = ()
    _connection = SyncConnection
    _conn: SyncConnection[Any]

    def close(self) -> None:
        """Close the client (the shared channel closes with its last client); idempotent."""
        self._conn.close()


class _AioClient(_Client, AioHostClient, AsyncClosing):
    """Base of the asyncio clients whose methods are :class:`Call` descriptors."""

    __slots__ = ()
    _connection = AioConnection
    _conn: AioConnection[Any]

    async def close(self) -> None:
        """Close the client (a shared channel closes with its last client); idempotent."""
        await self._conn.close()
