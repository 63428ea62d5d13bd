"""Type checking of user code: ``Model`` is a ``dataclass_transform`` and decorators keep types.

Runs ``mypy --strict`` (the project's configuration) on ``typing/models_ok.py``, which must be
clean, and ``typing/models_bad.py``, which must report exactly the errors marked in it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MARK = re.compile(r"# error: ([a-z-]+)$")


def run_mypy(path: Path, cache: Path) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.findall(rf"{re.escape(path.name)}:(\d+): error: .*\[([a-z-]+)\]$", done.stdout, re.M)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not found):
        pytest.fail(f"mypy did not run cleanly:\n{done.stdout}\n{done.stderr}")
    return [(int(line), code) for line, code in found]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mypy")
    return tmp_path_factory.mktemp("mypy-cache")


def test_valid_user_code_type_checks(cache: Path) -> None:
    assert run_mypy(HERE / "typing" / "models_ok.py", cache) == []


def test_wrong_model_usage_is_reported(cache: Path) -> None:
    path = HERE / "typing" / "models_bad.py"
    expected = [
        (number, match.group(1))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if (match := MARK.search(line))
    ]
    assert expected and run_mypy(path, cache) == expected
