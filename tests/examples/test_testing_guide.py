"""The testing guide's example test file runs as written, async test included, with the
pytest configuration the guide gives (pytest-asyncio in ``auto`` mode)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.examples.conftest import EXAMPLES

GUIDE = REPO / "docs" / "guides" / "testing.rst"


def _blocks(language: str) -> list[str]:
    """The ``.. code-block:: LANGUAGE`` blocks of the guide, dedented."""
    found = []
    pattern = rf"^\.\. code-block:: {language}\n\n((?:(?:    .*)?\n)+)"
    for match in re.finditer(pattern, GUIDE.read_text(encoding="utf-8"), re.MULTILINE):
        lines = match.group(1).splitlines()
        found.append("\n".join(line.removeprefix("    ") for line in lines).strip() + "\n")
    return found


def test_the_guide_names_the_async_plugin_and_its_mode() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "pip install pytest-asyncio" in text
    assert _blocks("toml") == ['[tool.pytest.ini_options]\nasyncio_mode = "auto"\n']


def test_the_guides_fixture_example_passes(tmp_path: Path) -> None:
    (fixtures,) = [block for block in _blocks("python") if "gestalt_provider:" in block]
    assert "async def test_" in fixtures
    provider = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", provider)
    with (provider / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("\n" + _blocks("toml")[0])
    (provider / "tests").mkdir()
    (provider / "tests" / "test_guide.py").write_text(fixtures, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=provider,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout, run.stdout
    # Without the asyncio mode the async test is not run: the configuration is what makes it.
    (provider / "pyproject.toml").write_text(
        (EXAMPLES / "hello" / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    strict = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=provider,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert strict.returncode == 1, strict.stdout
    assert "1 failed, 3 passed" in strict.stdout, strict.stdout
