"""Release builds: ``gestalt build`` and ``python -m gestalt._build`` on the hello example.

The build itself (PyInstaller, about half a minute) runs once for the module, through
``gestalt build ROOT -o OUTPUT`` on a copy of the example whose ``[tool.gestalt]`` names the
plugin; the reproducibility test rebuilds it with the host's seven arguments and expects the
same bytes. The executable is then started the way the host starts it: no arguments, the
host's reduced environment (no ``PYTHONPATH``: everything must be inside the file),
``GESTALT_PLUGIN_SOCKET`` in a fresh directory, a working directory that has nothing to do
with the project. Only those tests carry the ``build`` marker; the checks made before
PyInstaller runs (usage, platform, target, project file) take a second each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2

from gestalt._authoring.providers import ProviderKind
from gestalt._devtools.build import _ENTRY, USAGE, _digest, native_platform
from gestalt._runtime import START_UP_GC
from gestalt._runtime.launch import INHERITED_ENV, handshake
from gestalt.gen.v1 import plugin_clients, plugin_pb2
from tests.cli.conftest import HELLO, gestalt, one_line_error, user_env

GOOS, GOARCH = native_platform()
#: The plugin name the built copy's ``[tool.gestalt]`` declares (the plugin itself: "hello").
BUILT_NAME = "hello-bin"


def build(*args: str | Path, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m gestalt._build ARGS``, as the host's packaging step calls it."""
    return subprocess.run(
        [sys.executable, "-m", "gestalt._build", *map(str, args)],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def provider_copy(parent: Path, table: str) -> Path:
    """A copy of the hello example whose ``[tool.gestalt]`` table is ``table``."""
    root = parent / "hello"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__", ".gestalt"))
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text[: text.index("[tool.gestalt]")] + table, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hello example built into one file by ``gestalt build`` (once for the module)."""
    out = tmp_path_factory.mktemp("build")
    root = provider_copy(out, f'[tool.gestalt]\nprovider = "hello:plugin"\nname = "{BUILT_NAME}"\n')
    target = out / "hello-provider"
    run = gestalt("build", root, "-o", target, cwd=out, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{target}\n"
    assert os.access(target, os.X_OK)
    return target


def host_env(**extra: str) -> dict[str, str]:
    """Only what the host passes: its inherited variables plus the provider's own."""
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env.update(extra)
    return env


class Launched:
    """The executable started like the host starts a provider."""

    def __init__(self, executable: Path, workdir: Path, **env: str) -> None:
        self.socket = workdir / "plugin.sock"
        self.log = workdir / "provider.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(executable)],
                cwd=workdir,
                env=host_env(GESTALT_PLUGIN_SOCKET=str(self.socket), **env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.channel: grpc.Channel | None = None

    def connect(self, timeout: float = 60) -> grpc.Channel:
        """Wait for the socket and a ready channel to it."""
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the executable never listened"
            time.sleep(0.02)
        self.channel = grpc.insecure_channel(f"unix:{self.socket}")
        grpc.channel_ready_future(self.channel).result(timeout=10)
        return self.channel

    def stop(self) -> int:
        """SIGTERM, as the host stops a provider; the exit status."""
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL the executable's process group if it still runs."""
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def launch(executable: Path, tmp_path: Path) -> Iterator[type[Launched]]:
    """:class:`Launched`, with every executable it starts killed after the test."""
    started: list[Launched] = []

    class Tracked(Launched):
        """A :class:`Launched` remembered for clean-up."""

        def __init__(self, executable: Path, workdir: Path, **env: str) -> None:
            super().__init__(executable, workdir, **env)
            started.append(self)

    yield Tracked
    for launched in started:
        launched.kill()


@pytest.mark.build
def test_executable_serves_like_the_runtime(
    executable: Path, launch: type[Launched], tmp_path: Path
) -> None:
    # Without GESTALT_PLUGIN_PARENT_PID: see test_executable_watches_the_host_not_its_bootloader.
    provider = launch(executable, tmp_path)
    channel = provider.connect()
    metadata = handshake(channel, ProviderKind.INTEGRATION, "hello", {})
    assert metadata.supports_session_catalog and metadata.supports_post_connect
    client = plugin_clients.IntegrationProviderClient(channel)
    params = struct_pb2.Struct()
    params.update({"name": "Bin"})
    request = plugin_pb2.ExecuteRequest(operation="greet", params=params)
    result = client.execute(request, timeout=10)
    assert (result.status, result.body) == (
        200,
        '{"message":"Hello Bin. (asked by someone)","times":1}',
    )
    assert provider.stop() == 0, provider.log.read_text()
    assert not provider.socket.exists()


@pytest.mark.build
def test_executable_exports_the_catalog(executable: Path, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    run = subprocess.run(
        [str(executable)],
        cwd=tmp_path,
        env=host_env(GESTALT_PLUGIN_WRITE_CATALOG=str(path)),
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    expected = yaml.safe_load(gestalt("catalog", HELLO, cwd=tmp_path).stdout)
    assert expected["name"] == "hello"
    # The name from [tool.gestalt] replaced the plugin's own, as the host's PLUGIN_NAME does.
    assert yaml.safe_load(path.read_text()) == {**expected, "name": BUILT_NAME}


@pytest.mark.build
def test_executable_watches_the_host_not_its_bootloader(
    executable: Path, launch: type[Launched], tmp_path: Path
) -> None:
    provider = launch(executable, tmp_path, GESTALT_PLUGIN_PARENT_PID=str(os.getpid()))
    channel = provider.connect()
    time.sleep(1.5)  # three polls of the parent
    assert provider.proc.poll() is None, provider.log.read_text()
    handshake(channel, ProviderKind.INTEGRATION, "hello", {})
    assert provider.stop() == 0


@pytest.mark.build
def test_builds_are_reproducible_and_both_forms_agree(executable: Path) -> None:
    first = hashlib.sha256(executable.read_bytes()).hexdigest()
    run = build(
        executable.parent / "hello",
        "hello:plugin",
        executable,
        BUILT_NAME,
        "integration",
        GOOS,
        GOARCH,
        cwd=executable.parent,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert hashlib.sha256(executable.read_bytes()).hexdigest() == first


# -- what is checked before PyInstaller runs (fast) ------------------------------------------


def assert_nothing_built(output: Path, started: float) -> None:
    """No output, no PyInstaller work directory, and a fast answer."""
    assert not output.exists()
    work = Path(tempfile.gettempdir()) / f"gestalt-build-{_digest(str(output.resolve()))}"
    assert not work.exists()
    assert time.monotonic() - started < 20


def test_the_executables_entry_starts_as_python_m_gestalt_runtime_does() -> None:
    # The entry sets start-up's collector thresholds before the runtime's main() runs.
    probe = (
        "import gc\n"
        "from gestalt._runtime import process\n"
        "process.main = lambda argv: print(list(gc.get_threshold())) or 0\n"
        f"exec({_ENTRY!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(list(START_UP_GC))


def test_help_lists_the_options(tmp_path: Path) -> None:
    run = gestalt("build", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(
        "usage: gestalt build [-h] [-o OUTPUT] [--name NAME] [--goos GOOS] [--goarch GOARCH] "
        "[ROOT]\n"
    )
    for option in ("-o OUTPUT, --output OUTPUT", "--name NAME", "--goos GOOS", "--goarch GOARCH"):
        assert f"\n  {option}" in run.stdout
    words = " ".join(run.stdout.split())
    assert "[tool.gestalt]" in words
    assert "ROOT TARGET OUTPUT NAME KIND GOOS GOARCH" in words


def test_a_target_typo_fails_before_the_build(tmp_path: Path) -> None:
    output = tmp_path / "out"
    cases = {
        '[tool.gestalt]\nprovider = "hello:plgin"\n': "hello:plgin did not resolve: no "
        "attribute 'plgin' (nothing was built)",
        '[tool.gestalt]\nprovider = "helo:plugin"\n': "target 'helo:plugin': cannot import "
        "module 'helo' under {root} (nothing was built)",
        '[tool.gestalt]\ncache = "hello:plugin"\n': "hello:plugin is a gestalt.Plugin (an "
        "integration provider) but the runtime kind is 'cache' (nothing was built)",
    }
    for i, (table, message) in enumerate(cases.items()):
        root = provider_copy(tmp_path / str(i), table)
        started = time.monotonic()
        run = gestalt("build", root, "-o", output, cwd=tmp_path)
        assert one_line_error(run) == message.format(root=root), table
        assert_nothing_built(output, started)


def test_the_host_form_checks_the_target_too(tmp_path: Path) -> None:
    output = tmp_path / "out"
    started = time.monotonic()
    run = build(HELLO, "hello:plgin", output, "hello", "integration", GOOS, GOARCH, cwd=tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (
        1,
        "",
        "gestalt build: hello:plgin did not resolve: no attribute 'plgin' (nothing was built)\n",
    )
    assert_nothing_built(output, started)


def test_project_problems(tmp_path: Path) -> None:
    assert one_line_error(gestalt("build", "missing", cwd=tmp_path)) == (
        "missing: no such directory"
    )
    assert one_line_error(gestalt("build", cwd=tmp_path)) == (
        f"{tmp_path}: no pyproject.toml with a [tool.gestalt] table"
    )
    root = provider_copy(tmp_path, '[tool.gestalt]\nprovider = "hello:plugin"\nname = 3\n')
    assert one_line_error(gestalt("build", cwd=root)) == (
        f"{root}/pyproject.toml: tool.gestalt.name must be a string"
    )


def test_foreign_platform(tmp_path: Path) -> None:
    foreign_os = "windows" if GOOS != "windows" else "linux"
    foreign_arch = "arm64" if GOARCH != "arm64" else "amd64"
    for goos, goarch in ((foreign_os, GOARCH), (GOOS, foreign_arch)):
        message = (
            f"cannot build for {goos}/{goarch} on {GOOS}/{GOARCH}: PyInstaller only builds for "
            "the machine it runs on; run the build on a matching machine"
        )
        run = build(
            HELLO,
            "hello:plugin",
            tmp_path / "x",
            "hello",
            "integration",
            goos,
            goarch,
            cwd=tmp_path,
        )
        assert (run.returncode, run.stderr) == (1, f"gestalt build: {message}\n")
        option = ("--goos", goos) if goos != GOOS else ("--goarch", goarch)
        via_cli = gestalt("build", HELLO, "-o", tmp_path / "x", *option, cwd=tmp_path)
        assert one_line_error(via_cli) == message
    assert not (tmp_path / "x").exists()


def test_wrong_argument_count(tmp_path: Path) -> None:
    run = build("a", "b", cwd=tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (2, "", USAGE + "\n")
    via_cli = gestalt("build", "a", "b", cwd=tmp_path)
    assert via_cli.returncode == 2
    assert via_cli.stderr.splitlines()[-1] == (
        "gestalt build: error: expected ROOT (read its [tool.gestalt] table) or the seven "
        "arguments ROOT TARGET OUTPUT NAME KIND GOOS GOARCH, got 2 arguments"
    )
    seven = ("a", "b", "c", "d", "e", "f", "g")
    with_option = gestalt("build", *seven, "-o", "x", cwd=tmp_path)
    assert with_option.returncode == 2
    assert with_option.stderr.endswith("error: with seven arguments no options apply\n")


def test_bad_inputs(tmp_path: Path) -> None:
    args = ("hello:plugin", tmp_path / "x", "hello", "integration", GOOS, GOARCH)
    missing = build("missing", *args, cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        1,
        "gestalt build: missing: no such directory\n",
    )
    bad_kind = build(
        HELLO, "hello:plugin", tmp_path / "x", "hello", "gadget", GOOS, GOARCH, cwd=tmp_path
    )
    assert (bad_kind.returncode, bad_kind.stderr) == (
        1,
        "gestalt build: unsupported runtime kind: 'gadget'\n",
    )
    via_cli = gestalt("build", "missing", *args, cwd=tmp_path)
    assert one_line_error(via_cli) == "missing: no such directory"


def test_the_name_in_tool_gestalt_is_what_the_executable_embeds(tmp_path: Path) -> None:
    # The executable runs the runtime with its bundled config; the runtime given only ROOT
    # reads the same three facts from [tool.gestalt], so its catalog shows the embedded name.
    table = '[tool.gestalt]\nprovider = "hello:plugin"\nname = "My Hello!"\n'
    root = provider_copy(tmp_path, table)
    path = tmp_path / "catalog.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "gestalt._runtime", str(root)],
        cwd=tmp_path,
        env={**user_env(), "GESTALT_PLUGIN_WRITE_CATALOG": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(path.read_text())["name"] == "My-Hello"
