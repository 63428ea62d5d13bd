"""Python naming rules for generated code, kept as tables so tests can walk them."""

from __future__ import annotations

import keyword
import re

#: Attribute names every mirror dataclass defines itself; a proto field with one of these
#: names gets a trailing underscore so it cannot shadow the conversion methods.
MIRROR_RESERVED = frozenset({"to_pb", "from_pb"})

#: Attribute names the generated clients define; an RPC with one of these Python names
#: gets a trailing underscore.
CLIENT_RESERVED = frozenset({"close", "channel"})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``GetMany`` -> ``get_many``; ``ResolveHTTPSubject`` -> ``resolve_http_subject``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def escape(name: str, reserved: frozenset[str] = frozenset()) -> str:
    """Append ``_`` to Python keywords and to ``reserved`` names.

    Soft keywords (``match``, ``type``) stay valid attribute names and are left alone, which
    also keeps the output identical across Python versions.
    """
    if keyword.iskeyword(name) or name in reserved:
        return name + "_"
    return name


def enum_member_name(enum_name: str, value_name: str) -> str:
    """Strip the enum's ``UPPER_SNAKE`` prefix from a value name when the rest stays valid.

    ``ConnectionMode`` / ``CONNECTION_MODE_USER`` -> ``USER``. The prefix is kept when the
    remainder would be empty, start with a digit, or be a keyword.
    """
    prefix = snake_case(enum_name).upper() + "_"
    if value_name.startswith(prefix):
        rest = value_name[len(prefix) :]
        if rest and rest.isidentifier() and not keyword.iskeyword(rest):
            return rest
    return escape(value_name)
