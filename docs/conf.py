"""Sphinx configuration for the gestalt-sdk documentation (built with -W in the test suite)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Generic

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "generated")]

project = "gestalt-sdk"
author = "gestalt-sdk authors"
copyright = "gestalt-sdk authors"
# No viewcode: its pages would list the private modules the public names live in.
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "quirks.md"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
html_theme = "alabaster"
html_title = "gestalt-sdk"


def _private(base: object) -> bool:
    """A helper class: its name is private, or it lives in a private module of ``gestalt``
    without being one of the public names (such as the clients' shared bases)."""
    name = getattr(base, "__name__", "")
    if name.startswith("_"):
        return True
    module = getattr(base, "__module__", "")
    if not module.startswith("gestalt._") and ".local._" not in module:
        return False
    import gestalt
    import gestalt.local

    return all(getattr(package, name, None) is not base for package in (gestalt, gestalt.local))


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a class's public ancestors instead of the private helper classes it derives from."""
    i = 0
    while i < len(bases):
        base = getattr(bases[i], "__origin__", bases[i])
        if _private(base):
            bases[i : i + 1] = [b for b in base.__bases__ if b not in (object, Generic)]
        else:
            i += 1
    if not bases:
        bases.append(object)


def setup(app: Any) -> None:
    """Sphinx extension hook of this configuration."""
    app.connect("autodoc-process-bases", _public_bases)
