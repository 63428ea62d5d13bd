"""The public surface: lazy, cheap imports, a sorted ``__all__``, documented names, seed shapes."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import gestalt

#: What ``import gestalt`` may load of protobuf: two empty packages, to find the pure-Python
#: message module it defers, and that module, not run (``tests/test_start_up.py``).
DEFERRED = "google.protobuf.internal.python_message"
PROTOBUF_PACKAGES = {"google", "google.protobuf", "google.protobuf.internal", DEFERRED}

PROBE = f"""
import json, sys, types
import gestalt
from gestalt import Model, Plugin, Request, field, operation
heavy = sorted(m for m in sys.modules
               if (m.split(".")[0] in {{"grpc", "google", "yaml"}} or m.endswith("_pb2"))
               and m not in {sorted(PROTOBUF_PACKAGES)!r})
print(json.dumps([heavy, type(sys.modules["{DEFERRED}"]) is types.ModuleType]))
"""


def test_import_is_cheap() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=30
    )
    assert json.loads(done.stdout) == [[], False]


def test_all_is_sorted_and_resolves() -> None:
    # isort-style order (ruff RUF022): constants, then classes, then functions.
    def key(name: str) -> tuple[int, str]:
        group = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return group, name

    public: list[str] = gestalt.__all__  # type: ignore[attr-defined]  # lazy, see gestalt/__init__
    assert public == sorted(public, key=key)
    assert len(set(public)) == len(public)
    for name in public:
        value = getattr(gestalt, name)
        assert inspect.getdoc(value), f"{name} has no docstring"
        assert name in dir(gestalt)


def test_unknown_attribute() -> None:
    try:
        gestalt.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_catalog_messages_are_the_generated_ones() -> None:
    from gestalt.gen.v1 import plugin_pb2

    assert gestalt.Catalog is plugin_pb2.Catalog
    assert gestalt.CatalogOperation is plugin_pb2.CatalogOperation
    assert gestalt.CatalogParameter is plugin_pb2.CatalogParameter
    assert gestalt.OperationAnnotations is plugin_pb2.OperationAnnotations


def sig(obj: object) -> str:
    return str(inspect.signature(obj))  # type: ignore[arg-type]


def test_signatures_follow_the_api_reference() -> None:
    options = (
        "id: 'str | None' = None, method: 'str' = 'POST', title: 'str' = '', "
        "description: 'str' = '', allowed_roles: 'list[str] | None' = None, "
        "tags: 'list[str] | None' = None, read_only: 'bool' = False, "
        "visible: 'bool | None' = None"
    )
    assert (
        sig(gestalt.operation)
        == f"(func: 'F | None' = None, /, *, {options}) -> 'F | Callable[[F], F]'"
    )
    assert sig(gestalt.Plugin.operation).startswith("(self, func: 'F | None' = None, /, *, id:")
    assert sig(gestalt.Plugin) == "(name: 'str', *, module_name: 'str | None' = None) -> 'None'"
    assert sig(gestalt.Plugin.from_manifest) == (
        "(path: 'str | Path', *, base_dir: 'Path | None' = None) -> 'Plugin'"
    )
    assert sig(gestalt.Plugin.execute).startswith("(self, operation: 'str', params:")
    assert sig(gestalt.session_catalog) == "(func: 'F | None' = None, /) -> 'F | Callable[[F], F]'"
    assert list(inspect.signature(gestalt.field).parameters) == [
        "description",
        "default",
        "default_factory",
        "required",
    ]
    assert sig(gestalt.Subject) == (
        "(id: 'str' = '', kind: 'str' = '', display_name: 'str' = '', auth_source: 'str' = '')"
        " -> None"
    )
    assert sig(gestalt.Credential).startswith("(mode: 'str' = '', subject_id: 'str' = ''")
    assert sig(gestalt.Access) == "(policy: 'str' = '', role: 'str' = '') -> None"
    assert list(inspect.signature(gestalt.Request).parameters) == [
        "token",
        "connection_params",
        "subject",
        "credential",
        "access",
        "invocation_token",
        "workflow",
        "invocation_id",  # keyword-only additions (quirk 33)
        "idempotency_key",
    ]
    assert sig(gestalt.Response) == "(status: 'int | None', body: 'T') -> None"
    assert sig(gestalt.OK) == "(body: 'T') -> 'Response[T]'"
    assert sig(gestalt.Error) == "(status: 'int | HTTPStatus', message: 'str' = '') -> 'None'"
    for name in ("supports_session_catalog", "supports_post_connect", "supports_http_subject"):
        assert sig(getattr(gestalt.Plugin, name)) == "(self) -> 'bool'"


def test_reprs_leave_out_credentials() -> None:
    from gestalt import ConnectedToken, Request

    request = Request(token="tok-secret", invocation_token="inv-secret", invocation_id="c1")
    token = ConnectedToken(id="t1", access_token="acc-secret", refresh_token="ref-secret")
    for text in (repr(request), str(request), repr(token)):
        assert "secret" not in text
    assert "c1" in repr(request) and "t1" in repr(token)
    assert request.token == "tok-secret" and token.refresh_token == "ref-secret"


def test_the_hook_inputs_load_only_when_asked_for() -> None:
    # ConnectedToken and HTTPSubjectRequest serve two rarely used hooks: a plugin that
    # registers operations only should not build them at import (see issue 11's start-up rows).
    code = (
        "import sys\n"
        "from gestalt import Model, Plugin, Request, field\n"
        "plugin = Plugin('p')\n"
        "@plugin.operation\n"
        "def ping(req: Request) -> str:\n"
        "    return 'pong'\n"
        "from gestalt._exports import exports\n"
        "names = ('ConnectedToken', 'HTTPSubjectRequest')\n"
        "homes = {exports('gestalt')[name][0] for name in names}\n"
        "before = any(home in sys.modules for home in homes)\n"
        "from gestalt import ConnectedToken\n"
        "print(before, ConnectedToken.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "ConnectedToken"]
