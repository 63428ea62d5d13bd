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
#: older ones. Serving restores the interpreter's defaults, ``SERVING_GC``.
START_UP_GC = (20_000, 1_000, 1_000)
SERVING_GC = (700, 10, 10)
