"""Release builds: ``python -m gestalt._build ROOT TARGET OUTPUT NAME KIND GOOS GOARCH``.

The host's packaging step calls this (contract 1.1) to turn a provider directory into one
executable file; ``gestalt build [ROOT] [-o OUTPUT]`` (:func:`build_project`) does the same
with the target, kind and name read from ``[tool.gestalt]`` and this machine's platform.

The executable embeds ``gestalt-runtime.json`` (target, plugin name, kind) and serves exactly
like ``python -m gestalt._runtime`` would (it runs the runtime with no arguments, which reads
that bundled config). Builds use PyInstaller in one-file mode (the ``build`` extra:
``pip install 'gestalt-sdk[build]'``), bundle every ``gestalt`` submodule and the target module,
put ROOT on the module path, and are reproducible: ``SOURCE_DATE_EPOCH`` defaults to 0 and
PyInstaller's hash seed is fixed.

Only native builds are possible: GOOS/GOARCH must name the machine running the build.
Everything is checked before PyInstaller runs, the target included: it is imported in a
child process the way the runtime imports it, so a typo fails in a second, not after a
build. Problems (usage, missing PyInstaller, foreign platform, bad target, failed build) are
one ``gestalt build: ...`` line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

USAGE = (
    "usage: python -m gestalt._build ROOT MODULE[:ATTRIBUTE] OUTPUT PLUGIN_NAME RUNTIME_KIND "
    "GOOS GOARCH"
)
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# As ``python -m gestalt._runtime`` (see its ``__main__``), with the bundled configuration.
_ENTRY = """\
import sys
from gestalt._runtime import collect_for_start_up
collect_for_start_up()
from gestalt._runtime.process import main
sys.exit(main([]))
"""


class BuildError(Exception):
    """The build cannot run or failed; the message says why."""


def native_platform() -> tuple[str, str]:
    """This machine as Go names it: (GOOS, GOARCH)."""
    goos = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    return goos, _ARCH.get(machine, machine)


def build(
    root: Path, target: str, output: Path, plugin_name: str, kind: str, goos: str, goarch: str
) -> Path:
    """Build the executable at ``output`` and return its path.

    Every input is checked first (the target by importing it in a child process); a
    :class:`BuildError` says what is wrong.
    """
    from gestalt._authoring.providers import ProviderKind
    from gestalt._runtime.process import RuntimeConfigError, split_target
    from gestalt._runtime.project import target_problem

    if not root.is_dir():
        raise BuildError(f"{root}: no such directory")
    try:
        module, _ = split_target(target)
        runtime_kind = ProviderKind.parse(kind)
    except (RuntimeConfigError, ValueError) as exc:
        raise BuildError(str(exc)) from None
    host_os, host_arch = native_platform()
    if (goos.lower(), goarch.lower()) != (host_os, host_arch):
        raise BuildError(
            f"cannot build for {goos}/{goarch} on {host_os}/{host_arch}: PyInstaller only "
            "builds for the machine it runs on; run the build on a matching machine"
        )
    problem = target_problem(root, target, runtime_kind)
    if problem is not None:
        detail = problem if target in problem else f"target {target!r}: {problem}"
        raise BuildError(f"{detail} (nothing was built)")
    if shutil.which("pyinstaller") is None and not _has_module("PyInstaller"):
        raise BuildError(
            "PyInstaller is not installed; install the build extra: "
            "pip install 'gestalt-sdk[build]'"
        )
    config = {"target": target, "plugin_name": plugin_name, "runtime_kind": runtime_kind.value}
    output = output.resolve()
    # A fixed work directory: paths of the build inputs end up in the executable, so a random
    # temporary directory would make two builds of the same sources differ.
    work = Path(tempfile.gettempdir()) / f"gestalt-build-{_digest(str(output))}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "gestalt-runtime.json").write_text(json.dumps(config), encoding="utf-8")
        entry = work / "gestalt_provider_main.py"
        entry.write_text(_ENTRY, encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "PyInstaller",
            "--onefile",
            "--noconfirm",
            "--clean",
            "--log-level=WARN",
            f"--name={output.name}",
            f"--distpath={output.parent}",
            f"--workpath={work / 'build'}",
            f"--specpath={work}",
            f"--paths={root.resolve()}",
            f"--paths={_stage_sdk(work)}",
            f"--hidden-import={module}",
            "--collect-submodules=gestalt",
            "--collect-submodules=gestalt.gen",
            f"--add-data={work / 'gestalt-runtime.json'}{os.pathsep}.",
            str(entry),
        ]
        env = dict(os.environ)
        env.setdefault("SOURCE_DATE_EPOCH", "0")
        env["PYTHONHASHSEED"] = "0"
        run = subprocess.run(command, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            tail = "\n".join(run.stderr.strip().splitlines()[-10:])
            raise BuildError(f"PyInstaller failed (exit status {run.returncode}):\n{tail}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not output.is_file():
        raise BuildError(f"PyInstaller reported success but {output} was not written")
    return output


def build_project(
    root: Path,
    output: Path | None = None,
    *,
    name: str | None = None,
    goos: str | None = None,
    goarch: str | None = None,
) -> Path:
    """Build the provider under ``root`` as its ``[tool.gestalt]`` table declares it.

    The target and kind come from ``ROOT/pyproject.toml``; ``name`` (the plugin name the
    executable embeds) defaults to the table's optional ``name`` key, else the plugin keeps
    its own; ``output`` defaults to ``ROOT/dist/<name or directory name>``; GOOS/GOARCH to
    this machine.
    """
    from gestalt._authoring.catalog import slug
    from gestalt._runtime.project import ProjectError, load_launch_spec

    try:
        spec = load_launch_spec(root)
    except ProjectError as exc:
        raise BuildError(str(exc)) from None
    plugin_name = spec.plugin_name if name is None else name.strip()
    if output is None:
        output = root / "dist" / slug(plugin_name or root.resolve().name)
    host_os, host_arch = native_platform()
    return build(
        root,
        spec.target,
        output,
        plugin_name,
        spec.kind.value,
        goos or host_os,
        goarch or host_arch,
    )


def _stage_sdk(work: Path) -> Path:
    """One merged copy of the ``gestalt`` package for PyInstaller to analyse.

    In a source checkout ``gestalt.gen`` lives in another folder and joins the package at run
    time (``pkgutil.extend_path``), which PyInstaller's static analysis cannot follow; in a
    wheel the copy is simply the installed package.
    """
    import gestalt

    staged = work / "sdk"
    for path in gestalt.__path__:
        shutil.copytree(
            path,
            staged / "gestalt",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "gestalt-runtime.json"),
        )
    return staged


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 7:
        print(USAGE, file=sys.stderr)
        return 2
    root, target, output, name, kind, goos, goarch = args
    try:
        path = build(Path(root), target, Path(output), name, kind, goos, goarch)
    except BuildError as exc:
        print(f"gestalt build: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
