"""Sphinx configuration for the gestalt-sdk documentation (built with -W in the test suite)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a class's public ancestors instead of the private helper classes it derives from."""
    i = 0
    while i < len(bases):
        base = getattr(bases[i], "__origin__", bases[i])
        if getattr(base, "__name__", "").startswith("_"):
            bases[i : i + 1] = [b for b in base.__bases__ if b is not object]
        else:
            i += 1
    if not bases:
        bases.append(object)


def setup(app: Any) -> None:
    """Sphinx extension hook of this configuration."""
    app.connect("autodoc-process-bases", _public_bases)
