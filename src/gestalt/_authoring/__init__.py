"""The authoring layer: what a provider author writes against.

``Model`` and ``field``, ``Plugin`` with its operations and hooks, the implicit module-level
decorators, request/response types, parameter decoding, result encoding, the catalog, and the
provider base classes of every kind.

May import: ``gestalt.gen`` and ``gestalt._clients``. Never the runtime or the dev tools, with
one documented exception (``serving.py``): ``serve()`` hands over to the runtime.
"""
