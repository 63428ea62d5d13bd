"""Typed host-service methods: ``host_methods.toml`` beside the protos -> ``<name>_methods``.

The spec names, per RPC of a host service, only what the proto cannot say: the order of the
typed arguments, which of them are positional (before ``*``) and which required (``!``),
the docstring, the Python name when it differs from the RPC's, and the response field to
unwrap as a list (``returns``). Everything else follows from the request and response
messages:

* a string field is ``str`` (``required()`` when marked ``!``, else ``text()``, default
  ``""``); ``idempotency_key`` falls back to the client's default key;
* an integer is ``int = 0`` checked by ``count()``, a bool ``bool = False``, an enum its
  mirror enum defaulting to the zero value;
* a ``google.protobuf.Struct`` is ``Mapping[str, Any] | None = None`` (plain ``Mapping``
  when required); another message its mirror (``| None = None`` unless required), a
  repeated message ``Sequence[Mirror] = ()`` whose items are checked by ``each()``;
* an ``invocation_token`` field no argument names is filled from the client's scope;
* the result is the response mirror, ``None`` for ``Empty``, or the mirrors of the
  ``returns`` field as a list;
* ``timeout`` (not a field) is the call's deadline, ``float | None = None``;
* ``raw = true`` gives the published shape instead: the request as a pb2 message, its
  mirror or a protobuf-JSON dict (none for ``Empty``), keyword ``timeout``, and the pb2
  reply as it came.

``<name>_methods`` then holds one request builder per RPC and one ``<Service>Methods`` class
per service whose attributes are :class:`gestalt.gen.hostcalls.Call` descriptors, shared by
a sync and an asyncio client.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from codegen import naming
from codegen.model import INTS, Builder, ProtoFile, enum_module_name, full_name, pb2_module

FD = descriptor_pb2.FieldDescriptorProto
SPEC = "host_methods.toml"

_STRUCT = ".google.protobuf.Struct"
_EMPTY = ".google.protobuf.Empty"


@dataclass(frozen=True)
class Arg:
    """One typed argument: how it is declared and the field value built from it."""

    name: str
    declaration: str
    keyword_only: bool
    value: str


@dataclass(frozen=True)
class HostMethod:
    """One typed host-service method."""

    attr: str
    rpc: str
    builder: str
    request_ref: str
    args: list[Arg]
    fields: list[tuple[str, str]]
    doc: str
    decode: str
    #: For a ``returns`` list: (decoder name, response pb2 ref, item mirror, field).
    unwrap: tuple[str, str, str, str] | None
    #: For a ``raw`` method: (decoder name, response pb2 ref), the reply as it came.
    same: tuple[str, str] | None = None
    #: For a ``raw`` method: the request built from the ``request`` argument.
    raw_value: str = ""


@dataclass(frozen=True)
class HostService:
    """The typed methods of one host service."""

    name: str
    full_name: str
    methods: list[HostMethod]


@dataclass(frozen=True)
class MethodsFile:
    """The ``<name>_methods`` module of one proto file."""

    file: ProtoFile
    services: list[HostService]
    mirrors: dict[str, list[str]]


def load_spec(proto_root: Path) -> dict[str, dict[str, dict[str, str]]]:
    """The spec beside the protos (service full name -> RPC -> entry); empty without one."""
    path = proto_root / SPEC
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


class _Render:
    def __init__(self, builder: Builder, view: ProtoFile) -> None:
        self.builder = builder
        self.view = view
        self.mirrors: dict[str, set[str]] = {}

    def mirror(self, full_name: str) -> str:
        """The mirror's name as the module imports it."""
        info = self.builder.type_info(full_name)
        module = pb2_module(info.proto_file, "_mirrors")
        name = info.qualname if not info.is_enum else enum_module_name(info.qualname)
        self.mirrors.setdefault(module, set()).add(name.split(".")[0])
        return name

    def arg(self, where: str, spec: str, field: FD | None, keyword_only: bool) -> Arg:
        required = spec.endswith("!")
        name = spec.rstrip("!")
        if name == "timeout" and field is None:
            return Arg(name, "timeout: float | None = None", keyword_only, "")
        if field is None:
            raise SystemExit(f"{SPEC}: {where} has no field {name!r}")
        repeated = field.label == FD.LABEL_REPEATED

        def declared(annotation: str, default: str) -> str:
            return f"{name}: {annotation}" if required else f"{name}: {annotation} = {default}"

        if name == "idempotency_key" and field.type == FD.TYPE_STRING:
            return Arg(name, declared("str", '""'), keyword_only, f"scope.key({name})")
        if repeated and field.type == FD.TYPE_MESSAGE and self.builder.has_mirror(field.type_name):
            mirror = self.mirror(field.type_name)
            value = f'_h.each("{name}", {name}, {mirror})'
            return Arg(name, declared(f"Sequence[{mirror}]", "()"), keyword_only, value)
        if repeated:
            raise SystemExit(f"{SPEC}: {where}.{name}: repeated fields of this type are not typed")
        if field.type == FD.TYPE_STRING:
            check = "required" if required else "text"
            return Arg(name, declared("str", '""'), keyword_only, f'_h.{check}("{name}", {name})')
        if field.type in INTS:
            return Arg(name, declared("int", "0"), keyword_only, f'_h.count("{name}", {name})')
        if field.type == FD.TYPE_BOOL:
            return Arg(name, declared("bool", "False"), keyword_only, f"bool({name})")
        if field.type == FD.TYPE_ENUM:
            enum = self.mirror(field.type_name)
            zero = self.builder.type_info(field.type_name).zero_member
            pb2 = self.builder.pb2_ref(field.type_name)
            value = f'_t.cast("{pb2}.ValueType", {enum}({name}).value)'
            return Arg(name, declared(enum, f"{enum}.{zero}"), keyword_only, value)
        if field.type == FD.TYPE_MESSAGE and field.type_name == _STRUCT:
            annotation = "Mapping[str, Any]" if required else "Mapping[str, Any] | None"
            value = f'_h.struct("{name}", {name})'
            return Arg(name, declared(annotation, "None"), keyword_only, value)
        if field.type == FD.TYPE_MESSAGE and self.builder.has_mirror(field.type_name):
            mirror = self.mirror(field.type_name)
            if required:
                return Arg(name, f"{name}: {mirror}", keyword_only, f"{name}.to_pb()")
            value = f"None if {name} is None else {name}.to_pb()"
            return Arg(name, f"{name}: {mirror} | None = None", keyword_only, value)
        raise SystemExit(f"{SPEC}: {where}.{name}: fields of this type are not typed")

    def method(
        self, service: descriptor_pb2.ServiceDescriptorProto, rpc: str, entry: dict[str, str]
    ) -> HostMethod:
        where = f"{service.name}.{rpc}"
        found = [m for m in service.method if m.name == rpc]
        if not found:
            raise SystemExit(f"{SPEC}: {service.name} has no rpc {rpc!r}")
        (method,) = found
        request = self.builder.descriptors[method.input_type]
        fields = {f.name: f for f in request.field}
        args: list[Arg] = []
        keyword_only = False
        py_name = naming.escape(naming.snake_case(rpc), naming.CLIENT_RESERVED)
        builder = f"_{naming.snake_case(service.name)}_{py_name}"
        request_ref = self.builder.pb2_ref(method.input_type)
        unwrap = same = None
        raw_value = ""
        if entry.get("raw"):
            # The published shape: the request as a message, mirror or dict; the reply as is.
            if method.input_type == _EMPTY:
                raw_value = f"{request_ref}()"
            else:
                args.append(Arg("request", "request: Any", False, ""))
                attr = entry.get("name", py_name)
                raw_value = f'_h.coerce(request, {request_ref}, "{attr}")'
            args.append(Arg("timeout", "timeout: float | None = None", True, ""))
            same = (f"{builder}_result", self.builder.pb2_ref(method.output_type))
        for part in (p.strip() for p in entry.get("args", "").split(",")):
            if part == "*":
                keyword_only = True
            elif part:
                args.append(self.arg(where, part, fields.get(part.rstrip("!")), keyword_only))
        values = [(a.name, a.value) for a in args if a.value]
        if "invocation_token" in fields and "invocation_token" not in {a.name for a in args}:
            values.append(("invocation_token", "scope.invocation_token"))
        if same is not None:
            decode = same[0]
        elif method.output_type == _EMPTY:
            decode = "_h.nothing"
        elif "returns" in entry:
            reply = {f.name: f for f in self.builder.descriptors[method.output_type].field}
            item = reply.get(entry["returns"])
            if item is None or item.label != FD.LABEL_REPEATED:
                raise SystemExit(f"{SPEC}: {where}: no repeated field {entry['returns']!r}")
            decode = f"{builder}_result"
            mirror = self.mirror(item.type_name)
            output = self.builder.pb2_ref(method.output_type)
            unwrap = (decode, output, mirror, entry["returns"])
        else:
            decode = f"{self.mirror(method.output_type)}.from_pb"
        return HostMethod(
            attr=entry.get("name", py_name),
            rpc=py_name,
            builder=builder,
            request_ref=request_ref,
            args=args,
            fields=values,
            doc=entry["doc"],
            decode=decode,
            unwrap=unwrap,
            same=same,
            raw_value=raw_value,
        )


def methods_file(
    builder: Builder,
    view: ProtoFile,
    fd: descriptor_pb2.FileDescriptorProto,
    spec: dict[str, dict[str, dict[str, str]]],
) -> MethodsFile | None:
    """The view of ``<name>_methods`` for one proto file; None when the spec names none of
    its services."""
    render = _Render(builder, view)
    services = []
    for svc in fd.service:
        full = full_name(fd, svc.name)
        if full in spec:
            methods = [render.method(svc, rpc, entry) for rpc, entry in spec[full].items()]
            services.append(HostService(svc.name, full, methods))
    if not services:
        return None
    mirrors = {module: sorted(names) for module, names in sorted(render.mirrors.items())}
    return MethodsFile(view, services, mirrors)
