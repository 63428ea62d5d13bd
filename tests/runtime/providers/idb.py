"""A minimal ``indexeddb`` provider: only ``CreateObjectStore``, as a plain method."""

from __future__ import annotations

import sys

import grpc
from google.protobuf import empty_pb2

from gestalt.gen.v1 import datastore_pb2


class Stores:
    """Remembers created store names; a second create of the same name is ALREADY_EXISTS."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def create_object_store(
        self, request: datastore_pb2.CreateObjectStoreRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        if request.name in self.names:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"store {request.name} exists")
        self.names.add(request.name)
        print("CALL create_object_store", request.name, file=sys.stderr, flush=True)
        return empty_pb2.Empty()


indexeddb = Stores()
