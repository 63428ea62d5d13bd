"""Secrets provider: serves secrets from a JSON file named in the provider's config.

The file holds one JSON object of secret names to string values (see ``secrets.json`` beside
this module). The config key ``path`` names it; a relative path is taken relative to this
folder, and without the key ``secrets.json`` here is used. The file is checked when the host
configures the provider (a missing or malformed file fails the start-up, with the reason in the
provider log) and read again whenever it changes on disk, so rotating a secret needs no
restart. A name that is not in the file raises ``KeyError``, which the host sees as NOT_FOUND.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from gestalt import SecretsProvider

HERE = Path(__file__).resolve().parent


class SecretsFileError(Exception):
    """The secrets file cannot be used; the message names the file and the problem."""


def load_secrets(path: Path) -> dict[str, str]:
    """The secrets in ``path``: a JSON object whose values are all strings."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SecretsFileError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise SecretsFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SecretsFileError(f"{path}: expected a JSON object of names to values")
    wrong = sorted(name for name, value in data.items() if not isinstance(value, str))
    if wrong:
        raise SecretsFileError(f"{path}: values must be strings; not so for {', '.join(wrong)}")
    return data


class FileSecretsProvider(SecretsProvider):
    """Looks secrets up in a JSON file, reloading it when its modification time changes."""

    def __init__(self) -> None:
        self.path = HERE / "secrets.json"
        self._secrets: dict[str, str] = {}
        self._stamp: int | None = None
        self._lock = threading.Lock()

    def configure(self, name: str, config: dict[str, Any]) -> None:
        """Take the file from ``config["path"]`` and check that it can be read."""
        raw = config.get("path", "secrets.json")
        if not isinstance(raw, str) or not raw.strip():
            raise SecretsFileError(f"config path must be a non-empty string, not {raw!r}")
        self.path = HERE / raw.strip()  # an absolute path replaces HERE
        with self._lock:
            self._stamp = None
            self._reload_if_changed()

    def get_secret(self, name: str) -> str:
        """The value of secret ``name``; ``KeyError`` if the file does not have it."""
        with self._lock:
            self._reload_if_changed()
            return self._secrets[name]

    def _reload_if_changed(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise SecretsFileError(f"{self.path}: cannot read it ({exc.strerror})") from None
        if stamp != self._stamp:
            self._secrets = load_secrets(self.path)
            self._stamp = stamp


provider = FileSecretsProvider()
