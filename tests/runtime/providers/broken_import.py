"""A provider module that fails while it is imported (the author's own bug)."""

from __future__ import annotations

raise RuntimeError("TOPSECRET-import: the provider module is broken")
