"""Every class, function and method of the seed API reference exists with the seed's shape.

The seed API reference (kept as ``tests/data/seed/signatures.txt``) lists entries such as
``class KeyRange(lower=None, upper=None, lower_open=False, upper_open=False)[source]`` or
``get_many(keys)[source]``. For each entry this test finds the object in ``gestalt`` (a
top-level name, or a method of the class the entry follows) and compares parameter names,
order, kinds (``/``, ``*``) and literal defaults with ``inspect.signature``.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
from dataclasses import dataclass
from typing import Any

import pytest

import gestalt
from tests.conftest import DATA

ENTRY = re.compile(r"^(?:(class|exception) )?([A-Za-z_]\w*)(?:\((.*)\))?\[source\]$")


@dataclass(frozen=True)
class Entry:
    """One seed entry: where it is, what it names, its parameter text."""

    line: int
    owner: str | None
    name: str
    params: str
    is_class: bool


def _entries() -> list[Entry]:
    text = (DATA / "seed" / "signatures.txt").read_text(encoding="utf-8")
    entries = []
    owner: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = ENTRY.match(line.strip())
        if not match:
            continue
        kind, name, params = match.groups()
        params = params or ""
        if kind:
            owner = name
            entries.append(Entry(number, None, name, params, True))
        else:
            entries.append(Entry(number, owner, name, params, False))
    return entries


ENTRIES = _entries()


def _split(params: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in params:
        if char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _seed_params(params: str) -> list[tuple[str, str | None]]:
    """``(name or marker, default text)`` per parameter; markers are ``/`` and ``*``."""
    result: list[tuple[str, str | None]] = []
    for part in _split(params):
        name, sep, default = part.partition("=")
        result.append((name.strip(), default.strip() if sep else None))
    return result


def _candidates(entry: Entry) -> list[Any]:
    """The class attribute the entry follows, then the top-level name of the same name.

    The seed lists module-level functions (``operation``, ``session_catalog``) right after the
    methods of the class they relate to, so both readings are tried.
    """
    found = []
    if entry.owner is not None:
        cls = getattr(gestalt, entry.owner, None)
        if cls is not None and entry.name in dir(cls):
            found.append(getattr(cls, entry.name))
    if hasattr(gestalt, entry.name):
        found.append(getattr(gestalt, entry.name))
    return found


def _ours(obj: Any, is_class: bool) -> list[tuple[str, Any]]:
    signature = inspect.signature(obj)
    result: list[tuple[str, Any]] = []
    star_done = False
    params = list(signature.parameters.values())
    if params and params[0].name in ("self", "cls") and not is_class:
        params = params[1:]
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            if not any(q.kind is q.VAR_POSITIONAL for q in params):
                result.append(("*", None))
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            result.append((f"*{p.name}", None))
            star_done = True
        elif p.kind is p.VAR_KEYWORD:
            result.append((f"**{p.name}", None))
        else:
            result.append((p.name, p.default))
        if p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        ):
            result.append(("/", None))
    return result


def _same_default(seed: str | None, ours: Any) -> bool:
    if seed is None:
        return ours is inspect.Parameter.empty
    if ours is inspect.Parameter.empty:
        return False
    if seed in ("<factory>", "MISSING") or seed.isidentifier():
        # A factory, a sentinel or a named constant: present is all the seed tells us.
        return seed not in ("None", "True", "False") or ours == ast.literal_eval(seed)
    try:
        return bool(ours == ast.literal_eval(seed))
    except (ValueError, SyntaxError):
        return True


def _mismatch(entry: Entry, obj: Any) -> str | None:
    """Why ``obj`` does not have the seed's shape, or None when it does.

    Extra keyword-only parameters with defaults after the seed's (``timeout=``) are
    compatible extensions and allowed.
    """
    seed = _seed_params(entry.params)
    ours = _ours(obj, entry.is_class)
    extra = ours[len(seed) :]
    if seed and seed[-1][0] != "*" and extra[:1] == [("*", None)]:
        extra = extra[1:]
    if [n for n, _ in ours[: len(seed)]] != [n for n, _ in seed] or any(
        d is inspect.Parameter.empty for _, d in extra
    ):
        return f"seed has ({entry.params}), ours is {inspect.signature(obj)}"
    for (name, seed_default), (_, our_default) in zip(seed, ours, strict=False):
        if not name.startswith(("*", "/")) and not _same_default(seed_default, our_default):
            return f"{name}: seed default {seed_default}, ours {our_default!r}"
    return None


@pytest.mark.parametrize(
    "entry", ENTRIES, ids=[f"{e.owner + '.' if e.owner else ''}{e.name}:{e.line}" for e in ENTRIES]
)
def test_seed_entry_exists_with_its_shape(entry: Entry) -> None:
    candidates = _candidates(entry)
    assert candidates, f"{entry.name} (seed line {entry.line}) is missing from gestalt"
    obj = candidates[0]
    if entry.is_class and (not entry.params or issubclass(obj, enum.Enum)):
        return  # no constructor shown, or an enum's value lookup
    if entry.params.strip() in ("*args, **kwargs", "*args"):
        return  # a Protocol's generated constructor, or ``__exit__(*args)``
    problems = [_mismatch(entry, candidate) for candidate in candidates]
    assert None in problems, f"{entry.name} (seed line {entry.line}): {problems[0]}"


def test_the_seed_was_parsed() -> None:
    assert len(ENTRIES) > 100
    assert any(e.name == "KeyRange" for e in ENTRIES)
