"""The pinned generator toolchain; generating with anything else is refused."""

from __future__ import annotations

from importlib import metadata

#: Distribution -> exact version the committed ``generated/`` tree was produced with.
#: Keep in step with the ``dev`` extra in pyproject.toml.
PINS: dict[str, str] = {
    "grpcio-tools": "1.85.1",
    "mypy-protobuf": "5.1.0",
    "Jinja2": "3.1.6",
    "ruff": "0.17.5",
}


class ToolchainError(RuntimeError):
    """A generator tool is missing or not at its pinned version."""


def check() -> None:
    """Raise :class:`ToolchainError` naming every tool that is missing or off its pin."""
    problems = []
    for dist, want in PINS.items():
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed (need {want})")
            continue
        if have != want:
            problems.append(f"{dist} {have} is installed, the generator is pinned to {want}")
    if problems:
        raise ToolchainError(
            "refusing to generate: "
            + "; ".join(problems)
            + ". Install the pins with: pip install -e '.[dev]'"
        )
