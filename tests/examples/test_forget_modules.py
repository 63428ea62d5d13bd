"""Which modules an in-process start forgets: the provider's own sources, nothing else.

Real files under a provider folder are imported, then ``forget_modules`` runs on the folder.
(``test_inprocess_venv.py`` does the same end to end with a real venv and pytest.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gestalt.testing._harness import forget_modules

FILES = {
    "own_provider": "own_provider.py",
    "own_helpers": "helpers/own_helpers.py",
    "venv_dep": ".venv/lib/python3.11/site-packages/venv_dep.py",
    "tox_dep": ".tox/py311/lib/tox_dep.py",
    "test_own_provider": "tests/test_own_provider.py",
}


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Path]:
    """A provider folder whose modules (see ``FILES``) are all imported."""
    root = tmp_path / "provider"
    for name, relative in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"NAME = {name!r}\n")
    (root / ".tox" / "py311" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    folders = sorted({str((root / relative).parent) for relative in FILES.values()})
    sys.path[:0] = folders
    try:
        for name in FILES:
            importlib.import_module(name)
        yield root
    finally:
        del sys.path[: len(folders)]
        for name in FILES:
            sys.modules.pop(name, None)


def test_only_the_providers_own_sources_are_forgotten(provider: Path) -> None:
    forget_modules(provider)
    assert {name for name in FILES if name in sys.modules} == {
        "venv_dep",
        "tox_dep",
        "test_own_provider",
    }
    assert sys.modules["grpc"] is grpc


def test_an_environment_around_the_provider_does_not_shield_it(
    provider: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider folder inside the interpreter's prefix (e.g. /usr/local/app under
    # /usr/local): its own modules are still the provider's.
    monkeypatch.setattr(sys, "prefix", str(provider.parent))
    forget_modules(provider)
    assert "own_provider" not in sys.modules
    assert "venv_dep" in sys.modules
