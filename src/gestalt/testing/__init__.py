"""Test providers with pytest: start them, call them, and seed or read host-service state.

::

    from gestalt.testing import start_provider

    def test_greet():
        with start_provider("examples/hello", mode="inprocess") as hello:
            result = hello.invoke("greet", {"name": "Ann"})
            assert result.status == 200

With the pytest plugin (installed with the SDK) the ``gestalt_provider`` fixture starts
providers and stops them after the test, and ``gestalt_services`` runs the embedded Cache,
IndexedDB and S3 services alone. See :mod:`gestalt.testing._harness` for the two modes.
"""

from gestalt.testing._harness import InvokeResult, Mode, ProviderHarness, start_provider

__all__ = ["InvokeResult", "Mode", "ProviderHarness", "start_provider"]
