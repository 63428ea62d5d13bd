"""A provider module whose own dependency ``gizmo`` is not installed.

The missing module's name is a prefix of this module's name, which must not make the runtime
report *this* module as the one that cannot be found.
"""

from __future__ import annotations

import gizmo  # type: ignore[import-not-found]  # noqa: F401
