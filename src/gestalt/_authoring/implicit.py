"""Module-level decorators and the implicit plugin they attach to.

``@operation``, ``@session_catalog``, ``@post_connect`` and ``@http_subject`` used at module level
register on the calling module's ``plugin`` attribute when it is a ``Plugin``; otherwise a
``Plugin`` is created and stored there. Its name comes from a ``manifest.yaml`` beside the
module, else from the module's directory, else from the module's own name (contract 8).
A module attribute ``plugin`` that is something else is an error rather than being overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from gestalt._authoring.callers import caller_frame
from gestalt._authoring.manifest import module_plugin_name
from gestalt._authoring.operation import DEFAULT_OPERATION_METHOD

if TYPE_CHECKING:
    from gestalt._authoring.plugin import Plugin

F = TypeVar("F", bound=Callable[..., Any])


def module_plugin() -> Plugin:
    """Return (creating it if needed) the implicit plugin of the calling module."""
    return plugin_for_namespace(caller_frame().f_globals)


def plugin_for_namespace(namespace: dict[str, Any]) -> Plugin:
    """Return (creating it if needed) the implicit plugin of the module with ``namespace``."""
    from gestalt._authoring.plugin import Plugin

    current = namespace.get("plugin")
    if isinstance(current, Plugin):
        current._attach_module(namespace)
        return current
    if current is not None:
        raise TypeError(
            f"module {namespace.get('__name__')!r} defines 'plugin' as a "
            f"{type(current).__name__}; module-level decorators store their implicit Plugin "
            "under that name, so rename it or register on an explicit Plugin"
        )
    created = Plugin(module_plugin_name(namespace), module_name=namespace.get("__name__"))
    created._attach_module(namespace)
    namespace["plugin"] = created
    return created


@overload
def operation(
    func: F,
    /,
    *,
    id: str | None = None,
    method: str = DEFAULT_OPERATION_METHOD,
    title: str = "",
    description: str = "",
    allowed_roles: list[str] | None = None,
    tags: list[str] | None = None,
    read_only: bool = False,
    visible: bool | None = None,
) -> F: ...


@overload
def operation(
    func: None = None,
    /,
    *,
    id: str | None = None,
    method: str = DEFAULT_OPERATION_METHOD,
    title: str = "",
    description: str = "",
    allowed_roles: list[str] | None = None,
    tags: list[str] | None = None,
    read_only: bool = False,
    visible: bool | None = None,
) -> Callable[[F], F]: ...


def operation(
    func: F | None = None,
    /,
    *,
    id: str | None = None,
    method: str = DEFAULT_OPERATION_METHOD,
    title: str = "",
    description: str = "",
    allowed_roles: list[str] | None = None,
    tags: list[str] | None = None,
    read_only: bool = False,
    visible: bool | None = None,
) -> F | Callable[[F], F]:
    """Register an operation on the calling module's implicit plugin.

    The module's ``plugin`` attribute is used when it is a ``Plugin``; otherwise one is created
    and stored there, named from a ``manifest.yaml`` beside the module or else after the
    module's directory. Options are those of ``Plugin.operation``.
    """
    register: Callable[[F], F] = module_plugin().operation(
        id=id,
        method=method,
        title=title,
        description=description,
        allowed_roles=allowed_roles,
        tags=tags,
        read_only=read_only,
        visible=visible,
    )
    return register if func is None else register(func)


def _module_hook(kind: str, func: F | None) -> F | Callable[[F], F]:
    target = module_plugin()

    def register(hook: F) -> F:
        target._register_hook(kind, hook)
        return hook

    return register if func is None else register(func)


@overload
def session_catalog(func: F, /) -> F: ...
@overload
def session_catalog(func: None = None, /) -> Callable[[F], F]: ...
def session_catalog(func: F | None = None, /) -> F | Callable[[F], F]:
    """Register a per-request catalog hook on the calling module's implicit plugin."""
    return _module_hook("session_catalog", func)


@overload
def post_connect(func: F, /) -> F: ...
@overload
def post_connect(func: None = None, /) -> Callable[[F], F]: ...
def post_connect(func: F | None = None, /) -> F | Callable[[F], F]:
    """Register a post-connect metadata hook on the calling module's implicit plugin."""
    return _module_hook("post_connect", func)


@overload
def http_subject(func: F, /) -> F: ...
@overload
def http_subject(func: None = None, /) -> Callable[[F], F]: ...
def http_subject(func: F | None = None, /) -> F | Callable[[F], F]:
    """Register an HTTP subject-resolution hook on the calling module's implicit plugin."""
    return _module_hook("http_subject", func)
