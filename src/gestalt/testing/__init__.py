"""Test providers with pytest: start them, call them, and seed or read host-service state.

::

    from gestalt.testing import start_provider

    def test_greet():
        with start_provider("examples/hello", mode="inprocess") as hello:
            result = hello.invoke("greet", {"name": "Ann"})
            assert result.status == 200

With the pytest plugin (installed with the SDK) the ``gestalt_provider`` fixture starts
providers and stops them after the test (its type is :class:`StartProvider`), and
``gestalt_services`` runs the embedded Cache, IndexedDB and S3 services alone (a
``gestalt.local.LocalServices``). See :mod:`gestalt.testing._harness` for the two modes.
"""

from gestalt.testing._harness import (
    InvokeResult,
    JSONInput,
    JSONValue,
    Mode,
    ProviderHarness,
    StartProvider,
    start_provider,
)

__all__ = [
    "InvokeResult",
    "JSONInput",
    "JSONValue",
    "Mode",
    "ProviderHarness",
    "StartProvider",
    "start_provider",
]
