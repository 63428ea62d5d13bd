"""Lazy public names: ``gestalt/__init__.py`` declares them once, as imports for type checkers.

The ``if TYPE_CHECKING:`` block of the package's ``__init__`` is compiled although it never
runs, so its import instructions are the list of public names and the modules defining them.
This module reads that list from the package's code object (the source may be absent, as in a
single-file build) the first time a name is asked for, and imports the name's module then.
"""

from __future__ import annotations

import functools
import importlib
import opcode
import sys
from types import CodeType

_IMPORT_NAME = opcode.opmap["IMPORT_NAME"]
_IMPORT_FROM = opcode.opmap["IMPORT_FROM"]
_STORE_NAME = opcode.opmap["STORE_NAME"]
_EXTENDED_ARG = opcode.EXTENDED_ARG


@functools.cache
def exports(package: str) -> dict[str, tuple[str, str]]:
    """Public name -> ``(module, attribute)`` for every ``from M import A as N`` in ``package``.

    The three instructions involved name their operand by its index in ``co_names``, so one
    pass over the raw bytecode (two bytes an instruction; inline caches are opcode 0) finds
    them: ``dis`` would take ten times longer decoding every instruction.
    """
    code = _code(package)
    names, raw = code.co_names, code.co_code
    found: dict[str, tuple[str, str]] = {}
    module = attribute = ""
    extended = 0
    for index in range(0, len(raw), 2):
        op, arg = raw[index], raw[index + 1] | extended
        extended = arg << 8 if op == _EXTENDED_ARG else 0
        if op == _IMPORT_NAME:
            module = names[arg]
        elif op == _IMPORT_FROM:
            attribute = names[arg]
        elif op == _STORE_NAME and attribute:
            if module.startswith("gestalt.") and not names[arg].startswith("_"):
                found[names[arg]] = (module, attribute)
            attribute = ""
    return found


def _code(package: str) -> CodeType:
    """The package ``__init__``'s code: from its loader, or compiled from its file."""
    module = sys.modules[package]
    get_code = getattr(getattr(module.__spec__, "loader", None), "get_code", None)
    if get_code is not None:  # source and bytecode loaders, PyInstaller's frozen importer
        code: CodeType = get_code(package)
        return code
    with open(str(module.__file__), "rb") as source:  # loaders without get_code (pytest's)
        return compile(source.read(), str(module.__file__), "exec", dont_inherit=True)


def resolve(package: str, name: str) -> object:
    """The object behind public ``name`` of ``package``; ``AttributeError`` if there is none."""
    target = exports(package).get(name)
    if target is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, attribute = target
    return getattr(importlib.import_module(module), attribute)


def public_names(package: str) -> list[str]:
    """The public names of ``package`` as ``dir()`` and ``__all__`` show them.

    Sorted like isort sorts imports: constants, then classes, then functions.
    """
    return sorted(exports(package), key=lambda name: (not name.isupper(), name[0].islower(), name))
