"""The repository stands alone: its tests need nothing beside the checkout.

The working tree's files (what ``git ls-files`` lists, committed or not) are copied into an
empty temporary directory with no ``shared/`` or anything else around it; the whole suite is
collected there and the tests that read test data run there against that copy's own code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Tests that read tests/data: protocol descriptors, seed signatures, golden catalogs and
# transcripts.
DATA_READERS = [
    "tests/codegen/test_protocol_compat.py",
    "tests/test_seed_api.py",
    "tests/authoring/test_catalog_goldens.py",
    "tests/clients/test_cache.py::test_golden_cache_wire",
    "tests/runtime/test_integration.py",
]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree alone in an empty directory."""
    root = tmp_path_factory.mktemp("alone") / "gestalt-sdk"
    for name in _tracked_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    assert sorted(p.name for p in root.parent.iterdir()) == ["gestalt-sdk"]
    return root


def _pytest(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    # The copy's own code comes first, ahead of the checkout the venv is installed from.
    env["PYTHONPATH"] = os.pathsep.join([str(clone / "src"), str(clone / "generated")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_whole_suite_collects_in_a_lone_copy(clone: Path) -> None:
    run = _pytest(clone, "--collect-only", "-q")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " tests collected" in run.stdout or " test collected" in run.stdout
    assert "error" not in run.stdout.splitlines()[-1].lower()


def test_the_tests_reading_test_data_pass_in_a_lone_copy(clone: Path) -> None:
    run = _pytest(clone, "-q", "-x", *DATA_READERS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout.splitlines()[-1]


def test_the_copy_runs_its_own_code(clone: Path) -> None:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(clone / "src"), str(clone / "generated")])
    )
    code = "import gestalt, gestalt.gen; print(gestalt.__file__); print(*gestalt.gen.__path__)"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=clone
    )
    package, gen = run.stdout.split()
    assert Path(package).is_relative_to(clone) and Path(gen).is_relative_to(clone)
