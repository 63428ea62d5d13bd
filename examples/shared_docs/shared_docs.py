"""Shared docs: a plugin that checks authorization and calls plugins through the host.

* ``read`` answers a document only to a caller the host's authorization service lets
  ``read`` it (``user:<subject id>`` on ``doc:<id>``);
* ``share`` lets a document's owner grant another user ``read``, by writing a relationship;
* ``readable`` lists the documents the caller may read, walking every page of the search;
* ``digest`` calls ``read`` through the host's plugin invoker, once per document, with the
  caller's invocation token (the host checks the caller again for each call), and
  ``digest_async`` does the same from an ``async def`` handler, concurrently;
* ``digest_later`` starts a workflow run of ``digest`` through the host's workflow manager;
  the run acts for the caller, so it reads what the caller may read.

The plugin calls itself by the name the host configured for it, so it runs unchanged under
``gestalt dev`` and ``gestalt.testing``, whose local invoker routes that name to it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gestalt import AsyncPluginInvoker, Error, Model, Plugin, Request, plugin_target

plugin = Plugin("shared_docs")
DOCS = {"1": "Quarterly plan", "2": "Team roster", "3": "Launch notes"}
CONFIGURED: dict[str, str] = {"name": "shared_docs"}


@plugin.configure
def remember_name(name: str, config: dict[str, Any]) -> None:
    """Keep the name the host gave this plugin: calls to ourselves go to it."""
    CONFIGURED["name"] = name or CONFIGURED["name"]


class Doc(Model):
    """One document."""

    id: str
    text: str


class DocRef(Model):
    """Which document."""

    doc: str


class ShareInput(Model):
    """Which document to share with whom."""

    doc: str
    user: str


class DigestInput(Model):
    """The documents to collect."""

    docs: list[str]


def caller(request: Request) -> str:
    """The caller as an authorization subject; anonymous callers are refused."""
    if not request.subject.id:
        raise Error(401, "sign in first")
    return f"user:{request.subject.id}"


@plugin.operation(read_only=True)
def read(params: DocRef, request: Request) -> Doc:
    """The document ``doc``, if the caller may read it."""
    doc = params.doc
    if doc not in DOCS:
        raise Error(404, f"no document {doc!r}")
    if not request.authorization().check(caller(request), "read", f"doc:{doc}"):
        raise Error(403, f"you may not read document {doc}")
    return Doc(id=doc, text=DOCS[doc])


@plugin.operation
def share(params: ShareInput, request: Request) -> dict[str, bool]:
    """Let ``user`` read ``doc``; only its owner may."""
    doc, user = params.doc, params.user
    authorization = request.authorization()
    if not authorization.check(caller(request), "owner", f"doc:{doc}"):
        raise Error(403, f"only the owner may share document {doc}")
    authorization.write_relationships([(f"user:{user}", "read", f"doc:{doc}")])
    return {"shared": True}


@plugin.operation(read_only=True)
def readable(request: Request) -> list[str]:
    """The ids of the documents the caller may read."""
    found = request.authorization().iter_resources(caller(request), "read", "doc", page_size=2)
    return sorted(resource.id for resource in found)


@plugin.operation(read_only=True)
def digest(params: DigestInput, request: Request) -> dict[str, Any]:
    """Each document's text via the ``read`` operation, or why it could not be read."""
    texts: dict[str, str] = {}
    refused: dict[str, int] = {}
    with request.invoker() as invoker:
        for doc in params.docs:
            result = invoker.invoke(CONFIGURED["name"], "read", {"doc": doc})
            if result.ok:
                texts[doc] = result.decode(Doc).text
            else:
                refused[doc] = int(result.status or 500)
    return {"texts": texts, "refused": refused}


@plugin.operation(read_only=True)
async def digest_async(params: DigestInput, request: Request) -> dict[str, str]:
    """Like ``digest``, from ``async def``, all documents at once; fails on any refusal."""
    docs = params.docs
    async with AsyncPluginInvoker(request.invocation_token) as invoker:
        results = await asyncio.gather(
            *(invoker.invoke(CONFIGURED["name"], "read", {"doc": doc}) for doc in docs)
        )
    return {
        doc: result.raise_for_status().decode(Doc).text
        for doc, result in zip(docs, results, strict=True)
    }


@plugin.operation
def digest_later(params: DigestInput, request: Request) -> dict[str, str]:
    """Start a workflow run that collects the documents; answers the run's id at once."""
    caller(request)
    target = plugin_target(CONFIGURED["name"], "digest", {"docs": params.docs})
    with request.workflow_manager(idempotency_key=request.idempotency_key) as workflows:
        started = workflows.start_run("local", target)
    return {"run": started.run.id if started.run else ""}
