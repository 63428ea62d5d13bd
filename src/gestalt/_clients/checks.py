"""The string check of the Cache and IndexedDB clients.

The argument checks of the typed host-service methods (``required``, ``text``, ``count``,
``struct``, ``each``, ``coerce``) live with the generated request builders, in
:mod:`gestalt.gen.hostcalls`. This one stays here so that importing the Cache client, which
a provider may do at start-up, does not load the host-call machinery.
"""

from __future__ import annotations

__all__ = ["check_str"]


def check_str(value: object, what: str) -> str:
    """``value`` as a plain ``str`` (a subclass is converted); ``TypeError`` naming ``what``
    for anything else."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{what} must be a str, not {type(value).__name__}")
