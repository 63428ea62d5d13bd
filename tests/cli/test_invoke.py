"""``gestalt invoke``: a one-shot start of ROOT, or a call to the provider ``gestalt dev`` runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gestalt._runtime.project import ProjectError, explain_unknown_operation
from tests.cli.conftest import (
    EXAMPLES,
    StartDev,
    gestalt,
    invoke_json,
    one_line_error,
    state_file,
)


def test_one_shot_start(hello_copy: Path) -> None:
    human = gestalt("invoke", "greet", "name=Ann", "--root", hello_copy, cwd=hello_copy.parent)
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0] == "status 200"
    assert json.loads(human.stdout.partition("\n")[2]) == {
        "message": "Hello Ann. (asked by someone)",
        "times": 1,
    }
    # From inside ROOT without --root; every one-shot start is a fresh provider.
    scripted = gestalt("--json", "invoke", "greet", "name=Ann", cwd=hello_copy)
    assert scripted.returncode == 0, scripted.stderr
    assert json.loads(scripted.stdout) == {
        "status": 200,
        "body": {"message": "Hello Ann. (asked by someone)", "times": 1},
    }
    assert scripted.stderr == ""
    assert not state_file(hello_copy).exists()


@pytest.fixture
def served(dev: StartDev, hello_copy: Path) -> Path:
    """The copy of hello, served by ``gestalt dev`` (so every call is quick)."""
    dev(hello_copy).wait_ready()
    return hello_copy


def test_calls_reach_the_running_dev_host(served: Path) -> None:
    assert invoke_json(served, "greet", "name=Ann")[1]["body"]["times"] == 1
    assert invoke_json(served, "greet", "name=Ann")[1]["body"]["times"] == 2
    assert invoke_json(served, "stats") == (0, {"status": 200, "body": {"Ann": 2}})


def test_values_are_json_when_they_parse_as_json(served: Path) -> None:
    def message(*args: str) -> str:
        """The greeting ``gestalt invoke greet ARGS`` answers."""
        code, document = invoke_json(served, "greet", *args)
        assert code == 0, document
        return str(document["body"]["message"])

    assert message("name=Ann", "excited=true") == "Hello Ann! (asked by someone)"
    assert message('name="42"') == "Hello 42. (asked by someone)"
    assert message("name=Zoë Ann", "excited=false") == "Hello Zoë Ann. (asked by someone)"
    assert message("name=a=b") == "Hello a=b. (asked by someone)"
    assert message("--params", '{"name": "Pat", "excited": true}') == (
        "Hello Pat! (asked by someone)"
    )
    # --params wins over key=value for the same key.
    assert message("name=Ann", "--params", '{"name": "Pat"}') == "Hello Pat. (asked by someone)"
    # The catalog lists `name` as a string: a value that parses as another JSON type is sent
    # as the text as written; `excited` (a boolean) still gets JSON.
    assert message("name=42") == "Hello 42. (asked by someone)"
    assert message("name=1.50", "excited=true") == "Hello 1.50! (asked by someone)"
    assert message("name=[1, 2]") == "Hello [1, 2]. (asked by someone)"
    assert message("name=false") == "Hello false. (asked by someone)"
    # --json is taken exactly as written: 42 there is a number, which a str field refuses.
    code, document = invoke_json(served, "greet", "--json", '{"name": 42}')
    assert (code, document) == (
        1,
        {"status": 400, "body": {"error": "name: expected a string, got 42.0"}},
    )
    # null stays null, which a str field refuses.
    code, document = invoke_json(served, "greet", "name=null")
    assert (code, document["body"]) == (1, {"error": "name: expected a string, got null"})


def test_string_coercion_follows_the_catalog_of_a_one_shot_start(hello_copy: Path) -> None:
    # No dev host: the operation's catalog is read from the project itself.
    code, document = invoke_json(hello_copy, "greet", "name=2026", "excited=false")
    assert (code, document["body"]["message"]) == (0, "Hello 2026. (asked by someone)")


def test_help_states_the_value_rule(tmp_path: Path) -> None:
    run = gestalt("invoke", "--help", cwd=tmp_path)
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "A value that is valid JSON is sent as that JSON" in text
    assert "anything else is sent as the plain string" in text
    assert 'so name=123 sends "123"' in text


def test_error_statuses_exit_1(served: Path) -> None:
    empty = gestalt("invoke", "greet", "name=", "--root", served, cwd=served.parent)
    assert empty.returncode == 1
    assert empty.stdout.splitlines()[0] == "status 400"
    assert json.loads(empty.stdout.partition("\n")[2]) == {"error": "name must not be empty"}


def test_unknown_operations_are_named_with_the_ones_that_exist(served: Path) -> None:
    # The body is what the host gets; the CLI adds which operation was asked for and which exist.
    assert invoke_json(served, "nope") == (
        1,
        {
            "status": 404,
            "body": {"error": "unknown operation"},
            "error": "unknown operation 'nope'; the operations are: greet, stats, reset",
        },
    )
    human = gestalt("invoke", "gret", "name=Ann", "--root", served, cwd=served.parent)
    assert human.returncode == 1
    assert human.stdout.splitlines()[0] == "status 404"
    assert json.loads(human.stdout.partition("\n")[2]) == {"error": "unknown operation"}
    assert one_line_error(human) == (
        "unknown operation 'gret' (did you mean 'greet'?); the operations are: greet, stats, reset"
    )


def _listing_fails() -> list[str]:
    raise ProjectError("catalog export of x:plugin failed: boom")


@pytest.mark.parametrize(
    ("operation", "status", "body", "known", "expected"),
    [
        (
            "nope",
            404,
            '{"error":"unknown operation"}',
            lambda: ["a", "b"],
            "the operations are: a, b",
        ),
        ("nope", 404, '{"error":"unknown operation"}', list, "the provider has no operations"),
        ("nope", 404, '{"error":"unknown operation"}', _listing_fails, "could not be listed: "),
        # The handler of an existing operation answered so itself: no explanation.
        ("a", 404, '{"error":"unknown operation"}', lambda: ["a"], None),
        ("nope", 404, '{"error":"Not Found"}', lambda: [], None),
        ("nope", 400, '{"error":"unknown operation"}', lambda: [], None),
    ],
    ids=["listed", "none", "listing-fails", "handler-404", "other-404", "other-status"],
)
def test_explain_unknown_operation(
    operation: str, status: int, body: str, known: Callable[[], list[str]], expected: str | None
) -> None:
    message = explain_unknown_operation(operation, status, body, known)
    if expected is None:
        assert message is None
    else:
        assert message is not None
        assert message.startswith(f"unknown operation {operation!r}")
        assert expected in message


def test_unknown_operation_of_a_one_shot_start(hello_copy: Path) -> None:
    run = gestalt("invoke", "nosuch", "--root", hello_copy, cwd=hello_copy.parent)
    assert one_line_error(run) == (
        "unknown operation 'nosuch'; the operations are: greet, stats, reset"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["greet", "name"], "expected key=value, got 'name'"),
        (["greet", "=Ann"], "expected key=value, got '=Ann'"),
        (["greet", "--params", "{oops"], "the params are not valid JSON: "),
        (["greet", "--params", '["Ann"]'], "the params must be a JSON object"),
        (["greet", "--root", "missing"], "/missing: no such directory"),
    ],
    ids=["no-equals", "no-key", "params-not-json", "params-not-object", "missing-root"],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    assert message in one_line_error(gestalt("invoke", *args, cwd=tmp_path, timeout=30))


def test_other_kinds_have_no_operations(tmp_path: Path) -> None:
    run = gestalt("invoke", "x", "--root", EXAMPLES / "secrets_provider", cwd=tmp_path)
    assert one_line_error(run) == (
        "secrets_provider:provider is a secrets provider; invoke calls operations of "
        "integration plugins"
    )


def test_key_value_after_an_option(served: Path) -> None:
    run = gestalt("--json", "invoke", "greet", "--root", served, "name=Ann", cwd=served.parent)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["body"]["message"] == "Hello Ann. (asked by someone)"


def test_json_after_invoke_gives_the_params(served: Path) -> None:
    run = gestalt(
        "--json", "invoke", "greet", "--root", served, "--json", '{"name": "Bo"}', cwd=served.parent
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["body"]["message"].startswith("Hello Bo.")
