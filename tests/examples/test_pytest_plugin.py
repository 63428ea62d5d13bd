"""The ``gestalt`` pytest plugin, used from a user's own test file (run by ``pytester``).

The inner session runs in a subprocess so that its providers and modules do not mix with
this one's. The plugin is loaded with ``-p`` unless it is already registered as a ``pytest11``
entry point (loading it twice would be an error).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from tests.examples.conftest import EXAMPLES

pytest_plugins = ["pytester"]

PLUGIN = "gestalt.testing._pytest_plugin"

USER_TESTS = """
import datetime as dt

import pytest

from gestalt import Cache
from gestalt.gen.v1 import secrets_clients, secrets_pb2

HELLO = {hello!r}
SECRETS = {secrets!r}


@pytest.mark.parametrize("mode", ["subprocess", "inprocess"])
def test_hello(gestalt_provider, mode):
    hello = gestalt_provider(HELLO, mode=mode)
    result = hello.invoke("greet", {{"name": "Pat"}})
    assert result.ok and result.body["times"] == 1
    # The provider's host services are reachable from the test too.
    with Cache() as cache:
        cache.set("seeded", b"by the test")
        assert cache.get("seeded") == b"by the test"


def test_two_providers_in_one_test(gestalt_provider, tmp_path):
    hello = gestalt_provider(HELLO)
    secrets = gestalt_provider(SECRETS, mode="inprocess")
    client = secrets_clients.SecretsProviderClient(secrets.channel)
    value = client.get_secret(secrets_pb2.GetSecretRequest(name="api-key"), timeout=10).value
    assert value == "demo-api-key-123"
    assert hello.invoke("stats").body == {{}}
    assert (tmp_path / "gestalt-data-0").is_dir()


def test_services_alone(gestalt_services, tmp_path):
    with Cache() as cache:
        cache.set("k", b"v", ttl=dt.timedelta(minutes=1))
        assert cache.get("k") == b"v"
    assert gestalt_services.data_dir == tmp_path / "gestalt-data"
"""


def plugin_args() -> list[str]:
    """``-p gestalt.testing._pytest_plugin`` unless pytest loads it by itself."""
    registered = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if PLUGIN in registered else ["-p", PLUGIN]


def test_fixtures_from_a_user_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=USER_TESTS.format(
            hello=str(EXAMPLES / "hello"), secrets=str(EXAMPLES / "secrets_provider")
        )
    )
    result = pytester.runpytest_subprocess(*plugin_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_fixtures_stop_providers_when_a_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing=f"""
def test_fails(gestalt_provider):
    hello = gestalt_provider({str(EXAMPLES / "hello")!r})
    with open("socket.txt", "w") as out:
        out.write(hello.socket)
    assert False, "on purpose"
"""
    )
    result = pytester.runpytest_subprocess(*plugin_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    socket = (pytester.path / "socket.txt").read_text()
    assert socket
    assert not Path(socket).exists()
