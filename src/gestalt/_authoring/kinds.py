"""``ProviderKind``: the kinds of provider the runtime serves.

Its own small module because the runtime and ``Plugin`` need the kind and nothing else of
:mod:`gestalt._authoring.providers`, whose base classes and metadata dataclass an integration
plugin never uses; ``providers`` re-exports it.
"""

from __future__ import annotations

import enum


class ProviderKind(enum.StrEnum):
    """Runtime kinds the Python SDK can serve (the kind the host launches a provider as)."""

    INTEGRATION = "integration"
    AUTHENTICATION = "authentication"
    CACHE = "cache"
    S3 = "s3"
    AGENT = "agent"
    WORKFLOW = "workflow"
    SECRETS = "secrets"
    TELEMETRY = "telemetry"
    INDEXEDDB = "indexeddb"
    RUNTIME = "runtime"
    #: Served like the others, though the Gestalt host launches only Go authorization providers.
    AUTHORIZATION = "authorization"

    @classmethod
    def parse(cls, value: ProviderKind | str | None) -> ProviderKind:
        """Normalise a kind given as enum or text: trimmed, lower-cased, ``auth`` and ``""``."""
        if isinstance(value, ProviderKind):
            return value
        text = (value or "").strip().lower()
        if text == "":
            return cls.INTEGRATION
        if text == "auth":
            return cls.AUTHENTICATION
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unsupported runtime kind: {value!r}") from None
