"""The plugin runtime provider kind: a provider that hosts plugin processes for the host.

A runtime provider (kind ``runtime``, ``PROVIDER_KIND_RUNTIME``) creates *sessions* (a sandbox,
a container, a VM), makes host services reachable inside them and starts plugin processes
there, telling the host where to dial each one. Subclass :class:`PluginRuntimeProvider` and
implement the methods your runtime supports, plain or ``async def``; they take and return the
dataclass mirrors of ``gestalt.gen.v1.pluginruntime_mirrors`` (returning the pb2 message
instead is accepted too). A method left out answers ``UNIMPLEMENTED``. The return types
admit an awaitable so that an ``async def`` override type-checks without an ignore.

Code written for the published SDK, which forwarded each RPC to a method named like the RPC
(``StartSession(self, request, context)``) with the raw protobuf request, keeps working: such
a method is used as it is whenever the subclass does not define the snake_case one.
"""

from __future__ import annotations

from gestalt._authoring.providers import ProviderKind, _Served
from gestalt.gen.v1.pluginruntime_providers import PluginRuntimeProviderBase

__all__ = ["PluginRuntimeProvider"]


class PluginRuntimeProvider(PluginRuntimeProviderBase, _Served):
    """Base class for plugin runtime providers (service ``PluginRuntimeProvider``).

    Served for the ``runtime`` kind (``runtime = "module:attribute"`` in ``[tool.gestalt]``,
    or ``runtime`` as the launch's kind argument). Every method may be a plain function (run
    in the runtime's thread pool) or ``async def`` (run on its event loop); raise
    ``NotImplementedError``, or leave the method out, for ``UNIMPLEMENTED``. A ``LookupError``
    (``KeyError``) from ``get_session`` or ``stop_session`` answers ``NOT_FOUND``; any other
    exception is logged and answers ``UNKNOWN`` without its text.
    """

    _kind = ProviderKind.RUNTIME
