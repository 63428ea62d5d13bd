"""How the ``gestalt`` command talks to people and scripts: its output and its errors."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO


class CommandError(Exception):
    """A command failed for a reason the user can act on; printed as one line.

    ``details`` (a provider's traceback, say) is printed too with ``--debug``.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def json_object(text: str, what: str, *, plural: bool = False) -> dict[str, Any]:
    """``text`` parsed as a JSON object; ``what`` (``plural`` or not) names it in errors."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        verb = "are" if plural else "is"
        raise CommandError(f"{what} {verb} not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError(f"{what} must be a JSON object")
    return value


class Output:
    """Human or JSON output, colour only on a terminal; lines from several threads never mix."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.color = sys.stdout.isatty() and not as_json
        self._lock = threading.Lock()

    def style(self, text: str, code: str) -> str:
        """``text`` in ANSI colour ``code`` when writing to a terminal."""
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def line(self, text: str = "") -> None:
        """A line for people (suppressed in JSON mode)."""
        if not self.as_json:
            self._write(sys.stdout, text)

    def stream(self, text: str) -> None:
        """A line of what runs (a provider's output, its calls): on stdout for people, on
        stderr in JSON mode so that stdout stays one document."""
        self._write(sys.stderr if self.as_json else sys.stdout, text)

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def document(self, data: Any) -> None:
        """The JSON document of a command in JSON mode."""
        if self.as_json:
            print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)
