"""Providers that subclass a kind's base class and implement nothing."""

from __future__ import annotations

from gestalt import CacheProvider, SecretsProvider


class BareCache(CacheProvider):
    """Every cache method is the base class's."""


class BareSecrets(SecretsProvider):
    """``get_secret`` is the base class's; ``start`` is data, not a hook (quirk 20)."""

    start = "not a method"


cache = BareCache()
secrets = BareSecrets()
