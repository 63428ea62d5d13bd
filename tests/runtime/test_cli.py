"""The ``python -m gestalt._runtime`` command line, run as separate processes.

Every CLI case of ``process/process_results.json`` is covered. Exit codes match the reference;
messages are ours: one line on stderr starting with ``gestalt runtime: `` and no traceback
(the reference printed a Python traceback), except when the provider's own module raises
while it is imported, where its traceback is the useful part. Beyond the reference:
``indexeddb`` is served (quirk 16) and a Plugin with a non-integration kind is refused; only a
leftover *socket* at the socket path is replaced (quirk 29); the bundled ``plugin_name`` is
slugged (quirk 17); ``[tool.gestalt]`` in ``ROOT/pyproject.toml`` is read when only ``ROOT``
is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from gestalt._runtime.socket_path import MAX_SOCKET_PATH_BYTES
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import (
    datastore_clients,
    datastore_pb2,
    plugin_clients,
    runtime_clients,
    runtime_pb2,
)
from tests.conftest import REPO
from tests.runtime.harness import EXAMPLES, Provider, host_env, run_cli

EX1 = EXAMPLES / "ex1_search"
EX4 = EXAMPLES / "ex4_kinds"
PROVIDERS = Path(__file__).resolve().parent / "providers"
PROCESS: dict[str, Any] = json.loads(
    (EXAMPLES / "process" / "process_results.json").read_text(encoding="utf-8")
)
CLI_GOLDEN = {case["case"]: case for case in PROCESS["cli"]}
USAGE = "usage: python -m gestalt._runtime ROOT MODULE[:ATTRIBUTE] [RUNTIME_KIND]"
PREFIX = "gestalt runtime: "
TIMEOUT = 10.0
EMPTY = empty_pb2.Empty()


# -- helpers -------------------------------------------------------------------------------


def expected_ex1_catalog() -> str:
    """The golden ex1 ``catalog.yaml`` with the documented deliberate differences.

    The same edits as ``tests/authoring/test_catalog_goldens.py``: camelCase ``readOnly`` /
    ``allowedRoles`` (quirk 3) and the primitive input of ``echo_name`` listed as a parameter
    named after the handler argument (quirk 11).
    """
    text = (EX1 / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace("  read_only: true\n", "  readOnly: true\n")
    text = text.replace("  allowed_roles:\n", "  allowedRoles:\n")
    header = "- id: echo_name\n  method: POST\n"
    assert header in text
    parameter = "  parameters:\n  - name: name\n    type: string\n    required: true\n"
    return text.replace(header, header + parameter)


def golden_args(case: dict[str, Any]) -> list[str]:
    """A golden case's arguments with ``<examples>`` resolved."""
    return [arg.replace("<examples>", str(EXAMPLES)) for arg in case["argv_after_module"]]


def assert_config_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1 with one ``gestalt runtime:`` line holding ``fragments``; return that line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    message = lines[-1]
    assert message.startswith(PREFIX), result.stderr
    for fragment in fragments:
        assert fragment in message
    return message


@dataclass
class Served:
    """A runtime process started by :func:`served` and a channel to it."""

    proc: subprocess.Popen[bytes]
    channel: grpc.Channel
    log: Path
    unix_path: Path | None = None
    stopped: list[int] = field(default_factory=list)

    def stderr(self) -> str:
        """Everything the runtime wrote to stdout and stderr so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; the exit status (the process is killed if it does not exit)."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
            raise


def _wait_listening(proc: subprocess.Popen[bytes], connect: Callable[[], None], log: Path) -> None:
    # A probe connection, not the file's existence: a stale socket file exists before the
    # runtime replaces it, and a tcp listener has no file at all.
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"runtime exited early ({proc.returncode}):\n{log.read_text()}")
        try:
            connect()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"runtime never listened:\n{log.read_text()}") from None
            time.sleep(0.01)


def _connect_unix(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.connect(str(path))


def _connect_tcp(port: int) -> None:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


@contextlib.contextmanager
def served(
    args: list[str], socket_value: str, log: Path, *, unix: Path | None = None, port: int = 0
) -> Iterator[Served]:
    """Run the runtime with ``args`` listening on ``socket_value`` until the block ends."""
    env = host_env(GESTALT_PLUGIN_SOCKET=socket_value, GESTALT_PLUGIN_PARENT_PID=str(os.getpid()))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gestalt._runtime", *args], env=env, stdout=out, stderr=out
        )
    try:
        if unix is not None:
            _wait_listening(proc, lambda: _connect_unix(unix), log)
            channel = grpc.insecure_channel(f"unix:{unix}")
        else:
            _wait_listening(proc, lambda: _connect_tcp(port), log)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        yield Served(proc, channel, log, unix)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def integration_metadata_ok(channel: grpc.Channel) -> None:
    """The served ex1 plugin answers GetMetadata with protocol version 3."""
    client = plugin_clients.IntegrationProviderClient(channel)
    metadata = client.get_metadata(EMPTY, timeout=TIMEOUT)
    assert (metadata.min_protocol_version, metadata.max_protocol_version) == (3, 3)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["no arguments and no bundled config", "one argument", "four arguments"],
)
def test_usage(case: str) -> None:
    golden = CLI_GOLDEN[case]
    result = run_cli(golden_args(golden), timeout=TIMEOUT)
    assert result.returncode == golden["exit_code"] == 2
    assert result.stderr.splitlines() == [golden["last_stderr_line"]] == [USAGE]
    assert result.stdout == ""


# -- configuration errors ------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A launch the runtime must refuse, and what its message must say."""

    id: str
    args: list[str]
    fragments: list[str]
    env: dict[str, str] = field(default_factory=dict)
    golden: str | None = None  # the process_results.json case it corresponds to


SOCKET = {"GESTALT_PLUGIN_SOCKET": "{tmp}/p.sock"}
LONG_NAME = "s" * MAX_SOCKET_PATH_BYTES + ".sock"
PLUGIN = [str(EX1), "search_plugin:plugin"]
REFUSED = [
    Refused(
        "socket-missing",
        PLUGIN,
        ["GESTALT_PLUGIN_SOCKET is required"],
        golden="socket variable missing",
    ),
    Refused(
        "socket-blank",
        PLUGIN,
        ["GESTALT_PLUGIN_SOCKET is required"],
        {"GESTALT_PLUGIN_SOCKET": " "},
    ),
    # Ours serves indexeddb (quirk 16), but a Plugin is an integration provider only.
    Refused(
        "plugin-as-indexeddb",
        [*PLUGIN, "indexeddb"],
        ["search_plugin:plugin is a gestalt.Plugin", "runtime kind is 'indexeddb'"],
        SOCKET,
        golden="runtime kind 'indexeddb'",
    ),
    Refused(
        "plugin-as-cache",
        [*PLUGIN, "cache"],
        ["search_plugin:plugin is a gestalt.Plugin", "runtime kind is 'cache'"],
        SOCKET,
    ),
    Refused("unknown-kind", [*PLUGIN, "bogus"], ["unsupported runtime kind: 'bogus'"], SOCKET),
    Refused(
        "telemetry-kind",
        [str(EX4), "kinds:cache", "telemetry"],
        ["telemetry providers cannot be served"],
        SOCKET,
    ),
    Refused(
        "attribute-missing",
        [str(EX1), "search_plugin:nope"],
        ["search_plugin:nope did not resolve", "'nope'"],
        SOCKET,
        golden="attribute missing",
    ),
    Refused(
        "trailing-colon",
        [str(EX1), "search_plugin:"],
        ["'search_plugin:'", "after ':' there must be a Python identifier"],
        SOCKET,
        golden="trailing colon",
    ),
    Refused(
        "module-not-identifiers",
        [str(EX1), "search-plugin"],
        ["'search-plugin'", "dot-separated Python identifiers"],
        SOCKET,
    ),
    Refused(
        "module-missing",
        [str(EX1), "no_such_module"],
        ["cannot import module 'no_such_module'", str(EX1)],
        SOCKET,
        golden="module missing",
    ),
    Refused(
        "catalog-mode-non-plugin",
        [str(EX4), "kinds:cache", "cache"],
        ["catalog export is only supported for integration plugins"],
        {"GESTALT_PLUGIN_WRITE_CATALOG": "{tmp}/catalog.yaml"},
        golden="catalog mode with a cache provider",
    ),
    Refused(
        "non-plugin-as-integration",
        [str(EX4), "kinds:cache"],
        [
            "kinds:cache is a MemoryCache",
            "integration targets must be a gestalt.Plugin or a gestalt.PluginProviderAdapter",
        ],
        SOCKET,
        golden="cache provider with default kind (integration)",
    ),
    Refused(
        "wrong-base-class",
        [str(EX4), "kinds:cache", "s3"],
        ["kinds:cache is a MemoryCache, not a gestalt.S3Provider", "PluginProviderAdapter"],
        SOCKET,
        golden="cache provider launched as kind s3",
    ),
    Refused(
        "plain-object",
        [str(PROVIDERS), "clsmod:plain", "cache"],
        ["clsmod:plain is a Plain, not a gestalt.CacheProvider"],
        SOCKET,
    ),
    Refused(
        "class-not-instance",
        [str(PROVIDERS), "clsmod:C", "cache"],
        ["clsmod:C is a class", "provider = C()"],
        SOCKET,
        golden="attribute is a class, not an instance",
    ),
    Refused(
        "module-without-kind-attribute",
        [str(PROVIDERS), "clsmod", "secrets"],
        ["clsmod did not resolve", "'secrets', 'provider', 'plugin'"],
        SOCKET,
    ),
    Refused(
        "scheme-unsupported",
        PLUGIN,
        ["unsupported provider socket target scheme 'http'"],
        {"GESTALT_PLUGIN_SOCKET": "http://127.0.0.1:1"},
        golden="socket target with unsupported scheme",
    ),
    Refused(
        "unix-without-path",
        PLUGIN,
        ["provider unix target 'unix://' is missing a socket path"],
        {"GESTALT_PLUGIN_SOCKET": "unix://"},
        golden="socket target unix:// without a path",
    ),
    Refused(
        "tcp-without-address",
        PLUGIN,
        ["provider tcp target 'tcp://' is missing host:port"],
        {"GESTALT_PLUGIN_SOCKET": "tcp://"},
        golden="socket target tcp:// without host:port",
    ),
    Refused(
        "socket-directory-missing",
        PLUGIN,
        [
            "cannot create the unix socket {tmp}/no/such/dir/p.sock: "
            "its directory {tmp}/no/such/dir does not exist"
        ],
        {"GESTALT_PLUGIN_SOCKET": "{tmp}/no/such/dir/p.sock"},
        golden="socket in a directory that does not exist",
    ),
    Refused(
        "socket-path-too-long",
        PLUGIN,
        [
            f"unix socket path {{tmp}}/{LONG_NAME} is ",
            f"bytes, longer than the {MAX_SOCKET_PATH_BYTES} a unix socket address holds",
        ],
        {"GESTALT_PLUGIN_SOCKET": f"unix://{{tmp}}/{LONG_NAME}"},
    ),
    Refused(
        "bad-worker-count",
        PLUGIN,
        ["GESTALT_MAX_WORKERS must be a positive integer, not '0'"],
        {**SOCKET, "GESTALT_MAX_WORKERS": "0"},
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[case.id for case in REFUSED])
def test_refused_launch(case: Refused, tmp_path: Path) -> None:
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()}
    result = run_cli(case.args, timeout=TIMEOUT, **env)
    fragments = [f.replace("{tmp}", str(tmp_path)) for f in case.fragments]
    message = assert_config_error(result, *fragments)
    # Neutral wording for targets from the command line (quirk 37).
    assert "tool.gestalt" not in message
    if case.golden is not None:
        golden = CLI_GOLDEN[case.golden]
        assert golden["exit_code"] == 1
        assert golden_args(golden)[1:] == case.args[1:]
        assert sorted(env) == sorted(golden["env_keys"])
    assert not (tmp_path / "catalog.yaml").exists()


def test_provider_import_failure_prints_its_traceback() -> None:
    result = run_cli([str(PROVIDERS), "broken_import", "cache"], timeout=TIMEOUT)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: TOPSECRET-import: the provider module is broken" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "gestalt runtime: importing broken_import failed at broken_import.py:5: RuntimeError: "
        "TOPSECRET-import: the provider module is broken (traceback above)"
    )


def test_missing_dependency_of_the_provider_is_not_reported_as_the_provider() -> None:
    result = run_cli([str(PROVIDERS), "gizmo_provider", "cache"], timeout=TIMEOUT)
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'gizmo'" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "gestalt runtime: importing gizmo_provider failed at gizmo_provider.py:9: "
        "ModuleNotFoundError: No module named 'gizmo' (traceback above)"
    )


# -- catalog export ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "golden"),
    [
        (None, None),
        (" Integration ", "runtime kind with spaces and capitals (catalog mode)"),
        ("", "empty runtime kind (catalog mode)"),
        ("integration", None),
    ],
    ids=["no-kind", "spaces-and-capitals", "empty", "integration"],
)
def test_catalog_export_matches_the_ex1_golden(
    kind: str | None, golden: str | None, tmp_path: Path
) -> None:
    args = PLUGIN if kind is None else [*PLUGIN, kind]
    target = tmp_path / "nested" / "dir" / "catalog.yaml"
    result = run_cli(args, timeout=TIMEOUT, GESTALT_PLUGIN_WRITE_CATALOG=str(target))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert target.read_text(encoding="utf-8") == expected_ex1_catalog()
    if golden is not None:
        case = CLI_GOLDEN[golden]
        assert (case["exit_code"], case["last_stderr_line"]) == (0, "")
        assert golden_args(case) == args


# -- socket targets and stale sockets ------------------------------------------------------


def test_unix_scheme_serves_and_sigint_stops(tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    with served(PLUGIN, f"unix://{path}", tmp_path / "log.txt", unix=path) as runtime:
        integration_metadata_ok(runtime.channel)
        assert PROCESS["unix_scheme"]["served"]
        assert runtime.stop(signal.SIGINT) == PROCESS["sigint"]["exit_code"] == 0
    assert not path.exists()
    assert runtime.stderr() == ""


def test_tcp_scheme_serves(tmp_path: Path) -> None:
    port = free_port()
    with served(PLUGIN, f"tcp://127.0.0.1:{port}", tmp_path / "log.txt", port=port) as runtime:
        integration_metadata_ok(runtime.channel)
        assert runtime.stop() == PROCESS["tcp_scheme"]["sigterm_exit_code"] == 0


def test_a_leftover_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))  # closed without unlinking: a socket file nobody listens on
    assert stat.S_ISSOCK(path.lstat().st_mode)
    with served(PLUGIN, str(path), tmp_path / "log.txt", unix=path) as runtime:
        integration_metadata_ok(runtime.channel)
        assert runtime.stop() == 0
    assert not path.exists()


def _make_file(path: Path) -> None:
    path.write_text("keep me\n", encoding="utf-8")


def _make_dir(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("keep me\n", encoding="utf-8")


def _make_symlink(path: Path) -> None:
    target = path.with_name("target.txt")
    target.write_text("keep me\n", encoding="utf-8")
    path.symlink_to(target)


@pytest.mark.parametrize(
    "make", [_make_file, _make_dir, _make_symlink], ids=["regular-file", "directory", "symlink"]
)
def test_a_non_socket_at_the_socket_path_is_left_alone(
    make: Callable[[Path], None], tmp_path: Path
) -> None:
    # The reference replaced a regular file and crashed on a directory (quirk 29).
    path = tmp_path / "p.sock"
    make(path)
    before = sorted((p.name, p.is_dir()) for p in tmp_path.rglob("*"))
    result = run_cli(PLUGIN, timeout=TIMEOUT, GESTALT_PLUGIN_SOCKET=str(path))
    assert_config_error(result, f"{path} exists and is not a socket; refusing to replace it")
    assert sorted((p.name, p.is_dir()) for p in tmp_path.rglob("*")) == before
    if path.is_dir():
        assert (path / "inside.txt").read_text(encoding="utf-8") == "keep me\n"
    else:
        assert path.read_text(encoding="utf-8") == "keep me\n"
    golden = PROCESS["directory_at_socket_path"]
    assert golden["exit_code"] == result.returncode


def test_indexeddb_kind_is_served() -> None:
    with Provider(PROVIDERS, "idb", "indexeddb") as provider:
        life = runtime_clients.ProviderLifecycleClient(provider.channel)
        identity = life.get_provider_identity(EMPTY, timeout=TIMEOUT)
        assert identity.kind == runtime_pb2.PROVIDER_KIND_INDEXEDDB
        db = datastore_clients.IndexedDBClient(provider.channel)
        create = datastore_pb2.CreateObjectStoreRequest(name="users")
        db.create_object_store(create, timeout=TIMEOUT)
        with pytest.raises(RPCError) as info:
            db.create_object_store(create, timeout=TIMEOUT)
        assert (info.value.code, info.value.message) == (
            grpc.StatusCode.ALREADY_EXISTS,
            "store users exists",
        )
        with pytest.raises(RPCError) as info:
            db.get(datastore_pb2.ObjectStoreRequest(store="users"), timeout=TIMEOUT)
        assert (info.value.code, info.value.message) == (
            grpc.StatusCode.UNIMPLEMENTED,
            "gestalt.provider.v1.IndexedDB.Get is not implemented by this provider",
        )
        assert provider.stop() == 0
    assert "CALL create_object_store users" in provider.stderr()


# -- [tool.gestalt] in pyproject.toml --------------------------------------------------------


def test_pyproject_integration_target_with_only_root(tmp_path: Path) -> None:
    shutil.copy(EX1 / "search_plugin.py", tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "search"\n\n[tool.gestalt]\nprovider = "search_plugin:plugin"\n',
        encoding="utf-8",
    )
    target = tmp_path / "catalog.yaml"
    result = run_cli([str(tmp_path)], timeout=TIMEOUT, GESTALT_PLUGIN_WRITE_CATALOG=str(target))
    assert (result.returncode, result.stderr) == (0, "")
    assert target.read_text(encoding="utf-8") == expected_ex1_catalog()


def test_pyproject_cache_target_with_only_root(tmp_path: Path) -> None:
    shutil.copy(EX4 / "kinds.py", tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gestalt]\nsomething_else = "ignored"\ncache = "kinds:cache"\n', encoding="utf-8"
    )
    path = tmp_path / "p.sock"
    with served([str(tmp_path)], str(path), tmp_path / "log.txt", unix=path) as runtime:
        life = runtime_clients.ProviderLifecycleClient(runtime.channel)
        identity = life.get_provider_identity(EMPTY, timeout=TIMEOUT)
        assert identity.kind == runtime_pb2.PROVIDER_KIND_CACHE
        assert runtime.stop() == 0


def test_root_without_pyproject_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli([str(tmp_path)], timeout=TIMEOUT)
    assert (result.returncode, result.stderr) == (2, USAGE + "\n")


MALFORMED = [
    pytest.param("[tool.gestalt\nprovider = 1\n", ["invalid TOML"], id="invalid-toml"),
    pytest.param(
        "[tool.gestalt]\nprovider = 3\n",
        ["tool.gestalt.provider must be a non-empty string"],
        id="provider-not-a-string",
    ),
    pytest.param(
        '[tool.gestalt]\ncache = "  "\n',
        ["tool.gestalt.cache must be a non-empty string"],
        id="blank-cache",
    ),
    pytest.param('[project]\nname = "x"\n', ["no [tool.gestalt] table"], id="no-table"),
    pytest.param(
        '[tool.gestalt]\nname = "x"\n',
        ["[tool.gestalt] has no provider key", "'provider'"],
        id="no-provider-key",
    ),
    pytest.param('tool = "oops"\n', ["tool"], id="tool-not-a-table"),
    pytest.param(
        '[tool.gestalt]\nprovider = "search_plugin:"\n',
        ["tool.gestalt.provider", "after ':'"],
        id="bad-target-value",
    ),
]


@pytest.mark.parametrize(("content", "fragments"), MALFORMED)
def test_malformed_pyproject_names_file_and_key(
    content: str, fragments: list[str], tmp_path: Path
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(content, encoding="utf-8")
    result = run_cli([str(tmp_path)], timeout=TIMEOUT, GESTALT_PLUGIN_SOCKET=str(tmp_path / "s"))
    assert_config_error(result, str(pyproject.resolve()), *fragments)


# -- bundled gestalt-runtime.json ----------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with ``gestalt.gen`` inside, as a frozen bundle lays it out."""
    base = tmp_path_factory.mktemp("bundle")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "src" / "gestalt", base / "gestalt", ignore=ignore)
    shutil.copytree(REPO / "generated" / "gestalt" / "gen", base / "gestalt" / "gen", ignore=ignore)
    shutil.copy(EX1 / "search_plugin.py", base)
    return base


def run_bundled(
    bundle: Path, config: dict[str, Any] | str, catalog: Path, args: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Write the bundled config and run the runtime from the bundle in catalog mode."""
    text = config if isinstance(config, str) else json.dumps(config)
    (bundle / "gestalt" / "gestalt-runtime.json").write_text(text, encoding="utf-8")
    return run_cli(
        args or [],
        timeout=TIMEOUT,
        PYTHONPATH=str(bundle),
        GESTALT_PLUGIN_WRITE_CATALOG=str(catalog),
    )


BUNDLED = PROCESS["bundled_config"]


@pytest.mark.parametrize(
    ("index", "first_line"),
    [
        (0, "name: renamed-search"),
        (1, "name: My-Plugin"),  # slugged; the reference kept "My Plugin!" (quirk 17)
        (2, "name: search"),
        (4, "name: search"),  # arguments given: the bundled config is not read
    ],
    ids=["renamed", "slugged", "blank-name", "arguments-win"],
)
def test_bundled_config(index: int, first_line: str, bundle: Path, tmp_path: Path) -> None:
    case = BUNDLED[index]
    catalog = tmp_path / "catalog.yaml"
    result = run_bundled(bundle, case["gestalt_runtime_json"], catalog, golden_args(case))
    assert (result.returncode, result.stderr) == (case["exit_code"], "") == (0, "")
    text = catalog.read_text(encoding="utf-8")
    assert text.splitlines()[0] == first_line
    if index != 1:
        assert first_line == case["catalog_first_line"]
    # Apart from the name, the catalog is the one written from source.
    assert text.split("\n", 1)[1] == expected_ex1_catalog().split("\n", 1)[1]


def test_bundled_config_with_blank_target(bundle: Path, tmp_path: Path) -> None:
    case = BUNDLED[3]
    catalog = tmp_path / "catalog.yaml"
    result = run_bundled(bundle, case["gestalt_runtime_json"], catalog)
    config = bundle / "gestalt" / "gestalt-runtime.json"
    assert result.returncode == case["exit_code"] == 1
    assert_config_error(result, f"{config} is missing target")
    assert not catalog.exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "cannot read the bundled runtime config"), ("[1]", "expected a JSON object")],
    ids=["invalid-json", "not-an-object"],
)
def test_bundled_config_malformed(
    content: str, fragment: str, bundle: Path, tmp_path: Path
) -> None:
    result = run_bundled(bundle, content, tmp_path / "catalog.yaml")
    assert_config_error(result, str(bundle / "gestalt" / "gestalt-runtime.json"), fragment)
