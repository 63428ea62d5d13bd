"""A secrets provider served through ``PluginProviderAdapter`` with a protoc servicer.

The registration callback uses the standard ``add_SecretsProviderServicer_to_server`` and a
plain (sync) ``SecretsProviderServicer`` subclass that aborts with ``NOT_FOUND``. ``close()``
appends ``closed`` to the file named by ``GESTALT_TEST_CLOSE_MARKER``.
"""

from __future__ import annotations

import os
from typing import Any

import grpc

from gestalt import PluginProviderAdapter
from gestalt.gen.v1 import secrets_pb2, secrets_pb2_grpc

MARKER_ENV = "GESTALT_TEST_CLOSE_MARKER"


class Store:
    """The wrapped provider: a dict of secrets with a close hook."""

    def __init__(self) -> None:
        self.values = {"db": "from-adapter"}

    def close(self) -> None:
        with open(os.environ[MARKER_ENV], "a", encoding="utf-8") as marker:
            marker.write("closed\n")


class Servicer(secrets_pb2_grpc.SecretsProviderServicer):
    """protoc-style servicer over a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def GetSecret(
        self, request: secrets_pb2.GetSecretRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.GetSecretResponse:
        if request.name not in self.store.values:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no secret named {request.name}")
        return secrets_pb2.GetSecretResponse(value=self.store.values[request.name])


def register(server: Any, store: Store) -> None:
    """Registration callback handed to the adapter."""
    secrets_pb2_grpc.add_SecretsProviderServicer_to_server(Servicer(store), server)


provider = PluginProviderAdapter("secrets", Store(), register)
