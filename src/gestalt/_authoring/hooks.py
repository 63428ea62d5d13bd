"""Provider hooks: signature checks, calling them safely, validating what they return.

Hooks are ``configure``, ``session_catalog``, ``post_connect`` and ``http_subject``. Their
signatures are checked when they are registered (or discovered), not on the first call. A hook
that raises is logged with its traceback and reported as ``HookError``, whose text names the
hook but never carries the exception's message, so the runtime can forward it to the host
without leaking secrets (quirks 13 and 35). An HTTP-subject hook rejects a request by raising
``HTTPSubjectResolutionError`` or the handlers' ``gestalt.Error(status, message)``; both come
out as ``HTTPSubjectResolutionError`` with that status and message (a status outside 100-599
is a ``HookError``). From any other hook they are failures like any exception.
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
from gestalt._authoring.response import Error, HTTPSubjectResolutionError

if TYPE_CHECKING:
    from gestalt._authoring.request import Subject

logger = logging.getLogger(__name__)


class HookError(RuntimeError):
    """A provider hook failed or returned something unusable.

    ``str()`` reads ``"<label>: <detail>"`` and never contains the hook's exception text, so the
    runtime can send it to the host; the traceback was logged when the error was raised.
    """

    def __init__(self, label: str, detail: str = "") -> None:
        self.label = label
        self.detail = detail or "hook failed; details are in the provider log"
        super().__init__(f"{label}: {self.detail}")


class HookKind:
    """What distinguishes one kind of hook from another.

    (Plain classes here and in ``Hook``: a NamedTuple costs ~0.4 ms to define at import.)
    """

    __slots__ = ("arities", "label", "module_attr", "shape")

    def __init__(self, label: str, module_attr: str, arities: tuple[int, ...], shape: str) -> None:
        self.label = label  # prefix of HookError messages, as the host knows them
        self.module_attr = module_attr  # module function discovered as this hook
        self.arities = arities  # accepted numbers of positional parameters
        self.shape = shape  # for error messages


HOOK_KINDS = {
    "configure": HookKind("configure provider", "configure", (2,), "(name, config)"),
    "session_catalog": HookKind("session catalog", "session_catalog", (0, 1), "() or (request)"),
    "post_connect": HookKind("post connect", "post_connect", (0, 1), "() or (token)"),
    "http_subject": HookKind(
        "resolve http subject", "resolve_http_subject", (1, 2), "(request) or (request, context)"
    ),
}


class Hook:
    """A checked hook and how many of the standard arguments it takes."""

    __slots__ = ("arity", "func")

    def __init__(self, func: Callable[..., Any], arity: int) -> None:
        self.func = func
        self.arity = arity


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
    return Hook(func, len(params))


def _hook_failed(kind: str, hook: Hook, exc: Exception) -> HookError:
    label = HOOK_KINDS[kind].label
    logger.error(
        "%s hook %r failed", label, getattr(hook.func, "__qualname__", hook.func), exc_info=exc
    )
    return HookError(label)


def _reraise(kind: str, hook: Hook, exc: Exception) -> NoReturn:
    """Raise what the runtime should see for ``exc``: a rejection, or a ``HookError``."""
    if kind == "http_subject" and isinstance(exc, HTTPSubjectResolutionError | Error):
        raise _checked_rejection(exc) from None
    raise _hook_failed(kind, hook, exc) from exc


def call_hook(kind: str, hook: Hook, args: tuple[Any, ...]) -> Any:
    """Call ``hook`` with as many of ``args`` as it takes; async hooks run on the shared loop."""
    try:
        value = hook.func(*args[: hook.arity])
        return run_sync(value) if inspect.isawaitable(value) else value
    except Exception as exc:
        _reraise(kind, hook, exc)


async def acall_hook(kind: str, hook: Hook, args: tuple[Any, ...]) -> Any:
    """Async twin of ``call_hook``: awaits async hooks, runs sync ones in a worker thread."""
    try:
        call_args = args[: hook.arity]
        if is_async_callable(hook.func):
            value = await hook.func(*call_args)
        else:
            value = await asyncio.to_thread(hook.func, *call_args)
        return await value if inspect.isawaitable(value) else value
    except Exception as exc:
        _reraise(kind, hook, exc)


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
