"""In-process starts with the provider's virtual environment inside the provider folder.

The usual layout puts ``.venv/`` next to the provider module, so grpc, protobuf, pytest and the
provider's own dependencies are files under the provider root. Between in-process starts the
harness forgets the provider's source modules only; it must keep everything loaded from the
environment (and gestalt itself), or the next start imports grpc a second time and every later
test fails.

The test builds that layout for real: a provider folder with ``.venv/`` made by ``python -m
venv``, gestalt, pytest and their dependencies installed into it (their installed files linked
in, as pip would have laid them out), plus a module ``counting_dep`` of the provider's own
that lives only in that venv's site-packages. A pytest session run by the venv's interpreter,
from the provider's ``tests/`` folder, starts the provider in-process twice and checks which
modules survived.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

PROVIDER = '''
"""A provider that imports a dependency from its venv and counts its calls."""

import counting_dep

from gestalt import Plugin

plugin = Plugin("counter")
CALLS = 0


@plugin.operation
def bump() -> dict[str, int]:
    """Count this call; report the dependency's identity."""
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "dep": id(counting_dep)}
'''

DEPENDENCY = '''
"""Installed in the provider's venv; counts how often it was executed in this process."""

import builtins

builtins.counting_dep_loads = getattr(builtins, "counting_dep_loads", 0) + 1
'''

PYPROJECT = """
[project]
name = "counter"
version = "0"

[tool.gestalt]
provider = "counter:plugin"
"""

USER_TESTS = """
import builtins
import sys
from pathlib import Path

import counting_dep
import google.protobuf
import grpc
import pytest

from gestalt.testing import start_provider

ROOT = Path(__file__).resolve().parent.parent
KEPT = ["grpc", "google.protobuf", "pytest", "_pytest", "counting_dep", "gestalt", __name__]


def test_the_layout_is_the_usual_one():
    venv = ROOT / ".venv"
    assert Path(sys.prefix).resolve() == venv.resolve()
    for module in (grpc, google.protobuf, pytest, counting_dep):
        assert Path(module.__file__).resolve().is_relative_to(venv.resolve()), module


def test_two_starts_keep_the_environment():
    before = {name: sys.modules[name] for name in KEPT}
    served = []
    for _ in range(2):
        with start_provider(ROOT, mode="inprocess") as counter:
            result = counter.invoke("bump")
            assert result.status == 200, result
            assert result.body == {"calls": 1, "dep": id(counting_dep)}
            served.append(sys.modules["counter"])
    assert served[0] is not served[1], "the provider module was not imported afresh"
    assert "counter" not in sys.modules
    for name, module in before.items():
        assert sys.modules.get(name) is module, f"{name} was dropped between starts"
    assert builtins.counting_dep_loads == 1


def test_a_later_test_still_works(gestalt_provider):
    counter = gestalt_provider(ROOT, mode="inprocess")
    assert counter.invoke("bump").body["calls"] == 1
"""


def _requirements(name: str) -> list[str]:
    """Names of the distributions ``name`` needs on this interpreter (no extras)."""
    wanted = []
    for text in importlib.metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            wanted.append(requirement.name)
    return wanted


def _install(names: list[str], site: Path) -> None:
    """Lay the installed files of ``names`` and what they need out under ``site``.

    The files are hard links (copies across file systems) of this environment's installation,
    which is what ``pip install`` of the same wheels would write into the new venv.
    """
    done: set[str] = set()
    todo = list(names)
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in done:
            continue
        done.add(key)
        todo.extend(_requirements(key))
        for file in dist.files or []:
            if ".." in file.parts or "__pycache__" in file.parts:
                continue
            source = Path(str(dist.locate_file(file)))
            target = site / file
            if not source.is_file() or target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def _provider_with_venv(root: Path) -> Path:
    """A provider folder with its own ``.venv``; returns the venv's interpreter."""
    (root / "tests").mkdir(parents=True)
    (root / "counter.py").write_text(PROVIDER)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "tests" / "test_counter.py").write_text(USER_TESTS)
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    )
    assert site.is_relative_to(venv), site
    _install(["gestalt-sdk", "pytest"], site)
    (site / "counting_dep.py").write_text(DEPENDENCY)
    return python


def test_inprocess_starts_keep_a_venv_inside_the_provider(tmp_path: Path) -> None:
    root = tmp_path / "counter"
    python = _provider_with_venv(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    run = subprocess.run(
        [python, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Only the lines with words: Python's tracebacks underline code with rows of carets.
    report = "\n".join(line for line in run.stdout.splitlines() if line.strip(" ^~"))
    assert run.returncode == 0, report[-6000:] + run.stderr[-3000:]
    assert "3 passed" in run.stdout, run.stdout
