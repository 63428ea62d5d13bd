"""The typed provider bases rendered for ``*Provider`` services (``<name>_providers``)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from codegen import kinds
from gestalt import AgentProvider, WorkflowProvider
from gestalt.gen.v1 import agent_pb2, workflow_pb2


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
    }
    for key in kinds.DOCS:
        service, rpc = key.split(".")
        assert rpc in services[service].methods_by_name, key


@pytest.mark.parametrize(
    ("base", "proto"), [(AgentProvider, agent_pb2), (WorkflowProvider, workflow_pb2)]
)
def test_every_rpc_is_a_documented_unimplemented_method(base: type, proto: Any) -> None:
    methods = proto.DESCRIPTOR.services_by_name[base.__name__].methods
    assert methods
    for method in methods:
        name = "".join("_" + c.lower() if c.isupper() else c for c in method.name).lstrip("_")
        fn = getattr(base, name)
        assert inspect.getdoc(fn), name
        with pytest.raises(NotImplementedError):
            fn(base(), None)
