"""Lazy public names: ``gestalt/__init__.py`` declares them once, as imports for type checkers.

The ``if TYPE_CHECKING:`` block of the package's ``__init__`` is compiled although it never
runs, so its import instructions are the list of public names and the modules defining them.
This module reads that list from the package's code object (the source may be absent, as in a
single-file build) the first time a name is asked for, and imports the name's module then.
"""

from __future__ import annotations

import dis
import functools
import importlib
import sys
from pathlib import Path
from types import CodeType


@functools.cache
def exports(package: str) -> dict[str, tuple[str, str]]:
    """Public name -> ``(module, attribute)`` for every ``from M import A as N`` in ``package``."""
    found: dict[str, tuple[str, str]] = {}
    module = attribute = ""
    for instruction in dis.get_instructions(_code(package)):
        if instruction.opname == "IMPORT_NAME":
            module = str(instruction.argval)
        elif instruction.opname == "IMPORT_FROM":
            attribute = str(instruction.argval)
        elif instruction.opname == "STORE_NAME" and attribute:
            if module.startswith("gestalt.") and not str(instruction.argval).startswith("_"):
                found[str(instruction.argval)] = (module, attribute)
            attribute = ""
    return found


def _code(package: str) -> CodeType:
    """The package ``__init__``'s code: from its loader, or compiled from its file."""
    module = sys.modules[package]
    get_code = getattr(getattr(module.__spec__, "loader", None), "get_code", None)
    if get_code is not None:  # source and bytecode loaders, PyInstaller's frozen importer
        code: CodeType = get_code(package)
        return code
    path = Path(str(module.__file__))  # loaders without get_code, e.g. pytest's rewriting hook
    return compile(path.read_bytes(), str(path), "exec", dont_inherit=True)


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
