"""How the embedded host services listen: one implementation for Cache, IndexedDB and S3.

* Addresses: a unix socket path, ``unix://<path>``, ``unix:<path>``, ``unix-abstract:<name>``
  or ``tcp://host:port`` (port 0 picks a free one), parsed by the clients' own
  :func:`~gestalt._clients.transport.parse_target`. TLS is refused: the services serve plaintext.
* Socket files: an existing *stale* socket (nobody accepts on it, as a crashed server leaves
  it) is replaced; a socket somebody serves, any other kind of file, a path longer than
  ``sockaddr_un`` holds or a missing directory are refused with a clear error.
* Servers allow 64 MiB messages both ways (the clients' limit) and may require the relay
  token the host's public relay checks (``x-gestalt-host-service-relay-token``), answering
  ``UNAUTHENTICATED`` "invalid-host-service-relay-token" before the service runs.
* :class:`LocalServer` (``grpc.Server``) and :class:`AsyncLocalServer` (``grpc.aio``) are the
  handles of a running service: ``target`` for ``GESTALT_<SERVICE>_SOCKET``, ``socket_path``,
  ``service``, ``stop(grace)`` and ``with`` / ``async with``.
"""

from __future__ import annotations

import functools
import hmac
import operator
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeAlias, TypedDict, TypeVar

import grpc
import grpc.aio

from gestalt._clients.closing import AsyncContext, Context
from gestalt._clients.transport import (
    MAX_MESSAGE_BYTES,
    RELAY_TOKEN_HEADER,
    clean_relay_token,
    parse_target,
)
from gestalt._runtime.socket_path import (
    MAX_SOCKET_PATH_BYTES,
    ListenError,
    SocketDirectoryNotFoundError,
    check_socket_directory,
    check_socket_path_length,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_SOCKET_PATH_BYTES",
    "Address",
    "AsyncLocalServer",
    "AsyncRelayTokenInterceptor",
    "AsyncServeOptions",
    "ListenError",
    "LocalServer",
    "RelayTokenInterceptor",
    "ServeOptions",
    "Served",
    "SocketDirectoryNotFoundError",
    "Where",
    "parse_address",
    "serve",
    "serve_async",
    "server_options",
]

#: Where a local service listens: a socket path, ``unix://…`` or ``tcp://host:port``.
Where: TypeAlias = "str | os.PathLike[str]"


class ServeOptions(TypedDict, total=False):
    r"""The keyword options every ``serve_*`` function of :mod:`gestalt.local` takes.

    ``relay_token``: calls must carry this relay token, as the host's relay requires.
    ``interceptors``: ``grpc.ServerInterceptor``\ s, run after the token check.
    ``max_workers``: how many threads serve calls (each function has its own default).
    ``max_message_bytes``: the largest message accepted either way (64 MiB by default).
    """

    relay_token: str | None
    interceptors: Sequence[grpc.ServerInterceptor]
    max_workers: int
    max_message_bytes: int


class AsyncServeOptions(TypedDict, total=False):
    """:class:`ServeOptions` of a ``grpc.aio`` server: no threads, asyncio interceptors."""

    relay_token: str | None
    interceptors: Sequence[grpc.aio.ServerInterceptor]
    max_message_bytes: int


def _checked(options: Mapping[str, object]) -> None:
    """Refuse a keyword :class:`ServeOptions` lacks, as a misspelt parameter would be."""
    unknown = sorted(set(options) - set(ServeOptions.__annotations__))
    if unknown:
        known = ", ".join(ServeOptions.__annotations__)
        raise TypeError(f"unexpected keyword argument {unknown[0]!r} (options: {known})")


#: How long :meth:`LocalServer.stop` waits for the server beyond the grace period.
_STOP_MARGIN = 5.0

#: The refusal message of the host's relay, word for word.
_BAD_TOKEN = "invalid-host-service-relay-token"


# -- addresses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed listening address.

    ``bind`` is what ``add_insecure_port`` takes; ``socket_path`` the absolute socket file
    (None for TCP and abstract sockets); ``host`` the TCP host as written.
    """

    scheme: Literal["unix", "unix-abstract", "tcp"]
    bind: str
    socket_path: Path | None = None
    host: str = ""

    def target(self, port: int, *, unix_form: Literal["path", "grpc"] = "path") -> str:
        """The value for ``GESTALT_<SERVICE>_SOCKET`` once bound on ``port``.

        A unix socket is written as its bare path (``unix_form="path"``) or as grpc's
        ``unix:<path>`` (``"grpc"``); the clients accept either.
        """
        if self.scheme == "tcp":
            return f"tcp://{self.host}:{port}"
        if self.socket_path is None or unix_form == "grpc":
            return self.bind
        return str(self.socket_path)


def parse_address(address: str | os.PathLike[str], service: str = "host service") -> Address:
    """Parse where to listen; ``service`` names the service in error messages.

    Raises ``ValueError`` for a TLS address, a TCP address without ``host:port`` or with a
    bad port, and a socket path too long for ``AF_UNIX``. Nothing is touched on disk.
    """
    raw = os.fspath(address)
    if not isinstance(raw, str):
        raise TypeError(f"address must be a str or a path, not {type(raw).__name__}")
    target = parse_target(raw, service)
    if target.scheme == "tls":
        raise ValueError(
            f"the embedded {service} serves plaintext only; use a socket path or tcp://"
        )
    if target.scheme == "tcp":
        host, _, port = target.address.rpartition(":")
        if not host:
            raise ValueError(f"tcp address {target.address!r} needs host:port")
        if not port.isdigit() or int(port) > 65535:
            raise ValueError(f"tcp address {target.address!r} has no valid port (0 to 65535)")
        return Address("tcp", target.address, host=host)
    if target.scheme == "unix-abstract":
        return Address("unix-abstract", target.grpc_target)
    path = Path(target.address).absolute()
    check_socket_path_length(path)
    return Address("unix", f"unix:{path}", socket_path=path)


def _claim_socket_path(path: Path) -> None:
    """Make ``path`` free to bind: remove a stale socket there, refuse anything else."""
    check_socket_directory(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # nobody accepts on it: left behind by a server that died
        except OSError as exc:  # no permission, or a listener too busy to answer
            raise FileExistsError(f"{path} is a socket that cannot be checked: {exc}") from exc
        else:
            raise FileExistsError(f"{path} is already served by another process")
    path.unlink(missing_ok=True)


def _listen(server: grpc.Server | grpc.aio.Server, address: Address) -> int:
    """Bind ``server`` to ``address``; the port bound (meaningful for TCP)."""
    if address.socket_path is not None:
        _claim_socket_path(address.socket_path)
    try:
        port = server.add_insecure_port(address.bind)
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {address.bind}: {exc}") from exc
    if port == 0:
        raise ListenError(f"cannot listen on {address.bind}")
    return port


def server_options(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """gRPC server options allowing messages of ``max_message_bytes`` both ways."""
    if max_message_bytes <= 0:
        raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


# -- relay token ----------------------------------------------------------------------------

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def _checked_token(token: str) -> bytes:
    checked = clean_relay_token(token)
    if checked is None:
        raise ValueError("relay token must not be blank")
    return checked.encode("ascii")


def _token_ok(expected: bytes, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
    for key, value in metadata or ():
        if key == RELAY_TOKEN_HEADER:
            given = value.strip() if isinstance(value, bytes) else value.strip().encode()
            return hmac.compare_digest(given, expected)
    return False


def _refusal(handler: Handler, aio: bool) -> Handler:
    """A handler of the same call shape and request decoder that only aborts."""

    def deny(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, _BAD_TOKEN)

    async def deny_async(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _BAD_TOKEN)

    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    behaviour: Any = deny_async if aio else deny
    return factory(behaviour, request_deserializer=handler.request_deserializer)


class _TokenCheck:
    def __init__(self, token: str) -> None:
        self._expected = _checked_token(token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} token=<redacted>>"

    def _passes(self, details: grpc.HandlerCallDetails) -> bool:
        return _token_ok(self._expected, details.invocation_metadata)


class RelayTokenInterceptor(_TokenCheck, grpc.ServerInterceptor):
    """Refuses calls without the relay token, as the host's public relay does.

    A call whose ``x-gestalt-host-service-relay-token`` (trimmed) differs from ``token``
    (trimmed; blank is a ``ValueError``) ends with ``UNAUTHENTICATED``
    "invalid-host-service-relay-token" before the service sees it.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Pass the call on, or answer it with the refusal."""
        handler = continuation(handler_call_details)
        if handler is None or self._passes(handler_call_details):
            return handler
        return _refusal(handler, aio=False)


class AsyncRelayTokenInterceptor(_TokenCheck, grpc.aio.ServerInterceptor):
    """:class:`RelayTokenInterceptor` for ``grpc.aio`` servers."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Pass the call on, or answer it with the refusal."""
        handler = await continuation(handler_call_details)
        if handler is None or self._passes(handler_call_details):
            return handler
        return _refusal(handler, aio=True)


# -- running servers ------------------------------------------------------------------------

S = TypeVar("S")
G = TypeVar("G", grpc.Server, grpc.aio.Server)


class _Handle(Generic[S, G]):
    """What both handles share: where the service listens and the cleanup after stopping."""

    def __init__(
        self,
        server: G,
        service: S,
        target: str,
        socket_path: Path | None,
        *,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.server: G = server
        self.service = service
        self.target = target
        self.socket_path = socket_path
        self._close = close  # the service's and the thread pool's cleanup
        self._stopped = False

    def _release(self) -> None:
        """Close the service and remove the socket file, even if closing fails."""
        try:
            if self._close is not None:
                self._close()
        finally:
            if self.socket_path is not None:
                self.socket_path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<{type(self).__name__} {self.target!r} {state}>"


class LocalServer(_Handle[S, grpc.Server], Context):
    """A service running on a ``grpc.Server``; stop it with :meth:`stop` or ``with``.

    ``target`` is the value for ``GESTALT_<SERVICE>_SOCKET`` (for TCP with the port really
    bound), ``socket_path`` the absolute socket file (None for TCP and abstract sockets),
    ``service`` the implementation and ``server`` the grpc server.
    """

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (open calls get ``grace`` seconds), close the service, drop the socket.

        Calling it again does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self.server.stop(grace).wait(timeout=(grace or 0) + _STOP_MARGIN)
        finally:
            self._release()

    def _exit(self, exc: BaseException | None) -> None:
        self.stop()


class AsyncLocalServer(_Handle[S, grpc.aio.Server], AsyncContext):
    """A service running on a ``grpc.aio`` server; ``await stop()`` or ``async with``.

    Same attributes as :class:`LocalServer`.
    """

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving (open calls get ``grace`` seconds), close the service, drop the socket.

        Calling it again does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            await self.server.stop(grace)
        finally:
            self._release()

    async def _aexit(self, exc: BaseException | None) -> None:
        await self.stop()


H = TypeVar("H", bound=LocalServer[Any])


def serve(
    handle: type[H],
    address: Address,
    open_service: Callable[[], S],
    register: Callable[[S, grpc.Server], None],
    *,
    name: str,
    close: Callable[[S], None] | None = None,
    relay_token: str | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    max_workers: int = 8,
    max_concurrent_rpcs: int | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    unix_form: Literal["path", "grpc"] = "path",
) -> H:
    """Run a service on a new ``grpc.Server`` at ``address``; return a ``handle`` for it.

    Every argument is checked before ``open_service()`` creates the service, which
    ``register(service, server)`` then adds to the server. ``close(service)`` runs after the
    server stops, and also when starting fails, so callers never clean up themselves. With
    ``relay_token`` calls must carry that token; ``interceptors`` run after that check.
    ``max_workers`` threads (named ``gestalt-<name>``) run the calls; with
    ``max_concurrent_rpcs`` calls beyond that many fail fast with ``RESOURCE_EXHAUSTED``.
    Returns once the server is listening.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    options = server_options(max_message_bytes)
    chain: list[grpc.ServerInterceptor] = (
        [RelayTokenInterceptor(relay_token)] if relay_token is not None else []
    )
    service = open_service()
    pool = futures.ThreadPoolExecutor(max_workers, thread_name_prefix=f"gestalt-{name}")
    server = grpc.server(
        pool,
        interceptors=[*chain, *interceptors],
        options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )

    def cleanup() -> None:
        try:
            if close is not None:
                close(service)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    try:
        register(service, server)
        port = _listen(server, address)
        server.start()
    except BaseException:
        server.stop(None)
        cleanup()
        raise
    target = address.target(port, unix_form=unix_form)
    return handle(server, service, target, address.socket_path, close=cleanup)


@dataclass(frozen=True, slots=True)
class Served(Generic[H, S]):
    """How a public ``serve_*`` function serves its kind of service.

    ``what`` names the service in errors about the address, ``name`` its threads;
    ``register(service, server)`` adds it to a server, whose handle is a ``handle``;
    ``close(service)`` runs once the server stopped. Calls get ``workers`` threads unless the
    caller's options say otherwise. A service of long-lived ``streams`` (a store) fails calls
    beyond its threads at once instead of queueing them, its unix target takes the gRPC form
    and its own ``close()`` runs once the server stopped.
    """

    what: str
    name: str
    register: Callable[[S, grpc.Server], None]
    handle: type[H]
    close: Callable[[S], None] | None = None
    workers: int = 8
    streams: bool = False

    def serve(self, address: Where, open_service: Callable[[], S], options: ServeOptions) -> H:
        """:func:`serve` ``open_service()`` at ``address`` with the caller's ``options``."""
        _checked(options)
        max_workers = options.get("max_workers", self.workers)
        return serve(
            self.handle,
            parse_address(address, self.what),
            open_service,
            self.register,
            name=self.name,
            close=operator.methodcaller("close") if self.streams else self.close,
            relay_token=options.get("relay_token"),
            interceptors=options.get("interceptors", ()),
            max_workers=max_workers,
            max_concurrent_rpcs=max_workers if self.streams else None,
            max_message_bytes=options.get("max_message_bytes", MAX_MESSAGE_BYTES),
            unix_form="grpc" if self.streams else "path",
        )


async def serve_async(
    address: Address,
    open_service: Callable[[], S],
    register: Callable[[S, grpc.aio.Server], None],
    *,
    close: Callable[[S], None] | None = None,
    relay_token: str | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    unix_form: Literal["path", "grpc"] = "path",
) -> AsyncLocalServer[S]:
    """Like :func:`serve`, on a ``grpc.aio`` server in the running event loop."""
    options = server_options(max_message_bytes)
    chain: list[grpc.aio.ServerInterceptor] = (
        [AsyncRelayTokenInterceptor(relay_token)] if relay_token is not None else []
    )
    service = open_service()
    server = grpc.aio.server(interceptors=[*chain, *interceptors], options=options)
    closer = None if close is None else functools.partial(close, service)
    try:
        register(service, server)
        port = _listen(server, address)
        await server.start()
    except BaseException:
        await server.stop(None)
        if closer is not None:
            closer()
        raise
    target = address.target(port, unix_form=unix_form)
    return AsyncLocalServer(server, service, target, address.socket_path, close=closer)
