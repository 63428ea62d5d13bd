"""How the host-service clients find the host and talk to it: shared by Cache, IndexedDB, S3.

Discovery. A client built with a binding name reads two environment variables: the target,
``GESTALT_<SERVICE>_SOCKET[_<SUFFIX>]``, and an optional relay token, the same name plus
``_TOKEN``. The suffix is the host's normalisation of the name: trimmed, ASCII letters
upper-cased, ASCII digits kept, every other code point (punctuation, spaces, any non-ASCII
character, letters included) one ``_``. A missing or empty target variable raises
:class:`~.errors.HostServiceConfigError` (a ``RuntimeError``) ``"<VAR> is not set"``.

Targets. :func:`parse_target` is the one parser for all clients. It accepts a socket path
(used verbatim), ``unix://<path>``, ``unix:<path>``, ``unix-abstract:<name>``,
``tcp://host:port`` and ``tls://host:port``; anything else fails with
:class:`~.errors.InvalidTargetError` (a ``ValueError`` and a ``RuntimeError``).

Channels. Every channel disables HTTP proxies (the host sets ``HTTP(S)_PROXY`` for egress
control; host-service traffic must not go through it) and allows 64 MiB messages both ways.
There is one channel per target per process, created when the first client for that target
is built (connecting only at the first call) and shared by every client for the target, sync
clients on one side and ``grpc.aio`` clients per event loop on the other (an aio channel
belongs to the loop it was created on). A client's ``close()`` gives up its share; the
channel closes when the last share is given up. A child process after ``fork`` starts with
empty pools.

The relay token travels as per-call metadata ``x-gestalt-host-service-relay-token``, a
precomputed tuple handed to each call: cheaper per call than a client interceptor, and it
lets bindings with different tokens share one connection to the same relay. No ``repr()``
shows it. A token bound to a plaintext ``tcp://`` target that is not a loopback address is
allowed (the host's contract permits it) but logs one warning naming the token variable.

Choices where the reference (gestalt-sdk 0.0.1a18) behaves differently, each deliberate:

* Q1: IndexedDB names follow the host rule too (the reference upper-cases non-ASCII letters,
  so ``"café"`` looked for ``..._CAFÉ`` while the host sets ``..._CAF_``).
* Q8: receive and send limits are 64 MiB instead of grpc's 4 MiB receive default, so large
  values, records and batches can be read back. (The Go host still receives at most 4 MiB
  per message; that limit is the host's.)
* Q14: one parser instead of three copies; schemes are matched case-insensitively as URI
  schemes are (``TCP://h:1`` works); gRPC's own ``unix:/path``, ``unix:rel`` and
  ``unix-abstract:name`` forms are understood instead of being taken as a file literally
  named ``unix:/path``.
* Q15: the token is stripped for every client (the reference Cache sent it unstripped; the
  host trims it anyway); a whitespace-only token means no token. A token that cannot travel
  in a gRPC header is refused when the client is built, naming the variable.
* Q24: clients share channels instead of opening one connection each, so building a client
  per request costs no new connection.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypedDict, TypeVar, cast

import grpc
import grpc.aio

from gestalt._clients.errors import HostServiceConfigError, InvalidTargetError
from gestalt.gen.support import ErrorMapper, Metadata

__all__ = [
    "AGENT_HOST",
    "AGENT_MANAGER",
    "AUTHORIZATION",
    "CACHE",
    "CHANNEL_OPTIONS",
    "ENV_AGENT_HOST_SOCKET",
    "ENV_AGENT_HOST_SOCKET_TOKEN",
    "ENV_AGENT_MANAGER_SOCKET",
    "ENV_AGENT_MANAGER_SOCKET_TOKEN",
    "ENV_AUTHORIZATION_SOCKET",
    "ENV_AUTHORIZATION_SOCKET_TOKEN",
    "ENV_CACHE_SOCKET",
    "ENV_CACHE_SOCKET_TOKEN",
    "ENV_INDEXEDDB_SOCKET",
    "ENV_INDEXEDDB_SOCKET_TOKEN",
    "ENV_PLUGIN_INVOKER_SOCKET",
    "ENV_PLUGIN_INVOKER_SOCKET_TOKEN",
    "ENV_RUNTIME_LOG_SOCKET",
    "ENV_RUNTIME_LOG_SOCKET_TOKEN",
    "ENV_S3_SOCKET",
    "ENV_S3_SOCKET_TOKEN",
    "ENV_WORKFLOW_HOST_SOCKET",
    "ENV_WORKFLOW_HOST_SOCKET_TOKEN",
    "ENV_WORKFLOW_MANAGER_SOCKET",
    "ENV_WORKFLOW_MANAGER_SOCKET_TOKEN",
    "INDEXEDDB",
    "MAX_MESSAGE_BYTES",
    "PLUGIN_INVOKER",
    "RELAY_TOKEN_HEADER",
    "RUNTIME_LOG",
    "S3",
    "WORKFLOW_HOST",
    "WORKFLOW_MANAGER",
    "AioConnection",
    "CallOptions",
    "Endpoint",
    "HostService",
    "StubFactory",
    "SyncConnection",
    "Target",
    "binding_suffix",
    "cache_socket_env",
    "cache_socket_token_env",
    "check_timeout",
    "clean_relay_token",
    "indexeddb_socket_env",
    "indexeddb_socket_token_env",
    "parse_target",
    "s3_socket_env",
    "s3_socket_token_env",
]

#: Metadata key carrying the relay token on every call.
RELAY_TOKEN_HEADER = "x-gestalt-host-service-relay-token"

#: Largest message a client sends or accepts.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

#: Options of every host-service channel.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.enable_http_proxy", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

ENV_CACHE_SOCKET = "GESTALT_CACHE_SOCKET"
ENV_CACHE_SOCKET_TOKEN = "GESTALT_CACHE_SOCKET_TOKEN"
ENV_INDEXEDDB_SOCKET = "GESTALT_INDEXEDDB_SOCKET"
ENV_INDEXEDDB_SOCKET_TOKEN = "GESTALT_INDEXEDDB_SOCKET_TOKEN"
ENV_S3_SOCKET = "GESTALT_S3_SOCKET"
ENV_S3_SOCKET_TOKEN = "GESTALT_S3_SOCKET_TOKEN"
ENV_PLUGIN_INVOKER_SOCKET = "GESTALT_PLUGIN_INVOKER_SOCKET"
ENV_PLUGIN_INVOKER_SOCKET_TOKEN = "GESTALT_PLUGIN_INVOKER_SOCKET_TOKEN"
ENV_AUTHORIZATION_SOCKET = "GESTALT_AUTHORIZATION_SOCKET"
ENV_AUTHORIZATION_SOCKET_TOKEN = "GESTALT_AUTHORIZATION_SOCKET_TOKEN"
ENV_RUNTIME_LOG_SOCKET = "GESTALT_RUNTIME_LOG_SOCKET"
ENV_RUNTIME_LOG_SOCKET_TOKEN = "GESTALT_RUNTIME_LOG_SOCKET_TOKEN"
ENV_AGENT_HOST_SOCKET = "GESTALT_AGENT_HOST_SOCKET"
ENV_AGENT_HOST_SOCKET_TOKEN = "GESTALT_AGENT_HOST_SOCKET_TOKEN"
ENV_AGENT_MANAGER_SOCKET = "GESTALT_AGENT_MANAGER_SOCKET"
ENV_AGENT_MANAGER_SOCKET_TOKEN = "GESTALT_AGENT_MANAGER_SOCKET_TOKEN"
ENV_WORKFLOW_HOST_SOCKET = "GESTALT_WORKFLOW_HOST_SOCKET"
ENV_WORKFLOW_HOST_SOCKET_TOKEN = "GESTALT_WORKFLOW_HOST_SOCKET_TOKEN"
ENV_WORKFLOW_MANAGER_SOCKET = "GESTALT_WORKFLOW_MANAGER_SOCKET"
ENV_WORKFLOW_MANAGER_SOCKET_TOKEN = "GESTALT_WORKFLOW_MANAGER_SOCKET_TOKEN"

logger = logging.getLogger("gestalt.transport")


# -- discovery -----------------------------------------------------------------------------


def _suffix_char(char: str) -> str:
    if "a" <= char <= "z":
        return char.upper()
    if "A" <= char <= "Z" or "0" <= char <= "9":
        return char
    return "_"


def binding_suffix(name: str | None) -> str:
    """The variable-name suffix the host derives from a binding name (``""`` for none).

    ``None`` or a blank name gives no suffix; otherwise ``_`` plus the trimmed name with ASCII
    letters upper-cased, ASCII digits kept and every other code point replaced by ``_``.
    """
    if name is None:
        return ""
    if not isinstance(name, str):
        raise TypeError(f"binding name must be a str or None, not {type(name).__name__}")
    trimmed = name.strip()
    if not trimmed:
        return ""
    return "_" + "".join(map(_suffix_char, trimmed))


class HostService(NamedTuple):
    """One kind of host service: the word used in messages and its base variable name."""

    label: str
    env_base: str

    def socket_env(self, name: str | None = None) -> str:
        """Return the environment variable naming the socket of the service's binding ``name``.

        ``None`` or a blank name is the default binding (the base variable alone).
        """
        return self.env_base + binding_suffix(name)

    def token_env(self, name: str | None = None) -> str:
        """Return the environment variable holding the relay token of binding ``name``."""
        return self.socket_env(name) + "_TOKEN"

    def endpoint(
        self, name: str | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Endpoint:
        """Read binding ``name`` from the environment (``os.environ`` unless given).

        Raises :class:`HostServiceConfigError` when the target variable is missing or empty
        and :class:`InvalidTargetError` when its value cannot be parsed.
        """
        env = os.environ if environ is None else environ
        var = self.socket_env(name)
        raw = env.get(var, "")
        if not raw:
            raise HostServiceConfigError(f"{var} is not set")
        target = parse_target(raw, self.label)
        token_var = var + "_TOKEN"
        try:
            token = clean_relay_token(env.get(token_var, ""))
        except ValueError:
            raise HostServiceConfigError(
                f"{token_var} holds characters a gRPC header cannot carry "
                "(only printable ASCII is allowed)"
            ) from None
        if token is not None and target.scheme == "tcp" and not _loopback(target.address):
            _warn_plaintext(token_var, target)
        return Endpoint(self, var, target, token)


_plaintext_warned: set[tuple[str, Target]] = set()
_plaintext_lock = threading.Lock()


def _loopback(address: str) -> bool:
    """Whether a ``host:port`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    import ipaddress

    host = (address.rpartition(":")[0] if ":" in address else address).strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_plaintext(token_var: str, target: Target) -> None:
    # Allowed by the contract, but whoever sits on the network path can read the token: say
    # so once per variable and target, naming the variable and never the token.
    with _plaintext_lock:
        if (token_var, target) in _plaintext_warned:
            return
        _plaintext_warned.add((token_var, target))
    logger.warning(
        "%s: the relay token travels unencrypted over tcp:// to %s, which is not a loopback "
        "address; anyone on the network path can read it (use tls:// for a remote host)",
        token_var,
        target.address,
    )


def clean_relay_token(token: str) -> str | None:
    """A relay token as it travels in ``x-gestalt-host-service-relay-token``: trimmed.

    None for a blank token (no token); ``ValueError`` when a gRPC header cannot carry it
    (only printable ASCII can). The clients read it from the environment, the embedded
    servers take it to check calls against.
    """
    stripped = token.strip()
    if stripped and not all(" " <= char <= "~" for char in stripped):
        raise ValueError("the relay token must be printable ASCII (it travels in a gRPC header)")
    return stripped or None


#: The Cache service (``GESTALT_CACHE_SOCKET``).
CACHE = HostService("cache", ENV_CACHE_SOCKET)
#: The IndexedDB service (``GESTALT_INDEXEDDB_SOCKET``).
INDEXEDDB = HostService("IndexedDB", ENV_INDEXEDDB_SOCKET)
#: The S3 and S3ObjectAccess services (``GESTALT_S3_SOCKET``).
S3 = HostService("s3", ENV_S3_SOCKET)
#: The PluginInvoker service (``GESTALT_PLUGIN_INVOKER_SOCKET``), one binding, no name.
PLUGIN_INVOKER = HostService("plugin invoker", ENV_PLUGIN_INVOKER_SOCKET)
#: The AuthorizationProvider service offered to plugins (``GESTALT_AUTHORIZATION_SOCKET``).
AUTHORIZATION = HostService("authorization", ENV_AUTHORIZATION_SOCKET)
#: The plugin runtime log host (``GESTALT_RUNTIME_LOG_SOCKET``), called by runtime providers.
RUNTIME_LOG = HostService("runtime log", ENV_RUNTIME_LOG_SOCKET)
#: The AgentHost service an agent provider calls during a turn.
AGENT_HOST = HostService("agent host", ENV_AGENT_HOST_SOCKET)
#: The AgentManagerHost service (sessions and turns through the host).
AGENT_MANAGER = HostService("agent manager", ENV_AGENT_MANAGER_SOCKET)
#: The WorkflowHost service a workflow provider calls to execute run targets.
WORKFLOW_HOST = HostService("workflow host", ENV_WORKFLOW_HOST_SOCKET)
#: The WorkflowManagerHost service (runs, schedules, triggers and events through the host).
WORKFLOW_MANAGER = HostService("workflow manager", ENV_WORKFLOW_MANAGER_SOCKET)


#: Return the environment variable name for a cache socket binding.
cache_socket_env = CACHE.socket_env
#: Return the environment variable name for a cache binding's relay token.
cache_socket_token_env = CACHE.token_env
#: Return the environment variable name for an IndexedDB socket binding.
indexeddb_socket_env = INDEXEDDB.socket_env
#: Return the environment variable name for an IndexedDB binding's relay token.
indexeddb_socket_token_env = INDEXEDDB.token_env
#: Return the environment variable name for an S3 socket binding.
s3_socket_env = S3.socket_env
#: Return the environment variable name for an S3 binding's relay token.
s3_socket_token_env = S3.token_env


# -- targets -------------------------------------------------------------------------------

Scheme = Literal["unix", "unix-abstract", "tcp", "tls"]


class Target(NamedTuple):
    """Where a host service listens: a scheme and an address (socket path or host:port)."""

    scheme: Scheme
    address: str

    @property
    def grpc_target(self) -> str:
        """The address as grpc's channel constructors take it."""
        if self.scheme == "unix":
            return f"unix:{self.address}"
        if self.scheme == "unix-abstract":
            return f"unix-abstract:{self.address}"
        return self.address

    @property
    def secure(self) -> bool:
        """Whether the channel uses TLS (with the default root certificates)."""
        return self.scheme == "tls"


def parse_target(value: str, service: str = "host service") -> Target:
    """Parse a target variable's value; ``service`` names the client in error messages.

    Surrounding whitespace is ignored. Without ``://`` the value is a unix socket path
    (relative paths allowed), except for grpc's ``unix:<path>`` and ``unix-abstract:<name>``
    forms. With ``://`` the scheme (any case) must be ``unix``, ``tcp`` or ``tls``.
    """
    if not isinstance(value, str):
        raise TypeError(f"target must be a str, not {type(value).__name__}")
    raw = value.strip()
    if not raw:
        raise InvalidTargetError(f"{service} transport target is required")
    scheme, sep, rest = raw.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme == "unix":
            if not rest:
                raise InvalidTargetError(f"{service} unix target {raw!r} is missing a socket path")
            return Target("unix", rest)
        if scheme in ("tcp", "tls"):
            address = rest.strip()
            if not address:
                raise InvalidTargetError(f"{service} {scheme} target {raw!r} is missing host:port")
            return Target("tcp" if scheme == "tcp" else "tls", address)
        raise InvalidTargetError(f"unsupported {service} target scheme {scheme!r}")
    for prefix, kind in (("unix-abstract:", "unix-abstract"), ("unix:", "unix")):
        if raw[: len(prefix)].lower() == prefix:
            address = raw[len(prefix) :]
            if not address:
                raise InvalidTargetError(
                    f"{service} {kind} target {raw!r} is missing a socket path"
                )
            return Target(cast(Scheme, kind), address)
    return Target("unix", raw)


class _TokenMetadata(tuple[tuple[str, str], ...]):
    """Per-call metadata holding a relay token; its ``repr()`` leaves the token out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"(({RELAY_TOKEN_HEADER!r}, '<redacted>'),)"


class Endpoint(NamedTuple):
    """A resolved binding: which variable it came from, the target and the relay token.

    ``repr()`` says whether there is a token, never what it is.
    """

    service: HostService
    env: str
    target: Target
    token: str | None = None

    @property
    def metadata(self) -> Metadata | None:
        """Per-call metadata carrying the token, or None without a token."""
        if self.token is None:
            return None
        return _TokenMetadata(((RELAY_TOKEN_HEADER, self.token),))

    def __repr__(self) -> str:
        token = "None" if self.token is None else "'<redacted>'"
        return (
            f"Endpoint(service={self.service!r}, env={self.env!r}, target={self.target!r}, "
            f"token={token})"
        )


def check_timeout(timeout: float | None) -> float | None:
    """Validate a ``timeout`` argument: None (no deadline) or a positive number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    if not timeout > 0 or math.isinf(timeout):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    return float(timeout)


# -- shared channels -----------------------------------------------------------------------

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)


class StubFactory(Protocol[C_co]):
    """A generated client class: built from a channel and an error mapper."""

    def __call__(self, channel: Any, /, *, error_mapper: ErrorMapper) -> C_co: ...


class _Entry:
    """A pooled channel, the number of clients sharing it and the stubs built on it."""

    __slots__ = ("channel", "refs", "stubs")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.refs = 0
        self.stubs: dict[tuple[object, object], object] = {}


def _credentials() -> grpc.ChannelCredentials:
    # Default roots; grpc honours GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
    return grpc.ssl_channel_credentials()


def _sync_channel(target: Target) -> grpc.Channel:
    from gestalt.telemetry import client_interceptors

    if target.secure:
        channel = grpc.secure_channel(target.grpc_target, _credentials(), options=CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(target.grpc_target, options=CHANNEL_OPTIONS)
    # With OpenTelemetry installed, calls carry the current trace context.
    interceptors = client_interceptors(aio=False)
    return grpc.intercept_channel(channel, *interceptors) if interceptors else channel


def _aio_channel(target: Target) -> grpc.aio.Channel:
    from gestalt.telemetry import client_interceptors

    interceptors = client_interceptors(aio=True) or None
    if target.secure:
        return grpc.aio.secure_channel(
            target.grpc_target, _credentials(), options=CHANNEL_OPTIONS, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(
        target.grpc_target, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


def _stub(lock: threading.Lock, entry: _Entry, factory: StubFactory[C], mapper: ErrorMapper) -> C:
    key = (factory, mapper)
    with lock:
        stub = entry.stubs.get(key)
        if stub is None:
            stub = entry.stubs[key] = factory(entry.channel, error_mapper=mapper)
    return cast(C, stub)


class _SyncPool:
    """Process-wide sync channels, one per target, reference counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[Target, _Entry] = {}

    def acquire(self, target: Target) -> _Entry:
        with self.lock:
            entry = self.entries.get(target)
            if entry is None:
                entry = self.entries[target] = _Entry(_sync_channel(target))
            entry.refs += 1
            return entry

    def release(self, target: Target, entry: _Entry) -> None:
        with self.lock:
            entry.refs -= 1
            last = entry.refs <= 0 and self.entries.get(target) is entry
            if last:
                del self.entries[target]
        if last:
            entry.channel.close()


class _AioPool:
    """Process-wide ``grpc.aio`` channels, one per target per event loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Target, _Entry]]
        self.loops = weakref.WeakKeyDictionary()

    def acquire(self, target: Target, loop: asyncio.AbstractEventLoop) -> _Entry:
        """Share of the channel for ``target`` on ``loop``; call from inside ``loop``."""
        with self.lock:
            entries = self.loops.get(loop)
            if entries is None:
                entries = self.loops[loop] = {}
            entry = entries.get(target)
            if entry is None:
                entry = entries[target] = _Entry(_aio_channel(target))
            entry.refs += 1
            return entry

    def release(
        self, target: Target, loop: asyncio.AbstractEventLoop, entry: _Entry
    ) -> grpc.aio.Channel | None:
        """Give up a share; returns the channel when it was the last one (to be closed)."""
        with self.lock:
            entry.refs -= 1
            entries = self.loops.get(loop)
            if entry.refs > 0 or entries is None or entries.get(target) is not entry:
                return None
            del entries[target]
            if not entries:
                del self.loops[loop]
        return cast(grpc.aio.Channel, entry.channel)


_SYNC_POOL = _SyncPool()
_AIO_POOL = _AioPool()


def _forget_pools() -> None:
    # grpc channels do not survive fork; the child builds its own. Emptying the old pools
    # (without their locks, which a vanished thread may hold) means clients inherited from
    # the parent never close the parent's channels from the child.
    global _SYNC_POOL, _AIO_POOL
    _SYNC_POOL.entries.clear()
    _AIO_POOL.loops.clear()
    _SYNC_POOL = _SyncPool()
    _AIO_POOL = _AioPool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _closed_error(endpoint: Endpoint) -> ValueError:
    return ValueError(f"{endpoint.service.label} client is closed")


class CallOptions(TypedDict):
    """The keyword arguments every unary call of a client takes."""

    timeout: float | None
    metadata: Metadata | None


class _Share(Generic[C]):
    """What sync and asyncio connections share: the endpoint, its metadata, the timeout,
    the stub factory and error mapper; ``_open`` runs last in the constructor."""

    __slots__ = ("_factory", "_lock", "_mapper", "endpoint", "metadata", "timeout")

    def __init__(
        self,
        endpoint: Endpoint,
        factory: StubFactory[C],
        error_mapper: ErrorMapper,
        timeout: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.metadata = endpoint.metadata
        #: The client's default deadline in seconds (None: none).
        self.timeout = check_timeout(timeout)
        self._factory = factory
        self._mapper = error_mapper
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        raise NotImplementedError

    def deadline(self, timeout: float | None) -> float | None:
        """A call's deadline: its own ``timeout`` when given, else the client's default."""
        return self.timeout if timeout is None else check_timeout(timeout)

    def options(self, timeout: float | None) -> CallOptions:
        """The keyword arguments of one call: its deadline and the relay metadata."""
        return {"timeout": self.deadline(timeout), "metadata": self.metadata}


class SyncConnection(_Share[C]):
    """A sync client's share of the pooled channel for its endpoint, and its stub.

    ``stub`` is the generated client (built once per channel and error mapper, shared by
    every connection to the same target); ``metadata`` goes with every call. After
    :meth:`close`, ``stub`` raises ``ValueError``.
    """

    __slots__ = ("_entry", "_stub")

    def _open(self) -> None:
        pool = _SYNC_POOL
        entry = pool.acquire(self.endpoint.target)
        self._entry: tuple[_SyncPool, _Entry] | None = (pool, entry)
        self._stub: C | None = _stub(pool.lock, entry, self._factory, self._mapper)

    @property
    def stub(self) -> C:
        """The generated client to call; ``ValueError`` once closed."""
        stub = self._stub
        if stub is None:
            raise _closed_error(self.endpoint)
        return stub

    @property
    def channel(self) -> grpc.Channel:
        """The shared channel; ``ValueError`` once closed."""
        held = self._entry
        if held is None:
            raise _closed_error(self.endpoint)
        return cast(grpc.Channel, held[1].channel)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._entry is None

    def close(self) -> None:
        """Give up this share of the channel (closing it if it was the last); idempotent."""
        with self._lock:
            held, self._entry, self._stub = self._entry, None, None
        if held is not None:
            pool, entry = held
            pool.release(self.endpoint.target, entry)


class AioConnection(_Share[C]):
    """An asyncio client's shares of the pooled ``grpc.aio`` channels for its endpoint.

    :meth:`stub` returns the generated async client for the running event loop, taking a
    share of that loop's channel on first use there, so one client object keeps working when
    used from a new loop (``asyncio.run`` twice, a test per loop). :meth:`close` gives up every
    share; a channel whose loop is gone cannot be closed and is dropped.
    """

    __slots__ = ("_bound", "_closed", "_leases")

    def _open(self) -> None:
        self._leases: dict[asyncio.AbstractEventLoop, tuple[_AioPool, _Entry]] = {}
        # (loop, stub) of the last loop used, read in one step by the fast path of stub().
        self._bound: tuple[asyncio.AbstractEventLoop, C] | None = None
        self._closed = False

    def stub(self) -> C:
        """The generated async client for the running loop; ``ValueError`` once closed."""
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is not None and bound[0] is loop:
            return bound[1]
        return self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> C:
        with self._lock:
            if self._closed:
                raise _closed_error(self.endpoint)
            held = self._leases.get(loop)
            if held is None:
                for old in [old for old in self._leases if old.is_closed()]:
                    pool, entry = self._leases.pop(old)
                    pool.release(self.endpoint.target, old, entry)  # its loop cannot close it
                pool = _AIO_POOL
                held = self._leases[loop] = (pool, pool.acquire(self.endpoint.target, loop))
            pool, entry = held
            stub = _stub(pool.lock, entry, self._factory, self._mapper)
            self._bound = (loop, stub)
        return stub

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def close(self) -> None:
        """Give up every share (closing channels nobody else uses); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            leases, self._leases = self._leases, {}
            self._bound = None
        current = asyncio.get_running_loop()
        for loop, (pool, entry) in leases.items():
            channel = pool.release(self.endpoint.target, loop, entry)
            if channel is None:
                continue
            if loop is current:
                await channel.close()
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(channel.close(), loop)
