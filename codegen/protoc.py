"""Runs protoc (from grpcio-tools) and the mypy-protobuf plugins."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2


def include_dirs() -> list[str]:
    """Import roots for the well-known types and ``google/rpc/status.proto``."""
    import grpc_tools
    from google.rpc import status_pb2

    wkt = Path(grpc_tools.__file__).parent / "_proto"
    gapi = Path(status_pb2.__file__).parent.parent.parent
    return [str(wkt), str(gapi)]


def _run(args: list[str]) -> None:
    from grpc_tools import protoc

    # The mypy-protobuf plugins are console scripts next to the running interpreter.
    bindir = str(Path(sys.executable).parent)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = bindir + os.pathsep + old_path
    try:
        code = protoc.main(["protoc", *args])
    finally:
        os.environ["PATH"] = old_path
    if code != 0:
        raise RuntimeError(f"protoc failed with exit status {code}: protoc {' '.join(args)}")


def compile_protos(
    proto_root: Path, protos: list[str], out: Path
) -> descriptor_pb2.FileDescriptorSet:
    """Write pb2, grpc and ``.pyi`` modules for ``protos`` into ``out``; return descriptors.

    ``protos`` are paths relative to ``proto_root``; the returned set includes imports and
    source info, so comments are available to the templates.
    """
    includes = [f"-I{proto_root}", *(f"-I{d}" for d in include_dirs())]
    _run(
        [
            *includes,
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out=quiet:{out}",
            f"--mypy_grpc_out=quiet:{out}",
            *protos,
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        desc = Path(tmp) / "descriptors.pb"
        _run(
            [
                *includes,
                "--include_imports",
                "--include_source_info",
                f"--descriptor_set_out={desc}",
                *protos,
            ]
        )
        return descriptor_pb2.FileDescriptorSet.FromString(desc.read_bytes())
