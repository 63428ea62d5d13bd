"""The embedded host services, as ``gestalt dev`` and ``gestalt.testing`` run them."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gestalt.local._files import private_dir

if TYPE_CHECKING:
    from gestalt.local._serving import LocalServer
    from gestalt.local.agents import AgentManagerService
    from gestalt.local.authorization import AuthorizationService
    from gestalt.local.cache import CacheServer, CacheService
    from gestalt.local.indexeddb import IndexedDBServer
    from gestalt.local.invoker import PluginInvokerService
    from gestalt.local.runtime_logs import RuntimeLogService
    from gestalt.local.s3 import S3ServiceHandle
    from gestalt.local.workflows import WorkflowManagerService


class LocalServices:
    """Cache, IndexedDB and S3 on unix sockets, with their data under ``data_dir``.

    IndexedDB keeps its SQLite file and S3 its objects in ``data_dir``, so both survive a
    restart; the cache lives in memory for as long as the services run.
    ``plugin_invoker`` (calls routed to the providers named with its ``route()``) and
    ``authorization`` (a relationship store a test seeds with its ``write()``) are the service
    objects themselves, in memory too, ready once :meth:`start` returned; so is
    ``runtime_logs``, the log host of plugin runtime providers (entries kept in memory), and
    so are ``agents`` (the agent manager, answering turns with its responder) and
    ``workflows`` (the workflow manager, with its runs, schedules, triggers and events; its
    runs call the routed providers through the plugin invoker, or run an agent target as a
    turn of ``agents``, acting for whoever started them).
    Without ``data_dir`` the data goes to a temporary directory removed by :meth:`stop`.
    :meth:`start` returns the environment variables a provider needs to find the services,
    exactly as the host sets them.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._temp_data = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="gestalt-data-")) if data_dir is None else data_dir
        )
        self.run_dir = Path(tempfile.mkdtemp(prefix="gsth-"))
        self.cache: CacheServer[CacheService] | None = None
        self.indexeddb: IndexedDBServer | None = None
        self.s3: S3ServiceHandle | None = None
        self.plugin_invoker: PluginInvokerService | None = None
        self.authorization: AuthorizationService | None = None
        self.runtime_logs: RuntimeLogService | None = None
        self.agents: AgentManagerService | None = None
        self.workflows: WorkflowManagerService | None = None
        self._more: list[LocalServer[Any]] = []

    def start(self) -> dict[str, str]:
        """Start the three services; return ``GESTALT_*_SOCKET`` variables for a provider."""
        from gestalt.local.cache import serve_cache
        from gestalt.local.indexeddb import serve_indexeddb
        from gestalt.local.s3 import serve_s3

        private_dir(self.data_dir)
        try:
            self.cache = serve_cache(self.run_dir / "host-cache.sock")
            self.indexeddb = serve_indexeddb(
                self.run_dir / "host-indexeddb.sock", db_path=self.data_dir / "indexeddb.sqlite3"
            )
            self.s3 = serve_s3(self.run_dir / "host-s3.sock", root=self.data_dir / "s3")
            self._start_more()
        except BaseException:
            self.stop()
            raise
        return self.env()

    def _start_more(self) -> None:
        from gestalt.local.authorization import serve_authorization
        from gestalt.local.invoker import serve_plugin_invoker
        from gestalt.local.runtime_logs import serve_runtime_logs

        invoker = serve_plugin_invoker(self.run_dir / "host-plugin-invoker.sock")
        self._more.append(invoker)
        authorization = serve_authorization(self.run_dir / "host-authorization.sock")
        self._more.append(authorization)
        self.plugin_invoker, self.authorization = invoker.service, authorization.service
        logs = serve_runtime_logs(self.run_dir / "host-runtime-log.sock")
        self._more.append(logs)
        self.runtime_logs = logs.service
        self._start_managers()

    def _start_managers(self) -> None:
        from gestalt.local.agents import serve_agent_manager
        from gestalt.local.workflows import (
            WorkflowManagerService,
            invoker_executor,
            serve_workflow_manager,
        )

        agents = serve_agent_manager(self.run_dir / "host-agents.sock")
        self._more.append(agents)
        invoker = str(self.run_dir / "host-plugin-invoker.sock")
        execute = invoker_executor(invoker, agents=agents.service)
        workflows = serve_workflow_manager(
            self.run_dir / "host-workflows.sock", service=WorkflowManagerService(execute)
        )
        self._more.append(workflows)
        self.agents, self.workflows = agents.service, workflows.service

    def env(self) -> dict[str, str]:
        """The provider environment variables of the running services."""
        return {
            "GESTALT_CACHE_SOCKET": str(self.run_dir / "host-cache.sock"),
            "GESTALT_INDEXEDDB_SOCKET": str(self.run_dir / "host-indexeddb.sock"),
            "GESTALT_S3_SOCKET": str(self.run_dir / "host-s3.sock"),
            "GESTALT_PLUGIN_INVOKER_SOCKET": str(self.run_dir / "host-plugin-invoker.sock"),
            "GESTALT_AUTHORIZATION_SOCKET": str(self.run_dir / "host-authorization.sock"),
            "GESTALT_RUNTIME_LOG_SOCKET": str(self.run_dir / "host-runtime-log.sock"),
            "GESTALT_AGENT_MANAGER_SOCKET": str(self.run_dir / "host-agents.sock"),
            "GESTALT_WORKFLOW_MANAGER_SOCKET": str(self.run_dir / "host-workflows.sock"),
        }

    @property
    def s3_http_base_url(self) -> str:
        """Base URL of the local endpoint serving presigned and object-access URLs."""
        return self.s3.http_base_url if self.s3 is not None else ""

    def stop(self) -> None:
        """Stop whatever runs and remove the sockets (and temporary data)."""
        servers = (self.cache, self.indexeddb, self.s3, *self._more)
        self.cache = self.indexeddb = self.s3 = None
        self.plugin_invoker = self.authorization = self.runtime_logs = None
        self.agents = self.workflows = None
        self._more = []
        with contextlib.ExitStack() as cleanup:  # every step runs even if one fails
            if self._temp_data:
                cleanup.callback(shutil.rmtree, self.data_dir, ignore_errors=True)
            cleanup.callback(shutil.rmtree, self.run_dir, ignore_errors=True)
            for server in servers:  # stopped in reverse: S3 first, as before
                if server is not None:
                    cleanup.callback(server.stop)

    def __enter__(self) -> LocalServices:
        """Start the services and return them."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the services."""
        self.stop()
