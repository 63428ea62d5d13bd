"""The gestalt-sdk code generator: ``proto/`` -> ``generated/``.

Run it as ``python -m codegen`` (or ``make gen``). It compiles the protos with protoc from
grpcio-tools and mypy-protobuf, turns the descriptors into view objects (:mod:`codegen.model`)
and renders typed clients, servicer adapters and dataclass mirrors through the Jinja2
templates in ``codegen/templates``.
"""
