"""What start-up leaves unloaded, on purpose (issue 11's import, cold start and RSS rows).

Each module named here costs import time and memory that a provider pays before its first
call, and none of them is needed by then: the dataclasses a client is handed but never needs
itself (``KeyRange``, ``CacheEntry``), the ``Request`` family (built per call), the provider
base classes and the other kinds' servicers and messages when a plugin is served, and the dev
host's call reporter outside ``gestalt dev``. Each is still there once asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import gestalt
from gestalt._runtime import devcalls, process

IMPORT_LINE = """
import gestalt
from gestalt import Cache, S3, IndexedDB, Plugin
"""

#: Loaded by none of ``Cache``, ``S3``, ``IndexedDB`` and ``Plugin``.
NOT_ON_THE_IMPORT_LINE = [
    "gestalt._authoring.kinds",
    "gestalt._authoring.providers",
    "gestalt._authoring.request",
    "gestalt._clients.cache_types",
    "gestalt._clients.indexeddb_aio",
    "gestalt._clients.indexeddb_types",
    "gestalt._clients.s3_types",
    "gestalt._runtime",
]

SERVE_A_PLUGIN = """
import sys
from gestalt import Plugin
from gestalt._authoring.kinds import ProviderKind
from gestalt._runtime.process import RunningServer

plugin = Plugin("probe")

@plugin.operation
def ping() -> str:
    return "pong"

server = RunningServer(plugin, ProviderKind.INTEGRATION, sys.argv[1])
server.stop()
"""

#: What serving an integration plugin does not load (outside ``gestalt dev``).
NOT_LOADED_TO_SERVE_A_PLUGIN = [
    "gestalt._authoring.providers",
    "gestalt._runtime.devcalls",
    "gestalt._runtime.lifecycle",
    "gestalt.gen.v1.cache_pb2",
    "gestalt.gen.v1.runtime_pb2",
    "gestalt.gen.v1.secrets_pb2",
]


#: Appended to each probe: which of the modules listed in its last argument are loaded.
REPORT = """
import json, sys
print(json.dumps(sorted(m for m in json.loads(sys.argv[-1]) if m in sys.modules)))
"""


def loaded(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules among the last argument's list that ``code`` left in ``sys.modules``."""
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout)
    return found


def test_the_import_line_leaves_the_unneeded_modules_unloaded() -> None:
    modules = NOT_ON_THE_IMPORT_LINE
    assert loaded(IMPORT_LINE, json.dumps(modules)) == []


def test_the_deferred_public_dataclasses_are_dataclasses_where_they_live() -> None:
    for name, home in [
        ("KeyRange", "gestalt._clients.indexeddb_types"),
        ("IndexSchema", "gestalt._clients.indexeddb_types"),
        ("ObjectStoreSchema", "gestalt._clients.indexeddb_types"),
        ("CacheEntry", "gestalt._clients.cache_types"),
        ("Request", "gestalt._authoring.request"),
        ("Subject", "gestalt._authoring.request"),
        ("ProviderMetadata", "gestalt._authoring.providers"),
    ]:
        cls = getattr(gestalt, name)
        assert cls.__module__ == home, name
        assert dataclasses.is_dataclass(cls), name
    assert gestalt.KeyRange(1, 2) == gestalt.KeyRange(lower=1, upper=2)
    assert repr(gestalt.CacheEntry("k", b"v")) == "CacheEntry(key='k', value=b'v')"


def test_serving_a_plugin_loads_only_what_plugins_need(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != process.DEV_EVENTS_ENV}
    socket = str(tmp_path / "p.sock")
    modules = NOT_LOADED_TO_SERVE_A_PLUGIN
    assert loaded(SERVE_A_PLUGIN, socket, json.dumps(modules), env=env) == []


def test_the_runtime_names_the_dev_hosts_variable_as_devcalls_does() -> None:
    assert process.DEV_EVENTS_ENV == devcalls.EVENTS_FD_ENV
