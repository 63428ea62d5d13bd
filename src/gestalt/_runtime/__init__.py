"""The provider runtime: the process the host launches, ``python -m gestalt._runtime``.

``process`` resolves the target and serves it; ``servicers`` (integration plugins),
``lifecycle`` (every other kind) and ``wire`` translate gRPC messages to the authoring layer and
back; ``launch`` starts a provider the way the host does;
``project`` reads a provider's ``[tool.gestalt]`` settings and checks them.

May import: ``gestalt._authoring``, ``gestalt._clients`` and ``gestalt.gen``. Never the dev tools,
``gestalt.local`` or ``gestalt.testing``.
"""

#: The cycle collector's thresholds while ``python -m gestalt._runtime`` starts a provider (see
#: ``gestalt/_runtime/__main__.py``): one young collection in about 20,000 new objects and no
#: older ones.
START_UP_GC = (20_000, 1_000, 1_000)
#: The thresholds :func:`~gestalt._runtime.process.serve` sets once the server is up, unless the
#: provider set its own while it was imported: a young collection every 5,000 new objects
#: instead of the interpreter's 700. A call allocates many short-lived objects (grpc's own,
#: the messages, the handler's); with 32 calls in flight, collecting every 700 of them cost
#: about a tenth of the provider's CPU (``benchmarks/README.md``, fifth pass).
SERVING_GC = (5_000, 10, 10)
