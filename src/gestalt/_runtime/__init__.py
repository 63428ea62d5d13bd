"""The provider runtime: the process the host launches, ``python -m gestalt._runtime``.

``process`` resolves the target and serves it; ``servicers`` (integration plugins),
``lifecycle`` (every other kind) and ``wire`` translate gRPC messages to the authoring layer and
back; ``launch`` starts a provider the way the host does;
``project`` reads a provider's ``[tool.gestalt]`` settings and checks them.

May import: ``gestalt._authoring``, ``gestalt._clients`` and ``gestalt.gen``. Never the dev tools,
``gestalt.local`` or ``gestalt.testing``.
"""

import gc

#: The cycle collector's thresholds while a provider starts (:func:`collect_for_start_up`):
#: one young collection in about 20,000 new objects and no older ones.
START_UP_GC = (20_000, 1_000, 1_000)
#: The thresholds once the server is up (:func:`collect_for_serving`): a young collection every
#: 5,000 new objects instead of the interpreter's 700. A call allocates many short-lived objects
#: (grpc's own, the messages, the handler's); with 32 calls in flight, collecting every 700 of
#: them cost about a tenth of the provider's CPU (``benchmarks/README.md``, fifth pass).
SERVING_GC = (5_000, 10, 10)


def collect_for_start_up() -> None:
    """Set :data:`START_UP_GC`, before the runtime and the provider are imported.

    Start-up allocates much and frees little, so the default pace (a young collection every
    700 new objects, older ones every tenth of those) only costs time there: about 10 ms for a
    50-operation plugin, against about 3 ms for the one collection these thresholds allow.
    Turning the collector off would save those 3 ms but freeze the imports' garbage (classes
    the standard library replaces as it loads) for good: 0.3 MiB of the provider's memory.
    """
    gc.set_threshold(*START_UP_GC)


def collect_for_serving() -> None:
    """Once the server is up: freeze what start-up made and set :data:`SERVING_GC`.

    Only after :func:`collect_for_start_up`; thresholds the provider set while it was
    imported are its own and stay, and nothing is frozen then.
    """
    if gc.get_threshold() == START_UP_GC:
        gc.freeze()  # what start-up made stays: later collections skip it
        gc.set_threshold(*SERVING_GC)
