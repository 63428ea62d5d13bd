"""The exceptions the host-service clients (Cache, IndexedDB, S3) raise.

One tree for all three clients::

    RPCError                        (gestalt.gen.support: .code, .message)
    └── HostServiceError            any failed host-service call
        ├── HostServiceTimeoutError     DEADLINE_EXCEEDED; also a builtin TimeoutError
        ├── NotFoundError               IndexedDB: NOT_FOUND
        ├── AlreadyExistsError          IndexedDB: ALREADY_EXISTS
        ├── TransactionError            IndexedDB: FAILED_PRECONDITION, INVALID_ARGUMENT
        ├── S3NotFoundError             S3: NOT_FOUND
        ├── S3PreconditionFailedError   S3: FAILED_PRECONDITION
        └── S3InvalidRangeError         S3: OUT_OF_RANGE

    _ClientNotFoundError (NotFoundError, ValueError)       the client's own NOT_FOUND checks
    _ClientRangeError (S3InvalidRangeError, ValueError)    the client's own byte range checks

    HostServiceConfigError (RuntimeError)   binding variable missing or unusable
    └── InvalidTargetError (also ValueError) the target value cannot be parsed

    S3HeaderValueError (ValueError)         an S3 option bound for an HTTP header holds a
                                            control character (refused before any call)

Every status error carries the gRPC status as ``.code`` (a :class:`grpc.StatusCode`) and the
peer's text as ``.message``; the original :class:`grpc.RpcError` is chained as ``__cause__``.
The named errors keep the reference's shape: one positional argument, the message, which is
also their ``str()``. Their ``code`` defaults to the status they stand for, so code that raises
them by hand (a fake host in a test, a client-side check) gets a sensible one.

Choices where the reference (gestalt-sdk 0.0.1a18) behaves differently, each deliberate:

* Q4: the reference Cache lets every raw ``grpc.RpcError`` escape, and IndexedDB and S3 do so
  for the codes they do not name. Here every failure is a :class:`HostServiceError` with the
  code attached, so one ``except HostServiceError`` covers all three clients and the original
  error stays reachable through ``__cause__``. [compat] ``except grpc.RpcError`` no longer
  catches these.
* Q5: the reference turns ``INVALID_ARGUMENT``/``FAILED_PRECONDITION`` into
  ``TransactionError`` for unary and transaction calls but lets cursors leak the raw error.
  :data:`INDEXEDDB_ERRORS` maps a code the same way wherever it comes from.
* Q12: ``FAILED_PRECONDITION`` from minting access URLs is a configuration problem, not an
  ETag conflict; :data:`S3_ACCESS_URL_ERRORS` keeps it a plain :class:`HostServiceError` for
  the presign / access-URL calls.
* Q13: the reference re-raises unmapped S3 errors with themselves as ``__cause__``; here the
  cause is always the original ``grpc.RpcError`` and never the exception itself.
* Conditions the client detects before any call raise the type the reference names for them,
  as a subclass that is also a :class:`ValueError` (a bad argument): a mutation on an
  exhausted cursor and a store outside a transaction's scope are :class:`NotFoundError`
  (:class:`_ClientNotFoundError`), a byte range that no object can satisfy is
  :class:`S3InvalidRangeError` (:class:`_ClientRangeError`). ``except ValueError`` and
  ``except NotFoundError`` both catch them; no status reached the host, so ``code`` is the
  class default.
* Timeouts (an addition, Q18) raise :class:`HostServiceTimeoutError`, which is also a builtin
  :class:`TimeoutError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import grpc

from gestalt.gen.support import RPCError

__all__ = [
    "AUTHORIZATION_ERRORS",
    "CACHE_ERRORS",
    "INDEXEDDB_ERRORS",
    "INVOKER_ERRORS",
    "S3_ACCESS_URL_ERRORS",
    "S3_ERRORS",
    "AlreadyExistsError",
    "ErrorMap",
    "HostServiceConfigError",
    "HostServiceError",
    "HostServiceTimeoutError",
    "InvalidTargetError",
    "NotFoundError",
    "S3HeaderValueError",
    "S3InvalidRangeError",
    "S3NotFoundError",
    "S3PreconditionFailedError",
    "TransactionError",
    "status_of",
]


class HostServiceError(RPCError):
    """A call to a host service (Cache, IndexedDB, S3) failed.

    ``code`` is the gRPC status code and ``message`` the text the host sent. Catch this to
    handle every host-service failure; the subclasses name the conditions a caller usually
    wants to tell apart.
    """

    #: The status an instance gets when none is given.
    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str = "", *, code: grpc.StatusCode | None = None) -> None:
        # args stays (message,) like any exception built from a message: the reference's
        # errors look like that, and pickling rebuilds the instance from it (see __reduce__).
        Exception.__init__(self, message)
        self.code = self.default_code if code is None else code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" if self.message else self.code.name

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,), {"code": self.code})

    @classmethod
    def from_grpc(cls, error: grpc.RpcError) -> HostServiceError:
        """An instance of this class for a failed grpcio call (sync or ``grpc.aio``)."""
        code, message = status_of(error)
        return cls(message, code=code)


class _NamedError(HostServiceError):
    """A condition named by its type: ``str()`` is the message alone, as in the reference."""

    def __str__(self) -> str:
        return self.message


class HostServiceTimeoutError(HostServiceError, TimeoutError):
    """The call's deadline (the ``timeout`` argument) passed before the host answered."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(_NamedError):
    """Raised when an IndexedDB record, store, or cursor target is missing.

    The client raises it without asking the host for ``update()`` or ``delete()`` on an
    exhausted cursor and for ``object_store()`` of a store outside a transaction's scope
    (which leaves the transaction usable); those instances are also a :class:`ValueError`.
    """

    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(_NamedError):
    """Raised when an IndexedDB object already exists (duplicate key or unique index)."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class TransactionError(_NamedError):
    """An IndexedDB request or transaction was refused: readonly, finished, or invalid."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class S3NotFoundError(_NamedError):
    """Raised when the requested S3 object does not exist."""

    default_code = grpc.StatusCode.NOT_FOUND


class S3PreconditionFailedError(_NamedError):
    """Raised when conditional request headers (ETag or date conditions) fail."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class S3InvalidRangeError(_NamedError):
    """Raised when a requested byte range cannot be satisfied.

    A range no object can satisfy (a negative bound, ``end`` before ``start``, a bound past
    2**63-1) is refused by the client before any call; those instances are also a
    :class:`ValueError`.
    """

    default_code = grpc.StatusCode.OUT_OF_RANGE


class _ClientNotFoundError(NotFoundError, ValueError):
    """:class:`NotFoundError` for a condition the client caught before any call."""


class _ClientRangeError(S3InvalidRangeError, ValueError):
    """:class:`S3InvalidRangeError` for a range the client refused before any call."""


class S3HeaderValueError(ValueError):
    """An S3 option that travels as an HTTP header holds a control character.

    Content type, disposition, encoding, language, cache control, metadata keys and values,
    ETag conditions and presigned-URL headers may not contain CR, LF or any other character
    below U+0020, nor U+007F: a header cannot carry them, and CR/LF would let a value add
    headers of its own. The client raises this before any call. ``field`` names the option
    (``opts.metadata['x-note']``), ``character`` is the first offending character and
    ``position`` its index in the value.
    """

    def __init__(self, field: str, character: str, position: int) -> None:
        super().__init__(field, character, position)
        self.field = field
        self.character = character
        self.position = position

    def __str__(self) -> str:
        return f"{self.field} contains a control character ({self.character!r} at {self.position})"


class HostServiceConfigError(RuntimeError):
    """The binding's environment variable is missing, empty, or holds an unusable value."""


class InvalidTargetError(HostServiceConfigError, ValueError):
    """A transport target could not be parsed.

    A :class:`RuntimeError` as in the reference, and a :class:`ValueError` because it is one.
    """


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and message of a failed grpcio call."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    status = code() if callable(code) else None
    message = details() if callable(details) else None
    return (status if isinstance(status, grpc.StatusCode) else grpc.StatusCode.UNKNOWN), (
        message if isinstance(message, str) else str(error)
    )


class ErrorMap:
    """Maps failed calls of one host service to the exception tree.

    Callable with a :class:`grpc.RpcError`, so it serves directly as the ``error_mapper`` of a
    generated client (which chains the original error as ``__cause__``). Codes the service
    does not name become a plain :class:`HostServiceError`, except ``DEADLINE_EXCEEDED``,
    which is always a :class:`HostServiceTimeoutError`.
    """

    __slots__ = ("_by_code", "service")

    def __init__(
        self, service: str, by_code: Mapping[grpc.StatusCode, type[HostServiceError]]
    ) -> None:
        self.service = service
        self._by_code: dict[grpc.StatusCode, type[HostServiceError]] = {
            grpc.StatusCode.DEADLINE_EXCEEDED: HostServiceTimeoutError,
            **by_code,
        }

    def __call__(self, error: grpc.RpcError) -> HostServiceError:
        code, message = status_of(error)
        return self._by_code.get(code, HostServiceError)(message, code=code)

    def for_status(self, code: grpc.StatusCode | int, message: str = "") -> HostServiceError:
        """The exception for a status that arrived in-band (a ``google.rpc.Status`` frame).

        ``code`` may be a :class:`grpc.StatusCode` or its number; an unknown number counts as
        ``UNKNOWN``. ``OK`` is not an error and raises :class:`ValueError`.
        """
        status = code if isinstance(code, grpc.StatusCode) else _CODES_BY_NUMBER.get(code)
        if status is None:
            status = grpc.StatusCode.UNKNOWN
        if status is grpc.StatusCode.OK:
            raise ValueError("status OK does not describe an error")
        return self._by_code.get(status, HostServiceError)(message, code=status)

    def __repr__(self) -> str:
        return f"ErrorMap({self.service!r})"


#: Cache: no condition is named; every failure is a :class:`HostServiceError`.
CACHE_ERRORS = ErrorMap("cache", {})

#: IndexedDB: the same table for unary calls, cursors and transactions (quirk Q5).
INDEXEDDB_ERRORS = ErrorMap(
    "IndexedDB",
    {
        grpc.StatusCode.NOT_FOUND: NotFoundError,
        grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
        grpc.StatusCode.FAILED_PRECONDITION: TransactionError,
        grpc.StatusCode.INVALID_ARGUMENT: TransactionError,
    },
)

#: S3 object calls (head, read, write, list, copy, delete).
S3_ERRORS = ErrorMap(
    "s3",
    {
        grpc.StatusCode.NOT_FOUND: S3NotFoundError,
        grpc.StatusCode.FAILED_PRECONDITION: S3PreconditionFailedError,
        grpc.StatusCode.OUT_OF_RANGE: S3InvalidRangeError,
    },
)

#: S3 presign and object-access-URL calls: there ``FAILED_PRECONDITION`` reports a host
#: configuration problem, never an ETag conflict, so it stays a plain HostServiceError (Q12).
S3_ACCESS_URL_ERRORS = ErrorMap(
    "s3",
    {
        grpc.StatusCode.NOT_FOUND: S3NotFoundError,
        grpc.StatusCode.OUT_OF_RANGE: S3InvalidRangeError,
    },
)

#: PluginInvoker: every failed call is a :class:`HostServiceError` with its code.
INVOKER_ERRORS = ErrorMap("plugin invoker", {})

#: Authorization: every failed call is a :class:`HostServiceError` with its code.
AUTHORIZATION_ERRORS = ErrorMap("authorization", {})
