"""The typed provider bases rendered for ``*Provider`` services (``<name>_providers``)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from codegen import kinds
from gestalt import AgentProvider, AuthorizationProvider, PluginRuntimeProvider, WorkflowProvider
from gestalt.gen.v1 import agent_pb2, authorization_pb2, pluginruntime_pb2, workflow_pb2


@pytest.mark.parametrize(
    ("comment", "doc"),
    [
        ("Returns one run by its id.", "Return one run by its id."),
        ("Creates a session and returns it.", "Create a session; return it."),
        ("Lists the sessions.", "List the sessions."),
        ("Applies a policy.", "Apply a policy."),
        ("Pushes an event.", "Push an event."),
        (
            "Stores a reference and returns the stored value.",
            "Store a reference; return the stored value.",
        ),
        ("", "Ping."),
    ],
)
def test_the_imperative_of_a_proto_comment(comment: str, doc: str) -> None:
    assert kinds.method_doc("AnyProvider", "Ping", comment) == doc


def test_every_worded_docstring_names_an_rpc() -> None:
    services = {
        **agent_pb2.DESCRIPTOR.services_by_name,
        **workflow_pb2.DESCRIPTOR.services_by_name,
        **pluginruntime_pb2.DESCRIPTOR.services_by_name,
        **authorization_pb2.DESCRIPTOR.services_by_name,
    }
    for key in kinds.DOCS:
        service, rpc = key.split(".")
        assert rpc in services[service].methods_by_name, key


@pytest.mark.parametrize(
    ("base", "proto"),
    [
        (AgentProvider, agent_pb2),
        (WorkflowProvider, workflow_pb2),
        (PluginRuntimeProvider, pluginruntime_pb2),
        (AuthorizationProvider, authorization_pb2),
    ],
)
def test_every_rpc_is_a_documented_unimplemented_method(base: type, proto: Any) -> None:
    methods = proto.DESCRIPTOR.services_by_name[base.__name__].methods
    assert methods
    for method in methods:
        name = "".join("_" + c.lower() if c.isupper() else c for c in method.name).lstrip("_")
        fn = getattr(base, name)
        assert inspect.getdoc(fn), name
        arguments = [None] * (len(inspect.signature(fn).parameters) - 1)
        with pytest.raises(NotImplementedError):
            fn(base(), *arguments)


def test_a_flat_kind_takes_the_one_field_and_returns_the_list() -> None:
    """The plugin runtime kind: a session id for a request holding only it, nothing for an
    empty request, a list for a reply holding only one."""
    shown = {
        name: str(inspect.signature(getattr(PluginRuntimeProvider, name)))
        for name in ("get_support", "get_session", "list_sessions", "stop_session", "start_plugin")
    }
    assert shown == {
        "get_support": "(self) -> 'Result[PluginRuntimeSupport]'",
        "get_session": "(self, session_id: 'str') -> 'Result[PluginRuntimeSession]'",
        "list_sessions": "(self) -> 'Result[list[PluginRuntimeSession]]'",
        "stop_session": "(self, session_id: 'str') -> 'Result[None]'",
        "start_plugin": "(self, request: 'StartHostedPluginRequest') -> 'Result[HostedPlugin]'",
    }
