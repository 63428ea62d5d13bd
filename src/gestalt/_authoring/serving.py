"""``serve()`` of plugins and providers: the authoring layer's one hand-over to the runtime.

The authoring layer never imports the runtime, with this single exception: when an author
calls ``plugin.serve()`` (or a provider's ``serve()``) from their own script, the runtime is
imported here, late, and serves the object the way ``python -m gestalt._runtime`` would.
The layering test in ``tests/test_layering.py`` allows exactly this import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gestalt._authoring.kinds import ProviderKind


def serve(target: object, kind: ProviderKind) -> None:
    """Serve ``target`` as a provider of ``kind`` until the host stops it."""
    from gestalt._runtime.process import serve as run  # the documented exception

    run(target, kind)
