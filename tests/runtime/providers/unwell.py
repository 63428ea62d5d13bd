"""A secrets provider whose health is set through its config, for the HealthCheck tests.

``configure(name, {"health": MODE})`` picks what the next ``health_check()`` does; ``MODE`` is
one of the keys of ``FAILURES`` or ``"ok"``.
"""

from __future__ import annotations

from typing import Any

from gestalt import HealthChecker, SecretsProvider


class Unprintable(Exception):
    """An exception whose ``str()`` itself fails."""

    def __str__(self) -> str:
        raise RuntimeError("TOPSECRET-str")


FAILURES: dict[str, BaseException] = {
    "multiline": RuntimeError("disk full\non /var/lib\r\n\tretry\x1b[31m later"),
    "long": RuntimeError("slow " * 100 + "\nTraceback (most recent call last): tail"),
    "empty": ConnectionError(),
    "unprintable": Unprintable(),
}


class Unwell(SecretsProvider, HealthChecker):
    """Healthy until configured otherwise."""

    def __init__(self) -> None:
        self.mode = "ok"

    def configure(self, name: str, config: dict[str, Any]) -> None:
        self.mode = str(config.get("health", "ok"))

    def health_check(self) -> None:
        if self.mode != "ok":
            raise FAILURES[self.mode]

    def get_secret(self, name: str) -> str:
        return name


secrets = Unwell()
