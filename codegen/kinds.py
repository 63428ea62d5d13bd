"""Provider kinds: the typed base rendered for each ``*Provider`` service.

A provider kind's base class has one snake_case method per RPC taking the request mirror
(nothing for ``Empty``) and returning the response mirror (``None`` for ``Empty``), plain or
``async def`` (for the kinds in :data:`FLAT`, a request's one field and a reply's one list
stand for the messages); each answers ``UNIMPLEMENTED`` until a subclass overrides it. Its
docstring is the RPC's proto comment in the imperative ("Returns one run" -> "Return one
run"), except where :data:`DOCS` words it for the provider author.
"""

from __future__ import annotations

import re

#: ``Service.Rpc`` -> the method's docstring, where the imperative of the proto comment
#: does not say it as well.
DOCS: dict[str, str] = {
    "AgentProvider.UpdateSession": (
        "Change a session's client reference, state or metadata; return the session."
    ),
    "AgentProvider.CancelTurn": (
        "Ask the provider to stop a turn; return the turn as it then stands."
    ),
    "AgentProvider.ResolveInteraction": (
        "Supply the answer to a pending interaction; return the interaction."
    ),
    "WorkflowProvider.CancelRun": "Cancel a run; return its new state.",
    "WorkflowProvider.SignalOrStartRun": (
        "Signal the run of a workflow key, starting that run first if there is none."
    ),
    "WorkflowProvider.PutExecutionReference": (
        "Store an execution reference; return what was stored."
    ),
    "WorkflowProvider.PublishEvent": (
        "Take an event to the provider so that matching event triggers can start runs."
    ),
    "AuthorizationProvider.Evaluate": (
        "Decide whether the subject may perform the action on the resource."
    ),
    "AuthorizationProvider.EvaluateMany": (
        "Decide several access requests; one decision per request, in order."
    ),
    "AuthorizationProvider.SearchResources": (
        "One page of the resources of a type the subject may perform the action on."
    ),
    "AuthorizationProvider.SearchSubjects": (
        "One page of the subjects of a type that may perform the action on the resource."
    ),
    "AuthorizationProvider.SearchActions": (
        "One page of the actions the subject may perform on the resource."
    ),
    "AuthorizationProvider.GetMetadata": (
        "Report the provider's capabilities and the model in use."
    ),
    "AuthorizationProvider.ReadRelationships": (
        "One page of the stored relationships matching the request's filter."
    ),
    "AuthorizationProvider.WriteRelationships": (
        "Remove the request's deletes and store its writes, all or nothing."
    ),
    "AuthorizationProvider.GetActiveModel": (
        "Return a reference to the model currently in use (empty when there is none)."
    ),
    "AuthorizationProvider.ListModels": ("One page of the stored models."),
    "AuthorizationProvider.WriteModel": ("Store a new model and return a reference to it."),
    "PluginRuntimeProvider.GetSupport": (
        "Report what the runtime can do: host plugins, reach host services, limit egress."
    ),
    "PluginRuntimeProvider.StartSession": (
        "Create a session for ``request.plugin_name`` and return it (with its new ``id``)."
    ),
    "PluginRuntimeProvider.GetSession": (
        "Return the current state of one session; raise ``KeyError`` if it is unknown."
    ),
    "PluginRuntimeProvider.ListSessions": "Return every session the runtime knows.",
    "PluginRuntimeProvider.StopSession": (
        "Stop a session and the plugins running in it; ``KeyError`` if it is unknown."
    ),
    "PluginRuntimeProvider.BindHostService": (
        "Make a host service reachable in a session under ``request.env_var``."
    ),
    "PluginRuntimeProvider.StartPlugin": (
        "Start a plugin process in a session; return where the host dials it."
    ),
}

#: Provider kinds whose methods take a request's one scalar field (or nothing, for a request
#: without fields) and return a reply's one list of items, instead of the messages.
FLAT = frozenset({"PluginRuntimeProvider"})

_RETURNS = re.compile(r" and returns (it|them|the [\w ]+)\.$")


def method_doc(service: str, rpc: str, comment: str) -> str:
    """The docstring of a provider base method (see the module docstring)."""
    if f"{service}.{rpc}" in DOCS:
        return DOCS[f"{service}.{rpc}"]
    text = " ".join(comment.split()) or f"{rpc}."
    verb, _, rest = text.partition(" ")
    if verb.endswith("ies"):
        verb = verb[:-3] + "y"
    elif verb.endswith("es") and verb[:-2].endswith(("sh", "ch", "ss", "x")):
        verb = verb[:-2]
    elif verb.endswith("s") and not verb.endswith("ss"):
        verb = verb[:-1]
    return _RETURNS.sub(r"; return \1.", f"{verb} {rest}".strip())
