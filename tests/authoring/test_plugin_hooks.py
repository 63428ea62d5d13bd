"""Hooks: the ex2/ex5 golden behaviour at the Plugin level, and our stricter handling.

The golden files record gRPC outcomes; here we check the Plugin methods the runtime maps to
them. Hook failures surface as ``HookError`` whose text never contains the exception message
(quirk 13) and whose traceback is logged (quirk 35).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from typing import Any

import pytest
from google.protobuf import json_format

from gestalt import (
    Catalog,
    ConnectedToken,
    HTTPSubjectRequest,
    HTTPSubjectResolutionError,
    Plugin,
    Request,
    Subject,
)
from gestalt._authoring.response import HookError
from gestalt._runtime.wire import connected_token_from_pb, http_subject_request_from_pb
from gestalt.gen.v1 import plugin_pb2

GENERIC = "hook failed; details are in the provider log"


def as_dict(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# --- ex2: module-level hooks discovered on the implicit plugin ----------------------------


@pytest.fixture
def weather(load_example: Any) -> Plugin:
    plugin: Plugin = load_example("ex2_weather/weather/provider.py", "provider").plugin
    return plugin


def test_ex2_capabilities(weather: Plugin, load_example: Any) -> None:
    assert weather.supports_session_catalog()
    assert weather.supports_post_connect()
    assert weather.supports_http_subject()
    search = load_example("ex1_search/search_plugin.py", "search_plugin").plugin
    assert not search.supports_session_catalog()
    assert not search.supports_post_connect()
    assert not search.supports_http_subject()
    assert search.catalog_for_request(Request()) is None
    assert search.post_connect_metadata(ConnectedToken()) is None
    assert search.resolve_http_subject(HTTPSubjectRequest(), Request()) is None


def test_ex2_session_catalog(weather: Plugin, golden: Any) -> None:
    entry = next(
        e for e in golden("ex2_weather/rpc_results.json") if "GetSessionCatalog" in e.get("rpc", "")
    )
    catalog = weather.catalog_for_request(Request(token="t"))
    assert isinstance(catalog, Catalog)
    expected = entry["response"]["catalog"]
    # Quirk 12: the reference dropped the parameter default; we keep it.
    expected["operations"][0]["parameters"][0]["default"] = "x"
    assert as_dict(catalog) == expected


def test_ex2_post_connect(weather: Plugin, golden: Any) -> None:
    entries = [
        e
        for e in golden("ex2_weather/rpc_results.json")
        if e.get("rpc", "").startswith("PostConnect")
    ]
    assert len(entries) == 2
    for entry in entries:
        message = json_format.ParseDict(entry["request"], plugin_pb2.PostConnectRequest())
        token = connected_token_from_pb(message.token if message.HasField("token") else None)
        assert weather.post_connect_metadata(token) == entry["response"]["metadata"]


def test_ex2_resolve_http_subject(
    weather: Plugin, golden: Any, caplog: pytest.LogCaptureFixture
) -> None:
    entries = [
        e
        for e in golden("ex2_weather/rpc_results.json")
        if "ResolveHTTPSubject" in e.get("rpc", "")
    ]
    assert len(entries) == 4
    for entry in entries:
        message = json_format.ParseDict(entry["request"], plugin_pb2.ResolveHTTPSubjectRequest())
        request = http_subject_request_from_pb(message.request)
        assert request.headers == {"X-A": ["1", "2"]}
        if entry["code"] != "OK":
            # The reference sent "resolve http subject: bad things" to the host (quirk 13).
            with pytest.raises(HookError) as info:
                weather.resolve_http_subject(request, Request())
            assert str(info.value) == f"resolve http subject: {GENERIC}"
            assert "bad things" in caplog.text
        elif "reject_status" in entry["response"]:
            with pytest.raises(HTTPSubjectResolutionError) as rejected:
                weather.resolve_http_subject(request, Request())
            assert (rejected.value.status, rejected.value.message) == (403, "Forbidden")
        elif "subject" in entry["response"]:
            subject = weather.resolve_http_subject(request, Request())
            assert subject == Subject(**entry["response"]["subject"])
        else:
            assert weather.resolve_http_subject(request, Request()) is None


# --- ex5: explicit hook decorators and failing hooks --------------------------------------


@pytest.fixture
def hooks(load_example: Any) -> Plugin:
    plugin: Plugin = load_example("ex5_hooks_errors/hooks_plugin.py", "hooks_plugin").plugin
    return plugin


def set_mode(plugin: Plugin, mode: str) -> None:
    assert plugin.execute("set_mode", {"mode": mode}, Request()).status == 200


def test_ex5_configure_failure(hooks: Plugin, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(HookError) as info:
        hooks.configure_provider("hooks", {"fail": True})
    # Reference: UNKNOWN "configure provider: bad config" (exception text sent to the host).
    assert str(info.value) == f"configure provider: {GENERIC}"
    assert "bad config" in caplog.text and "Traceback" in caplog.text
    hooks.configure_provider("hooks", {})


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("raise", GENERIC),  # quirks 13 and 35: generic text, traceback logged
        ("badtype", "the hook must return a gestalt.Catalog, a mapping or None, not list"),
        # Quirk 12: `{}` is not a catalog the host can load.
        ("empty", "catalog has no operations; the host rejects an empty catalog"),
    ],
)
def test_ex5_session_catalog_failures(hooks: Plugin, mode: str, detail: str) -> None:
    set_mode(hooks, mode)
    with pytest.raises(HookError) as info:
        hooks.catalog_for_request(Request())
    assert str(info.value) == f"session catalog: {detail}"


def test_ex5_session_catalog_results(hooks: Plugin, golden: Any) -> None:
    set_mode(hooks, "none")
    assert hooks.catalog_for_request(Request()) is None
    set_mode(hooks, "valid")
    entry = next(
        e for e in golden("ex5_hooks_errors/rpc_results.json") if "mode=valid" in e.get("rpc", "")
    )
    expected = entry["response"]["catalog"]
    operation = expected["operations"][0]
    operation["method"] = "POST"  # quirk 12: normalized like static operations
    operation["parameters"][0]["default"] = 3  # quirk 12: kept, not dropped
    assert as_dict(hooks.catalog_for_request(Request())) == expected


def test_ex5_post_connect(hooks: Plugin, caplog: pytest.LogCaptureFixture) -> None:
    set_mode(hooks, "raise")
    with pytest.raises(HookError, match=f"^post connect: {GENERIC}$"):
        hooks.post_connect_metadata(ConnectedToken())
    assert "post connect failed" in caplog.text
    # Quirk 14: the reference failed inside gRPC ("bad argument type for built-in operation").
    set_mode(hooks, "nonstr")
    with pytest.raises(HookError) as info:
        hooks.post_connect_metadata(ConnectedToken())
    assert str(info.value) == (
        "post connect: metadata keys and values must be strings; 'count' has a int value"
    )
    set_mode(hooks, "none")
    assert hooks.post_connect_metadata(ConnectedToken()) is None


# --- session catalog conversion -------------------------------------------------------------


def catalog_plugin(result: Any) -> Plugin:
    plugin = Plugin("dyn")

    @plugin.session_catalog
    def catalog(req: Request) -> Any:
        return result

    return plugin


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ({"operations": [{"id": "bad id"}]}, "operations[0]: invalid operation id 'bad id'"),
        ({"operations": [{"id": "a"}, {"id": "a"}]}, "operations[1]: duplicate operation id 'a'"),
        ({"operations": [{"id": "a", "parameters": [{"name": "x"}]}]}, "name and type"),
        ({"operations": [{"id": "a", "bogus": 1}]}, "catalog.operations[0]: unknown key 'bogus'"),
        ({"operations": [{"id": "a", "tags": "x"}]}, "tags: expected list, got str"),
        ({"operations": [{"id": "a", "method": "g e t"}]}, "invalid HTTP method"),
        (
            {"operations": [{"id": "a", "method": "fetch"}]},
            "operations[0]: invalid HTTP method 'fetch': the host accepts GET, POST, PUT, PATCH",
        ),
        (
            {
                "operations": [
                    {"id": "a", "parameters": [{"name": "x", "type": "string", "format": 1}]}
                ]
            },
            "catalog.operations[0].parameters[0].format: expected str, got int",
        ),
        (
            {
                "operations": [
                    {"id": "a", "parameters": [{"name": "x", "type": "string", "enum": "a"}]}
                ]
            },
            "catalog.operations[0].parameters[0].enum: expected list, got str",
        ),
        ({"name": 3, "operations": []}, "catalog.name: expected str, got int"),
    ],
)
def test_session_catalog_validation(value: Any, detail: str) -> None:
    with pytest.raises(HookError, match=r"^session catalog: ") as info:
        catalog_plugin(value).catalog_for_request(Request())
    assert detail in str(info.value)


def test_session_catalog_conversion() -> None:
    value = {
        "displayName": "Dyn",
        "iconSvg": "<svg/>",
        "operations": [
            {
                "id": "x.y",
                "method": "get",
                "readOnly": True,
                "allowedRoles": [" admin ", "admin", ""],
                "requiredScopes": ["s"],
                "annotations": {"idempotentHint": True, "open_world_hint": False},
                "parameters": [{"name": "when", "type": "string", "default": dt.date(2026, 1, 2)}],
            }
        ],
    }
    catalog = catalog_plugin(value).catalog_for_request(Request())
    assert as_dict(catalog) == {
        "name": "dyn",  # filled from the plugin name, as the host does for static catalogs
        "display_name": "Dyn",
        "icon_svg": "<svg/>",
        "operations": [
            {
                "id": "x.y",
                "method": "GET",
                "read_only": True,
                "allowed_roles": ["admin"],
                "required_scopes": ["s"],
                "annotations": {"idempotent_hint": True, "open_world_hint": False},
                "parameters": [{"name": "when", "type": "string", "default": "2026-01-02"}],
            }
        ],
    }
    message = Catalog(name="m", operations=[plugin_pb2.CatalogOperation(id="op")])
    assert catalog_plugin(message).catalog_for_request(Request()) == message


# --- async hooks, signatures, discovery ---------------------------------------------------


def test_async_hooks_sync_and_async_entry_points() -> None:
    plugin = Plugin("async-hooks")
    seen: list[tuple[str, dict[str, Any]]] = []

    @plugin.configure
    async def configure(name: str, config: dict[str, Any]) -> None:
        seen.append((name, config))

    @plugin.post_connect
    async def after(token: ConnectedToken) -> dict[str, str]:
        return {"id": token.id}

    @plugin.http_subject
    def subject(request: HTTPSubjectRequest) -> Subject:
        return Subject(id=request.path)

    plugin.configure_provider("n", {"a": 1})
    assert plugin.post_connect_metadata(ConnectedToken(id="c")) == {"id": "c"}

    async def main() -> None:
        await plugin.configure_provider_async("m", {})
        assert await plugin.post_connect_metadata_async(ConnectedToken(id="d")) == {"id": "d"}
        got = await plugin.resolve_http_subject_async(HTTPSubjectRequest(path="/p"), Request())
        assert got == Subject(id="/p")
        assert await plugin.catalog_for_request_async(Request()) is None

    asyncio.run(main())
    assert seen == [("n", {"a": 1}), ("m", {})]


def test_async_hook_failure_is_sanitized(caplog: pytest.LogCaptureFixture) -> None:
    plugin = Plugin("async-fail")

    @plugin.session_catalog
    async def catalog() -> None:
        raise RuntimeError("token=secret")

    with pytest.raises(HookError) as info:
        asyncio.run(plugin.catalog_for_request_async(Request()))
    assert "secret" not in str(info.value)
    assert "token=secret" in caplog.text


def test_rejection_with_invalid_status_is_not_an_acceptance() -> None:
    plugin = Plugin("reject")

    @plugin.http_subject
    def subject(request: HTTPSubjectRequest, context: Request) -> None:
        raise HTTPSubjectResolutionError(0)

    with pytest.raises(HookError, match="rejection status must be between 100 and 599"):
        plugin.resolve_http_subject(HTTPSubjectRequest(), Request())


def test_subject_hook_must_return_subject() -> None:
    plugin = Plugin("bad-subject")

    @plugin.http_subject
    def subject(request: HTTPSubjectRequest) -> Any:
        return {"id": "x"}

    with pytest.raises(HookError, match=r"must return a gestalt.Subject or None, not dict"):
        plugin.resolve_http_subject(HTTPSubjectRequest(), Request())


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ("configure", "must take \\(name, config\\)"),
        ("session_catalog", "must take \\(\\) or \\(request\\)"),
        ("post_connect", "must take \\(\\) or \\(token\\)"),
        ("http_subject", "must take \\(request\\) or \\(request, context\\)"),
    ],
)
def test_hook_signatures_are_checked(register: str, message: str) -> None:
    def three(a: Any, b: Any, c: Any) -> None:
        return None

    with pytest.raises(TypeError, match=message):
        getattr(Plugin("sig"), register)(three)


def test_session_catalog_parameter_must_be_a_request() -> None:
    def hook(req: int) -> None:
        return None

    with pytest.raises(TypeError, match=r"must be annotated gestalt.Request"):
        Plugin("sig").session_catalog(hook)


def test_hook_registered_twice() -> None:
    plugin = Plugin("twice")
    plugin.post_connect(lambda: None)
    with pytest.raises(ValueError, match="already has a post_connect hook"):
        plugin.post_connect(lambda: None)


def test_imported_module_functions_are_not_discovered(tmp_path: Any, load_example: Any) -> None:
    # `from gestalt import session_catalog` puts the SDK's decorator in the module namespace;
    # it must not be mistaken for a hook (only functions defined in the module count).
    logging.getLogger("gestalt").debug("discovery check")
    namespace: dict[str, Any] = {"__name__": "fake_module"}
    exec("from gestalt import session_catalog, post_connect", namespace)
    plugin = Plugin("disc", module_name="fake_module")
    plugin._attach_module(namespace)
    assert not plugin.supports_session_catalog()
    assert not plugin.supports_post_connect()


def test_module_level_hook_decorators() -> None:
    source = (
        "from gestalt import Request, http_subject, post_connect, session_catalog\n"
        "@session_catalog\n"
        "def catalog(req: Request) -> dict:\n"
        "    return {'operations': [{'id': 'dyn'}]}\n"
        "@post_connect()\n"
        "def connected() -> dict:\n"
        "    return {'k': 'v'}\n"
        "@http_subject\n"
        "def subject(request):\n"
        "    return None\n"
    )
    namespace: dict[str, Any] = {"__name__": "hooks_module"}
    exec(source, namespace)
    plugin: Plugin = namespace["plugin"]
    assert plugin.name == "hooks_module"
    assert plugin.supports_session_catalog() and plugin.supports_post_connect()
    assert plugin.supports_http_subject()
    assert as_dict(plugin.catalog_for_request(Request())) == {
        "name": "hooks_module",
        "operations": [{"id": "dyn"}],
    }
    assert plugin.post_connect_metadata(ConnectedToken()) == {"k": "v"}


def test_connected_token_conversion() -> None:
    from google.protobuf import timestamp_pb2

    token = connected_token_from_pb(
        plugin_pb2.PostConnectCredential(
            id="c",
            metadata_json='{"n": 1, "s": "x", "o": {"a": [true]}}',
            created_at=timestamp_pb2.Timestamp(seconds=1767225600, nanos=5000),
        )
    )
    # Non-string metadata values are kept as compact JSON (the reference used Python str()).
    assert token.metadata == {"n": "1", "s": "x", "o": '{"a":[true]}'}
    assert token.created_at == dt.datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC)
    assert token.expires_at is None and token.updated_at is None
    assert (
        connected_token_from_pb(plugin_pb2.PostConnectCredential(metadata_json="[1]")).metadata
        == {}
    )


def test_explicit_plugin_discovers_module_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Quirk 28: the reference found module functions only for some target forms; an explicit
    # Plugin records the module that created it, so they are found whatever the target.
    import types

    module = types.ModuleType("explicit_hooks_module")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(
        "from gestalt import Plugin\n"
        "plugin = Plugin('explicit')\n"
        "SEEN = []\n"
        "def configure(name, config):\n"
        "    SEEN.append(name)\n"
        "def post_connect():\n"
        "    return {'a': 'b'}\n",
        module.__dict__,
    )
    plugin: Plugin = module.__dict__["plugin"]
    assert plugin.supports_post_connect() and not plugin.supports_session_catalog()
    plugin.configure_provider("host-name", {})
    assert module.__dict__["SEEN"] == ["host-name"]
    assert plugin.post_connect_metadata(ConnectedToken()) == {"a": "b"}
