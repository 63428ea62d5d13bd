"""Provider hooks: signature checks, calling them safely, validating what they return.

Hooks are ``configure``, ``session_catalog``, ``post_connect`` and ``http_subject``. Their
signatures are checked when they are registered (or discovered), not on the first call. A hook
that raises is logged with its traceback and reported as ``HookError``, whose text names the
hook but never carries the exception's message, so the runtime can forward it to the host
without leaking secrets (quirks 13 and 35). An HTTP-subject hook rejects a request by raising
``HTTPSubjectResolutionError`` or the handlers' ``gestalt.Error(status, message)``; both come
out as ``HTTPSubjectResolutionError`` with that status and message (a status outside 100-599
is a ``HookError``). From any other hook they are failures like any exception.

``Plugin`` imports this module only once it has a hook to check or call: a plugin without
hooks never loads it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from gestalt._authoring.aio import run_sync
from gestalt._authoring.operation import (
    is_async_callable,
    is_request_type,
    parameter_hints,
    positional_parameters,
)
from gestalt._authoring.response import Error, HookError, HTTPSubjectResolutionError

if TYPE_CHECKING:
    from gestalt._authoring.request import Subject

logger = logging.getLogger(__name__)


class HookKind:
    """What distinguishes one kind of hook from another.

    (Plain classes here and in ``Hook``: a NamedTuple costs ~0.4 ms to define at import.)
    """

    __slots__ = ("arities", "check", "label", "shape")

    def __init__(
        self,
        label: str,
        arities: tuple[int, ...],
        shape: str,
        check: Callable[[Any], Any] | None = None,
    ) -> None:
        self.label = label  # prefix of HookError messages, as the host knows them
        self.arities = arities  # accepted numbers of positional parameters
        self.shape = shape  # for error messages
        self.check = check  # validates what the hook returned, if its kind says how


class Hook:
    """A checked hook of one kind and how many of the standard arguments it takes."""

    __slots__ = ("arity", "func", "kind")

    def __init__(self, kind: str, func: Callable[..., Any], arity: int) -> None:
        self.kind = kind
        self.func = func
        self.arity = arity

    def call(self, args: tuple[Any, ...]) -> Any:
        """Call the hook with as many of ``args`` as it takes; async hooks run on the shared
        loop. Returns what it returned, checked for its kind."""
        try:
            value = self.func(*args[: self.arity])
            if inspect.isawaitable(value):
                value = run_sync(value)
        except Exception as exc:
            _reraise(self, exc)
        return self._checked(value)

    async def acall(self, args: tuple[Any, ...]) -> Any:
        """Async twin of :meth:`call`: awaits async hooks, runs sync ones in a worker thread."""
        try:
            call_args = args[: self.arity]
            if is_async_callable(self.func):
                value = await self.func(*call_args)
            else:
                value = await asyncio.to_thread(self.func, *call_args)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            _reraise(self, exc)
        return self._checked(value)

    def _checked(self, value: Any) -> Any:
        check = HOOK_KINDS[self.kind].check
        return value if check is None else check(value)


def check_hook(kind: str, func: Callable[..., Any]) -> Hook:
    """Check a hook's signature for its kind; raise ``TypeError`` explaining a mismatch."""
    spec = HOOK_KINDS[kind]
    where = f"{kind} hook {getattr(func, '__qualname__', func)!r}"
    if not callable(func):
        raise TypeError(f"{where} must be callable")
    params = positional_parameters(func, where)
    if len(params) not in spec.arities:
        raise TypeError(f"{where} must take {spec.shape}")
    if kind == "session_catalog" and params:
        hint = parameter_hints(func, where).get(params[0].name)
        if hint is not None and not is_request_type(hint):
            raise TypeError(f"{where}: its parameter must be annotated gestalt.Request")
    return Hook(kind, func, len(params))


def _reraise(hook: Hook, exc: Exception) -> NoReturn:
    """Raise what the runtime should see for ``exc``: a rejection, or a ``HookError``."""
    if hook.kind == "http_subject" and isinstance(exc, HTTPSubjectResolutionError | Error):
        raise _checked_rejection(exc) from None
    label = HOOK_KINDS[hook.kind].label
    logger.error(
        "%s hook %r failed", label, getattr(hook.func, "__qualname__", hook.func), exc_info=exc
    )
    raise HookError(label) from exc


def checked_metadata(value: Any) -> dict[str, str] | None:
    """Accept ``None`` or a ``dict[str, str]`` from a post-connect hook (quirk 14)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        detail = f"the hook must return a dict of strings or None, not {type(value).__name__}"
    else:
        bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
        if not bad:
            return dict(value)
        detail = (
            f"metadata keys and values must be strings; {bad[0]!r} has a "
            f"{type(value[bad[0]]).__name__} value"
        )
    logger.error("post connect hook returned unusable metadata: %s", detail)
    raise HookError("post connect", detail)


def checked_subject(value: Any) -> Subject | None:
    """Accept ``None`` or a ``Subject`` from an HTTP-subject hook."""
    from gestalt._authoring.request import Subject  # loaded by then: the hook's request is one

    if value is None or isinstance(value, Subject):
        return value
    detail = f"the hook must return a gestalt.Subject or None, not {type(value).__name__}"
    logger.error("resolve http subject hook returned an unusable value: %s", detail)
    raise HookError("resolve http subject", detail)


def _checked_rejection(exc: HTTPSubjectResolutionError | Error) -> Exception:
    # The host treats reject_status 0 as "not rejected": a bad status must not turn a
    # rejection into an acceptance.
    if isinstance(exc.status, int) and 100 <= exc.status <= 599:
        if isinstance(exc, Error):
            return HTTPSubjectResolutionError(exc.status, exc.message)
        return exc
    detail = f"rejection status must be between 100 and 599, not {exc.status!r}"
    logger.error("resolve http subject hook raised an unusable rejection: %s", detail)
    return HookError("resolve http subject", detail)


HOOK_KINDS = {
    "configure": HookKind("configure provider", (2,), "(name, config)"),
    "session_catalog": HookKind("session catalog", (0, 1), "() or (request)"),
    "post_connect": HookKind("post connect", (0, 1), "() or (token)", checked_metadata),
    "http_subject": HookKind(
        "resolve http subject", (1, 2), "(request) or (request, context)", checked_subject
    ),
}
