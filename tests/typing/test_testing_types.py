"""The testing fixtures are precisely typed: mypy --strict checks a user's test file against them.

``testing_ok.py`` is a provider author's test file using ``gestalt_provider``,
``gestalt_services`` and ``InvokeResult``; ``testing_bad.py`` misuses them and every marked line
must be reported. The fixtures' own annotations are checked to be the types the user file uses.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing

from gestalt.local import LocalServices
from gestalt.testing import StartProvider, start_provider
from gestalt.testing import _pytest_plugin as plugin
from tests.typing.test_typing import CASES, _expected, _mypy, _reported


def test_a_users_test_file_type_checks() -> None:
    run = _mypy(CASES / "testing_ok.py")
    assert run.returncode == 0, run.stdout + run.stderr


def test_wrong_uses_are_reported() -> None:
    bad = CASES / "testing_bad.py"
    run = _mypy(bad)
    assert run.returncode == 1, run.stdout + run.stderr
    assert _reported(run.stdout, bad) == _expected(bad), run.stdout


def test_the_fixtures_yield_the_documented_types() -> None:
    def yielded(fixture: object) -> object:
        """What a fixture's generator function is annotated to yield."""
        function = inspect.unwrap(typing.cast(typing.Callable[..., object], fixture))
        # LocalServices is imported for type checking only (no import cost at plugin load).
        hints = typing.get_type_hints(function, vars(plugin), {"LocalServices": LocalServices})
        assert typing.get_origin(hints["return"]) is collections.abc.Iterator
        return typing.get_args(hints["return"])[0]

    assert yielded(plugin.gestalt_provider) is StartProvider
    assert yielded(plugin.gestalt_services) is LocalServices


def test_the_fixture_protocol_matches_start_provider() -> None:
    call = inspect.signature(StartProvider.__call__)
    assert list(call.parameters.values())[1:] == list(
        inspect.signature(start_provider).parameters.values()
    )
    assert call.return_annotation == inspect.signature(start_provider).return_annotation
