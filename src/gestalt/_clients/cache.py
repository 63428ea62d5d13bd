"""Cache client: the host's key/value cache with byte values and optional expiry.

``Cache(name=None)`` finds its host through ``GESTALT_CACHE_SOCKET[_<NAME>]`` (plus the
optional ``_TOKEN`` variable) and calls ``gestalt.provider.v1.Cache`` through the generated
:class:`~gestalt.gen.v1.cache_clients.CacheClient` on plain pb2 messages. ``AsyncCache`` has
the same methods as coroutines over ``grpc.aio``. Transport, discovery and the channel pool
are described in :mod:`.transport`; the exceptions in :mod:`.errors`.

Semantics (those of the host): a missing or expired key is never an error (``get`` returns
None, ``delete``/``touch`` return False); ``get_many`` returns only the keys found;
``delete_many`` counts distinct keys that existed; ``set_many`` is one call with one TTL for
every entry. A TTL of None or zero means no expiry; ``touch(key, timedelta(0))`` clears the
expiry of an existing entry. TTLs are sent as ``google.protobuf.Duration`` with microsecond
precision.

Choices where the reference (gestalt-sdk 0.0.1a18) behaves differently, each deliberate and
each checked before any call is made:

* Q3 [compat]: a value must be bytes-like (``bytes``, ``bytearray``, ``memoryview`` or any
  other buffer). The reference ran ``bytes(value)``, so ``set(key, 3)`` stored three NUL
  bytes; here an ``int``, a ``str`` or a list is a :class:`TypeError`.
* Q16: ``keys`` must be an iterable of ``str`` and not a single ``str`` (the reference split
  ``"abc"`` into three keys); keys must be ``str`` everywhere (:class:`TypeError`).
* Negative TTL [compat]: the reference silently dropped it (no expiry); here it is a
  :class:`ValueError`, as the host itself would answer ``INVALID_ARGUMENT``. A TTL that is
  not a ``timedelta`` is a :class:`TypeError`; one beyond the Duration range (10,000 years)
  a :class:`ValueError`.
* Q4 [compat]: failures raise :class:`~.errors.HostServiceError` (``.code``,
  ``.message``, the ``grpc.RpcError`` as ``__cause__``) instead of the raw ``grpc.RpcError``;
  a ``timeout`` that passes raises :class:`~.errors.HostServiceTimeoutError`.
* Q18: every method takes an optional ``timeout`` in seconds; the constructor's ``timeout``
  is the default for all calls (None: wait as long as it takes, as the reference did).
* Q8: values up to 64 MiB can be read back (the reference's limit was grpc's 4 MiB).
* Use after ``close()`` raises ``ValueError("cache client is closed")`` (the reference's
  ``ValueError`` came from grpc with its own wording).
* ``set_many`` also takes a mapping of key to value, besides objects with ``.key`` and
  ``.value`` such as :class:`~.cache_types.CacheEntry` (in its own module, which a client
  never needs to import).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Protocol

from google.protobuf import duration_pb2

from gestalt._clients.checks import check_str
from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.errors import CACHE_ERRORS
from gestalt._clients.transport import CACHE, AioConnection, SyncConnection, check_timeout
from gestalt.gen.v1 import cache_pb2
from gestalt.gen.v1.cache_clients import AsyncCacheClient, CacheClient

__all__ = ["AsyncCache", "Cache"]


class _EntryLike(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def value(self) -> bytes | bytearray | memoryview: ...


# -- argument checks and request building (shared by Cache and AsyncCache) ---------------

_NO_EXPIRY = dt.timedelta(0)
# google.protobuf.Duration covers +-10,000 years.
_MAX_TTL = dt.timedelta(seconds=315_576_000_000)


def _key(key: object) -> str:
    return check_str(key, "cache key")


def _keys(keys: object) -> list[str]:
    if isinstance(keys, str | bytes | bytearray | memoryview):
        raise TypeError(
            f"keys must be a collection of str keys, not a single {type(keys).__name__}; "
            "wrap one key in a list"
        )
    if not isinstance(keys, Iterable):
        raise TypeError(f"keys must be an iterable of str, not {type(keys).__name__}")
    return [_key(key) for key in keys]


def _value(value: object) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        raise TypeError("cache values are bytes, not str; encode the text first")
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"cache value must be bytes-like (bytes, bytearray, memoryview), "
            f"not {type(value).__name__}"
        ) from None
    with view:
        return view.tobytes()


def _ttl(ttl: object) -> duration_pb2.Duration | None:
    if ttl is None:
        return None
    if not isinstance(ttl, dt.timedelta):
        raise TypeError(f"ttl must be a datetime.timedelta or None, not {type(ttl).__name__}")
    if ttl <= _NO_EXPIRY:
        if ttl < _NO_EXPIRY:
            raise ValueError(f"ttl must not be negative, got {ttl!r}")
        return None
    if ttl > _MAX_TTL:
        raise ValueError(f"ttl must be at most 10,000 years, got {ttl!r}")
    return duration_pb2.Duration(
        seconds=ttl.days * 86400 + ttl.seconds, nanos=ttl.microseconds * 1000
    )


def _set_entries(entries: object) -> list[cache_pb2.CacheSetEntry]:
    if isinstance(entries, Mapping):
        return [
            cache_pb2.CacheSetEntry(key=_key(key), value=_value(value))
            for key, value in entries.items()
        ]
    if isinstance(entries, str | bytes | bytearray | memoryview) or not isinstance(
        entries, Iterable
    ):
        raise TypeError(
            "entries must be an iterable of CacheEntry (or a mapping of key to value), "
            f"not {type(entries).__name__}"
        )
    result = []
    for entry in entries:
        try:
            key, value = entry.key, entry.value
        except AttributeError:
            raise TypeError(
                "set_many entries need .key and .value attributes (use CacheEntry), "
                f"got {type(entry).__name__}"
            ) from None
        result.append(cache_pb2.CacheSetEntry(key=_key(key), value=_value(value)))
    return result


def _get_request(key: str) -> cache_pb2.CacheGetRequest:
    return cache_pb2.CacheGetRequest(key=_key(key))


def _get_many_request(keys: object) -> cache_pb2.CacheGetManyRequest:
    return cache_pb2.CacheGetManyRequest(keys=_keys(keys))


def _set_request(key: str, value: object, ttl: object) -> cache_pb2.CacheSetRequest:
    return cache_pb2.CacheSetRequest(key=_key(key), value=_value(value), ttl=_ttl(ttl))


def _set_many_request(entries: object, ttl: object) -> cache_pb2.CacheSetManyRequest:
    # The TTL is checked first: a bad one must not leave a half-consumed iterator behind.
    duration = _ttl(ttl)
    return cache_pb2.CacheSetManyRequest(entries=_set_entries(entries), ttl=duration)


def _delete_request(key: str) -> cache_pb2.CacheDeleteRequest:
    return cache_pb2.CacheDeleteRequest(key=_key(key))


def _delete_many_request(keys: object) -> cache_pb2.CacheDeleteManyRequest:
    return cache_pb2.CacheDeleteManyRequest(keys=_keys(keys))


def _touch_request(key: str, ttl: object) -> cache_pb2.CacheTouchRequest:
    return cache_pb2.CacheTouchRequest(key=_key(key), ttl=_ttl(ttl))


def _got(response: cache_pb2.CacheGetResponse) -> bytes | None:
    return response.value if response.found else None


def _found(response: cache_pb2.CacheGetManyResponse) -> dict[str, bytes]:
    return {entry.key: entry.value for entry in response.entries if entry.found}


# -- clients: thin shells over the functions above -----------------------------------------

#: What ``set_many`` takes: entries with ``.key`` and ``.value``, or a mapping.
_Entries = Iterable[_EntryLike] | Mapping[str, bytes | bytearray | memoryview]
_Value = bytes | bytearray | memoryview
_TTL = dt.timedelta | None


class Cache(Closing):
    """Client for a host-provided Gestalt cache provider.

    ``name`` selects the binding (``GESTALT_CACHE_SOCKET_<NAME>``); ``timeout`` is the
    default deadline in seconds for every call (None: no deadline). Raises ``RuntimeError``
    when the binding's variable is not set. Use as a context manager or call :meth:`close`.
    """

    __slots__ = ("_conn",)

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        self._conn = SyncConnection(CACHE.endpoint(name), CacheClient, CACHE_ERRORS, default)

    def close(self) -> None:
        """Close the client (the shared channel closes with its last client); idempotent."""
        self._conn.close()

    def get(self, key: str, *, timeout: float | None = None) -> bytes | None:
        """Return the cached value for ``key`` if it exists, else None."""
        return _got(self._conn.stub.get(_get_request(key), **self._conn.options(timeout)))

    def get_many(self, keys: Iterable[str], *, timeout: float | None = None) -> dict[str, bytes]:
        """Return the subset of ``keys`` that currently exist, as a dict of key to value."""
        request = _get_many_request(keys)
        return _found(self._conn.stub.get_many(request, **self._conn.options(timeout)))

    def set(
        self, key: str, value: _Value, ttl: _TTL = None, *, timeout: float | None = None
    ) -> None:
        """Store ``value`` for ``key`` with an optional TTL (None or zero: no expiry)."""
        self._conn.stub.set(_set_request(key, value, ttl), **self._conn.options(timeout))

    def set_many(
        self, entries: _Entries, ttl: _TTL = None, *, timeout: float | None = None
    ) -> None:
        """Store multiple cache entries with one RPC, all with the same optional TTL."""
        request = _set_many_request(entries, ttl)
        self._conn.stub.set_many(request, **self._conn.options(timeout))

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Delete ``key`` and return whether an entry existed."""
        request = _delete_request(key)
        return self._conn.stub.delete(request, **self._conn.options(timeout)).deleted

    def delete_many(self, keys: Iterable[str], *, timeout: float | None = None) -> int:
        """Delete multiple keys and return the number of distinct keys that existed."""
        request = _delete_many_request(keys)
        return int(self._conn.stub.delete_many(request, **self._conn.options(timeout)).deleted)

    def touch(self, key: str, ttl: _TTL, *, timeout: float | None = None) -> bool:
        """Refresh the TTL for ``key`` if the entry exists; zero or None clears its expiry."""
        request = _touch_request(key, ttl)
        return self._conn.stub.touch(request, **self._conn.options(timeout)).touched


class AsyncCache(AsyncClosing):
    """Asyncio client for a host-provided Gestalt cache provider.

    The methods of :class:`Cache` as coroutines, over ``grpc.aio``. The object may be built
    outside a running loop and used from any loop (each loop gets its own shared channel);
    close it with ``await cache.close()`` or ``async with``.
    """

    __slots__ = ("_conn",)

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        self._conn = AioConnection(CACHE.endpoint(name), AsyncCacheClient, CACHE_ERRORS, default)

    async def close(self) -> None:
        """Close the client (a shared channel closes with its last client); idempotent."""
        await self._conn.close()

    async def get(self, key: str, *, timeout: float | None = None) -> bytes | None:
        """Return the cached value for ``key`` if it exists, else None."""
        return _got(await self._conn.stub().get(_get_request(key), **self._conn.options(timeout)))

    async def get_many(
        self, keys: Iterable[str], *, timeout: float | None = None
    ) -> dict[str, bytes]:
        """Return the subset of ``keys`` that currently exist, as a dict of key to value."""
        request = _get_many_request(keys)
        return _found(await self._conn.stub().get_many(request, **self._conn.options(timeout)))

    async def set(
        self, key: str, value: _Value, ttl: _TTL = None, *, timeout: float | None = None
    ) -> None:
        """Store ``value`` for ``key`` with an optional TTL (None or zero: no expiry)."""
        await self._conn.stub().set(_set_request(key, value, ttl), **self._conn.options(timeout))

    async def set_many(
        self, entries: _Entries, ttl: _TTL = None, *, timeout: float | None = None
    ) -> None:
        """Store multiple cache entries with one RPC, all with the same optional TTL."""
        request = _set_many_request(entries, ttl)
        await self._conn.stub().set_many(request, **self._conn.options(timeout))

    async def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Delete ``key`` and return whether an entry existed."""
        request = _delete_request(key)
        return (await self._conn.stub().delete(request, **self._conn.options(timeout))).deleted

    async def delete_many(self, keys: Iterable[str], *, timeout: float | None = None) -> int:
        """Delete multiple keys and return the number of distinct keys that existed."""
        request = _delete_many_request(keys)
        response = await self._conn.stub().delete_many(request, **self._conn.options(timeout))
        return int(response.deleted)

    async def touch(self, key: str, ttl: _TTL, *, timeout: float | None = None) -> bool:
        """Refresh the TTL for ``key`` if the entry exists; zero or None clears its expiry."""
        request = _touch_request(key, ttl)
        return (await self._conn.stub().touch(request, **self._conn.options(timeout))).touched
