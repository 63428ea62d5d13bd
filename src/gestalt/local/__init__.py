"""Embedded, real implementations of the host's Cache, IndexedDB and S3 services.

They serve the same ``gestalt.provider.v1`` services the Gestalt host offers, over a unix
socket, so clients and providers can run and be tested without the Go host. Storage is real:
memory for the cache, SQLite for IndexedDB, a directory for S3; the agent and workflow
managers keep sessions, turns, runs, schedules and triggers in memory. ``LocalServices`` runs
them all at once, as ``gestalt dev`` does. Every ``serve_*`` function takes the same address
forms (socket path, ``unix://``, ``tcp://host:port``) and the same options
(:class:`ServeOptions`: ``relay_token``, ``interceptors``, ``max_workers``,
``max_message_bytes``) and returns a :class:`LocalServer` handle (``target``,
``socket_path``, ``service``, ``stop``).

Two more services run in memory for providers that call other plugins or ask for
authorization: :class:`PluginInvokerService` (routes ``Invoke`` calls to local providers and
issues invocation tokens) and :class:`AuthorizationService` (a relationship store).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gestalt.local._services import LocalServices
    from gestalt.local._serving import (
        AsyncLocalServer,
        AsyncServeOptions,
        LocalServer,
        ServeOptions,
    )
    from gestalt.local.agents import AgentManagerService, LocalTurn, serve_agent_manager
    from gestalt.local.authorization import AuthorizationService, serve_authorization
    from gestalt.local.cache import (
        AsyncCacheServer,
        CacheServer,
        CacheService,
        serve_cache,
        serve_cache_async,
    )
    from gestalt.local.indexeddb import IndexedDBServer, IndexedDBService, serve_indexeddb
    from gestalt.local.invoker import Grant, PluginInvokerService, serve_plugin_invoker
    from gestalt.local.runtime_logs import RuntimeLogServer, RuntimeLogService, serve_runtime_logs
    from gestalt.local.s3 import S3Service, S3ServiceHandle, serve_s3
    from gestalt.local.workflows import WorkflowManagerService, serve_workflow_manager

_EXPORTS = {
    "AsyncLocalServer": "gestalt.local._serving",
    "LocalServer": "gestalt.local._serving",
    "ServeOptions": "gestalt.local._serving",
    "AsyncServeOptions": "gestalt.local._serving",
    "LocalServices": "gestalt.local._services",
    "AsyncCacheServer": "gestalt.local.cache",
    "CacheServer": "gestalt.local.cache",
    "CacheService": "gestalt.local.cache",
    "serve_cache": "gestalt.local.cache",
    "serve_cache_async": "gestalt.local.cache",
    "IndexedDBServer": "gestalt.local.indexeddb",
    "IndexedDBService": "gestalt.local.indexeddb",
    "serve_indexeddb": "gestalt.local.indexeddb",
    "RuntimeLogServer": "gestalt.local.runtime_logs",
    "RuntimeLogService": "gestalt.local.runtime_logs",
    "serve_runtime_logs": "gestalt.local.runtime_logs",
    "S3Service": "gestalt.local.s3",
    "S3ServiceHandle": "gestalt.local.s3",
    "serve_s3": "gestalt.local.s3",
    "AuthorizationService": "gestalt.local.authorization",
    "serve_authorization": "gestalt.local.authorization",
    "Grant": "gestalt.local.invoker",
    "PluginInvokerService": "gestalt.local.invoker",
    "serve_plugin_invoker": "gestalt.local.invoker",
    "AgentManagerService": "gestalt.local.agents",
    "LocalTurn": "gestalt.local.agents",
    "serve_agent_manager": "gestalt.local.agents",
    "WorkflowManagerService": "gestalt.local.workflows",
    "serve_workflow_manager": "gestalt.local.workflows",
}

__all__ = [
    "AgentManagerService",
    "AsyncCacheServer",
    "AsyncLocalServer",
    "AsyncServeOptions",
    "AuthorizationService",
    "CacheServer",
    "CacheService",
    "Grant",
    "IndexedDBServer",
    "IndexedDBService",
    "LocalServer",
    "LocalServices",
    "LocalTurn",
    "PluginInvokerService",
    "RuntimeLogServer",
    "RuntimeLogService",
    "S3Service",
    "S3ServiceHandle",
    "ServeOptions",
    "WorkflowManagerService",
    "serve_agent_manager",
    "serve_authorization",
    "serve_cache",
    "serve_cache_async",
    "serve_indexeddb",
    "serve_plugin_invoker",
    "serve_runtime_logs",
    "serve_s3",
    "serve_workflow_manager",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gestalt.local' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
