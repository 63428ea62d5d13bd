"""Targets the runtime must refuse: a class instead of an instance, a plain object."""

from __future__ import annotations

from gestalt import CacheProvider


class C(CacheProvider):
    """A cache provider class (the target names the class, not an instance)."""


class Plain:
    """Not derived from any provider base class."""


plain = Plain()
