"""Where the author's code is: the innermost caller outside the SDK's own modules.

Decorators use it to find the module (and the locals) they run in.
"""

from __future__ import annotations

import sys
import types


def caller_frame() -> types.FrameType:
    """Return the innermost frame outside the SDK's own ``gestalt._*`` modules."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("gestalt._"):
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("gestalt could not find the calling module")
    return frame


def caller_module() -> str | None:
    """Return the name of the module calling into the SDK, if there is one."""
    try:
        name = caller_frame().f_globals.get("__name__")
    except RuntimeError:
        return None
    return name if isinstance(name, str) else None
