"""Module-level decorators and the implicit plugin they attach to.

``@operation``, ``@session_catalog``, ``@post_connect`` and ``@http_subject`` used at module level
register on the calling module's ``plugin`` attribute when it is a ``Plugin``; otherwise a
``Plugin`` is created and stored there. Its name comes from a ``manifest.yaml`` beside the
module, else from the module's directory, else from the module's own name (contract 8).
A module attribute ``plugin`` that is something else is an error rather than being overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from gestalt._authoring.callers import caller_frame
from gestalt._authoring.manifest import module_plugin_name
from gestalt._authoring.plugin import Plugin

F = TypeVar("F", bound=Callable[..., Any])


def module_plugin() -> Plugin:
    """Return (creating it if needed) the implicit plugin of the calling module."""
    return plugin_for_namespace(caller_frame().f_globals)


def plugin_for_namespace(namespace: dict[str, Any]) -> Plugin:
    """Return (creating it if needed) the implicit plugin of the module with ``namespace``."""
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


class _CallersPlugin(Plugin):
    """Stands in for the calling module's implicit plugin: its ``operation`` registers there.

    Module-level ``operation`` is this object's bound ``Plugin.operation``, so both forms share
    one signature and one overload set. It holds no registry, so ``Plugin.__init__`` is not run.
    """

    def __init__(self) -> None:
        pass

    def __repr__(self) -> str:
        return "<the calling module's implicit plugin>"

    def _registry(self) -> Plugin:
        return module_plugin()


class _ModuleHook:
    """A module-level hook decorator of one kind, used bare or called with no arguments."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<module-level {self.kind} decorator>"

    @overload
    def register(self, func: F, /) -> F: ...
    @overload
    def register(self, func: None = None, /) -> Callable[[F], F]: ...
    def register(self, func: F | None = None, /) -> F | Callable[[F], F]:
        """Register ``func`` as the hook of this kind on the calling module's implicit plugin."""
        target = module_plugin()

        def add(hook: F) -> F:
            return target._register_hook(self.kind, hook)

        return add if func is None else add(func)


# Documented by Plugin.operation's docstring, which covers this module-level form too.
operation = _CallersPlugin().operation
#: Register a per-request catalog hook on the calling module's implicit plugin.
session_catalog = _ModuleHook("session_catalog").register
#: Register a post-connect metadata hook on the calling module's implicit plugin.
post_connect = _ModuleHook("post_connect").register
#: Register an HTTP subject-resolution hook on the calling module's implicit plugin.
http_subject = _ModuleHook("http_subject").register
