"""Descriptors -> small typed view objects that the templates read.

Everything a template prints is computed here (Python names, annotations, conversion
expressions, docstrings), so the templates stay free of logic. Iteration orders follow
declaration order in the proto, which is stable, so the output is deterministic.
"""

from __future__ import annotations

import keyword
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2

from codegen import kinds, naming

FD = descriptor_pb2.FieldDescriptorProto

_SCALARS: dict[int, tuple[str, str]] = {
    FD.TYPE_DOUBLE: ("float", "0.0"),
    FD.TYPE_FLOAT: ("float", "0.0"),
    FD.TYPE_INT64: ("int", "0"),
    FD.TYPE_UINT64: ("int", "0"),
    FD.TYPE_INT32: ("int", "0"),
    FD.TYPE_FIXED64: ("int", "0"),
    FD.TYPE_FIXED32: ("int", "0"),
    FD.TYPE_UINT32: ("int", "0"),
    FD.TYPE_SFIXED32: ("int", "0"),
    FD.TYPE_SFIXED64: ("int", "0"),
    FD.TYPE_SINT32: ("int", "0"),
    FD.TYPE_SINT64: ("int", "0"),
    FD.TYPE_BOOL: ("bool", "False"),
    FD.TYPE_STRING: ("str", "''"),
    FD.TYPE_BYTES: ("bytes", "b''"),
}
#: The integer field types.
INTS = frozenset(t for t, (annotation, _) in _SCALARS.items() if annotation == "int")
_BUILTIN_TYPES = frozenset({"float", "int", "bool", "str", "bytes", "list", "dict"})

#: Well-known types with a native Python mirror: full name -> (annotation template,
#: callable turning pb2 into Python, callable turning Python into pb2). Wrappers build
#: their pb2 directly from the value (``StringValue(value=...)`` is keyword-only, so the
#: template passes ``value=``; see ``_s.wrap``).
_WKT: dict[str, tuple[str, str, str]] = {
    ".google.protobuf.Struct": ("{dict}[{str}, _t.Any]", "_s.struct_from_pb", "_s.struct_to_pb"),
    ".google.protobuf.Value": ("_t.Any", "_s.value_from_pb", "_s.value_to_pb"),
    ".google.protobuf.ListValue": ("{list}[_t.Any]", "_s.list_from_pb", "_s.list_to_pb"),
    ".google.protobuf.Timestamp": ("_dt.datetime", "_s.timestamp_from_pb", "_s.timestamp_to_pb"),
    ".google.protobuf.Duration": ("_dt.timedelta", "_s.duration_from_pb", "_s.duration_to_pb"),
    ".google.protobuf.DoubleValue": ("{float}", "_s.unwrap", "_s.wrappers_pb2.DoubleValue"),
    ".google.protobuf.FloatValue": ("{float}", "_s.unwrap", "_s.wrappers_pb2.FloatValue"),
    ".google.protobuf.Int64Value": ("{int}", "_s.unwrap", "_s.wrappers_pb2.Int64Value"),
    ".google.protobuf.UInt64Value": ("{int}", "_s.unwrap", "_s.wrappers_pb2.UInt64Value"),
    ".google.protobuf.Int32Value": ("{int}", "_s.unwrap", "_s.wrappers_pb2.Int32Value"),
    ".google.protobuf.UInt32Value": ("{int}", "_s.unwrap", "_s.wrappers_pb2.UInt32Value"),
    ".google.protobuf.BoolValue": ("{bool}", "_s.unwrap", "_s.wrappers_pb2.BoolValue"),
    ".google.protobuf.StringValue": ("{str}", "_s.unwrap", "_s.wrappers_pb2.StringValue"),
    ".google.protobuf.BytesValue": ("{bytes}", "_s.unwrap", "_s.wrappers_pb2.BytesValue"),
}


def _doc(text: str) -> str:
    """Normalise a proto comment into docstring text: dedented lines, safe quoting."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    body = "\n".join(line.rstrip() for line in lines).strip()
    return body.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def full_name(fd: descriptor_pb2.FileDescriptorProto, name: str) -> str:
    """A top-level definition's full name: ``gestalt.provider.v1.Cache`` for ``Cache``."""
    return f"{fd.package}.{name}" if fd.package else name


def pb2_module(proto_name: str, suffix: str = "_pb2") -> str:
    """``gestalt/gen/v1/cache.proto`` -> ``gestalt.gen.v1.cache_pb2`` (or another ``suffix``)."""
    return proto_name[: -len(".proto")].replace("/", ".") + suffix


def _module_base(proto_name: str) -> str:
    return posixpath.basename(proto_name)[: -len(".proto")]


@dataclass(frozen=True)
class Import:
    """One ``from package import module as alias`` line."""

    package: str
    module: str
    alias: str

    @property
    def line(self) -> str:
        """The import statement."""
        if self.module == self.alias:
            return f"from {self.package} import {self.module}"
        return f"from {self.package} import {self.module} as {self.alias}"


@dataclass(frozen=True)
class TypeInfo:
    """Where a message or enum lives: its proto file and its dotted name inside the module."""

    full_name: str
    proto_file: str
    qualname: str
    is_enum: bool
    is_map_entry: bool
    #: For enums: the Python member name of the zero value (a field's default).
    zero_member: str = ""


@dataclass
class EnumValue:
    """One enum member."""

    proto_name: str
    py_name: str
    number: int
    doc: str


@dataclass
class Enum:
    """A proto enum and the Python ``IntEnum`` mirror generated for it.

    Every enum class is defined at module level under :attr:`module_name` (``Color``, or
    ``_Outer_Level`` for one nested in ``Outer``) and nested ones are then bound inside their
    message class. Field defaults use the module-level name: inside a class body the
    enclosing class does not exist yet.
    """

    name: str
    full_name: str
    qualname: str
    module_name: str
    doc: str
    values: list[EnumValue]


@dataclass
class Field:
    """One message field with everything the mirror template needs."""

    proto_name: str
    py_name: str
    number: int
    doc: str
    deprecated: bool
    #: The proto name is a Python keyword, so pb2 takes it through ``**{...}``.
    is_keyword: bool
    #: A scalar with presence (proto3 ``optional`` or oneof member): pb2 constructors do
    #: not take None for it, so ``to_pb`` assigns it after construction when set.
    assign_after: bool
    annotation: str
    default: str
    to_pb: str
    from_pb: str


@dataclass
class Oneof:
    """A real (not synthetic) oneof: at most one member may be set on a mirror."""

    name: str
    py_names: list[str]


@dataclass
class Message:
    """A proto message and its dataclass mirror."""

    name: str
    full_name: str
    qualname: str
    pb2_ref: str
    doc: str
    fields: list[Field]
    oneofs: list[Oneof]
    messages: list[Message]
    enums: list[Enum]


@dataclass
class Method:
    """One RPC in Python terms."""

    name: str
    py_name: str
    path: str
    doc: str
    deprecated: bool
    client_streaming: bool
    server_streaming: bool
    input_ref: str
    output_ref: str
    #: The request and response mirrors by name (``Outer.Inner`` for nested ones), ``""``
    #: for ``google.protobuf.Empty`` and ``None`` for other types without a mirror.
    input_mirror: str | None = None
    output_mirror: str | None = None
    #: For a provider kind in :data:`codegen.kinds.FLAT`: the method's one argument in place
    #: of a request with a single scalar field (``""`` for a request without fields), and
    #: ``module:Name`` of the items returned as a list in place of a reply holding only them.
    flat_arg: str | None = None
    flat_item: str | None = None

    @property
    def provider_doc(self) -> str:
        """The docstring of this RPC's method on a typed provider base."""
        service = self.path.split("/")[1].rpartition(".")[2]
        return kinds.method_doc(service, self.name, self.doc)

    @property
    def provider_params(self) -> str:
        """The parameters after ``self`` of this RPC's provider base method."""
        if self.flat_arg is not None:
            return self.flat_arg
        return f"request: {self.input_name}" if self.input_name else ""

    @property
    def provider_result(self) -> str:
        """What this RPC's provider base method returns (before ``Result[...]``)."""
        if self.flat_item:
            return f"list[{self.flat_item.rpartition(':')[2]}]"
        return self.output_name

    @property
    def provider_refs(self) -> list[str]:
        """``module:Name`` of the mirrors the provider base method annotates with."""
        refs = [] if self.flat_arg is not None else [self.input_mirror or ""]
        refs.append(self.flat_item or self.output_mirror or "")
        return [ref for ref in refs if ref]

    @property
    def input_name(self) -> str:
        """The request mirror's name as a provider base annotates it (``""``: no request)."""
        return (self.input_mirror or "").rpartition(":")[2]

    @property
    def output_name(self) -> str:
        """The response mirror's name for a provider base (``None`` for ``Empty``)."""
        return (self.output_mirror or "").rpartition(":")[2] or "None"

    @property
    def kind(self) -> str:
        """grpc's spelling of the streaming kind, e.g. ``unary_stream``."""
        return (
            ("stream" if self.client_streaming else "unary")
            + "_"
            + ("stream" if self.server_streaming else "unary")
        )


@dataclass
class Service:
    """One gRPC service."""

    name: str
    full_name: str
    py_name: str
    doc: str
    methods: list[Method]

    @property
    def is_provider_kind(self) -> bool:
        """Whether a typed provider base is rendered for it: a ``*Provider`` service whose
        RPCs are all unary over mirrors (or ``Empty``)."""
        return (
            self.name.endswith("Provider")
            and bool(self.methods)
            and all(
                m.kind == "unary_unary" and None not in (m.input_mirror, m.output_mirror)
                for m in self.methods
            )
        )


@dataclass
class ProtoFile:
    """One proto file and the modules generated from it."""

    name: str
    package: str
    module_package: str
    base: str
    doc: str
    services: list[Service]
    messages: list[Message]
    enums: list[Enum]
    pb2_imports: list[Import] = field(default_factory=list)
    #: Every enum of the file, nested ones included, in declaration order.
    all_enums: list[Enum] = field(default_factory=list)
    mirror_imports: list[Import] = field(default_factory=list)
    mirror_pb2_imports: list[Import] = field(default_factory=list)
    #: Whether ``host_methods.toml`` gives it a ``<name>_methods`` module.
    has_methods: bool = False

    @property
    def provider_kinds(self) -> list[Service]:
        """The services that get a typed provider base in ``<name>_providers``."""
        return [s for s in self.services if s.is_provider_kind]

    @property
    def provider_imports(self) -> dict[str, list[str]]:
        """Mirror module -> the top-level names the provider bases annotate with."""
        found: dict[str, set[str]] = {}
        for service in self.provider_kinds:
            for m in service.methods:
                for ref in m.provider_refs:
                    module, _, name = ref.rpartition(":")
                    found.setdefault(module, set()).add(name.split(".")[0])
        return {module: sorted(names) for module, names in sorted(found.items())}


class _Docs:
    """Leading comments of one file, keyed by SourceCodeInfo path."""

    def __init__(self, fd: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path: dict[tuple[int, ...], str] = {}
        for loc in fd.source_code_info.location:
            if loc.leading_comments:
                self._by_path[tuple(loc.path)] = _doc(loc.leading_comments)
        detached = [
            loc.leading_detached_comments[0]
            for loc in fd.source_code_info.location
            if tuple(loc.path) in {(12,), (2,)} and loc.leading_detached_comments
        ]
        self.file_doc = _doc(detached[0]) if detached else ""

    def get(self, path: Iterable[int]) -> str:
        return self._by_path.get(tuple(path), "")


class Builder:
    """Turns a ``FileDescriptorSet`` into :class:`ProtoFile` views for the chosen files."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self._files = {fd.name: fd for fd in fds.file}
        self._types: dict[str, TypeInfo] = {}
        #: Full proto name (``.pkg.Msg``) -> the message's descriptor.
        self.descriptors: dict[str, descriptor_pb2.DescriptorProto] = {}
        for fd in fds.file:
            prefix = "." + fd.package if fd.package else ""
            for msg in fd.message_type:
                self._index_message(fd.name, prefix, "", msg)
            for enum in fd.enum_type:
                self._index_enum(fd.name, prefix, "", enum)

    def _index_message(
        self, proto: str, prefix: str, outer: str, msg: descriptor_pb2.DescriptorProto
    ) -> None:
        full = f"{prefix}.{msg.name}"
        qual = f"{outer}.{msg.name}" if outer else msg.name
        self._types[full] = TypeInfo(full, proto, qual, False, msg.options.map_entry)
        self.descriptors[full] = msg
        for nested in msg.nested_type:
            self._index_message(proto, full, qual, nested)
        for enum in msg.enum_type:
            self._index_enum(proto, full, qual, enum)

    def _index_enum(
        self, proto: str, prefix: str, outer: str, enum: descriptor_pb2.EnumDescriptorProto
    ) -> None:
        full = f"{prefix}.{enum.name}"
        qual = f"{outer}.{enum.name}" if outer else enum.name
        zero = next((v for v in enum.value if v.number == 0), enum.value[0])
        zero_member = naming.enum_member_name(enum.name, zero.name)
        self._types[full] = TypeInfo(full, proto, qual, True, False, zero_member)

    # -- references ---------------------------------------------------------------------

    def _pb2_alias(self, proto: str) -> str:
        # Other projects' modules get their full path, so ``empty_pb2`` cannot clash.
        if proto.startswith("google/"):
            return proto[: -len(".proto")].replace("/", "_") + "_pb2"
        return _module_base(proto) + "_pb2"

    def pb2_ref(self, full_name: str) -> str:
        """The pb2 class or enum wrapper for a full proto name, via its module alias."""
        info = self._types[full_name]
        return f"{self._pb2_alias(info.proto_file)}.{info.qualname}"

    def _mirror_ref(self, info: TypeInfo, current: str) -> str:
        if info.proto_file == current:
            return info.qualname
        return f"{_module_base(info.proto_file)}_mirrors.{info.qualname}"

    def _flat_arg(self, full_name: str) -> str | None:
        """``name: type`` of a request's one scalar field, ``""`` for a request without fields."""
        msg = self.descriptors.get(full_name)
        if msg is None or full_name == ".google.protobuf.Empty":
            return None
        if not msg.field:
            return ""
        (only, *rest) = msg.field
        if rest or only.label == FD.LABEL_REPEATED or only.type not in _SCALARS:
            return None
        return f"{only.name}: {_SCALARS[only.type][0]}"

    def _flat_item(self, full_name: str) -> str | None:
        """``module:Name`` of the items of a reply holding nothing but a list of mirrors."""
        msg = self.descriptors.get(full_name)
        if msg is None or len(msg.field) != 1:
            return None
        (only,) = msg.field
        if only.label != FD.LABEL_REPEATED or only.type != FD.TYPE_MESSAGE:
            return None
        return self._method_mirror(only.type_name) or None

    def _method_mirror(self, full_name: str) -> str | None:
        """``module:Name`` of a request or response mirror (see :attr:`Method.input_mirror`)."""
        if full_name == ".google.protobuf.Empty":
            return ""
        if not self._has_mirror(full_name):
            return None
        info = self._types[full_name]
        return f"{pb2_module(info.proto_file, '_mirrors')}:{info.qualname}"

    def file(self, proto: str) -> descriptor_pb2.FileDescriptorProto:
        """The descriptor of one compiled proto file."""
        return self._files[proto]

    def has_mirror(self, full_name: str) -> bool:
        """Whether a message has a dataclass mirror (well-known types do not)."""
        return self._has_mirror(full_name)

    def type_info(self, full_name: str) -> TypeInfo:
        """What the index knows of a message or enum by its full proto name."""
        return self._types[full_name]

    def _has_mirror(self, full_name: str) -> bool:
        return not self._types[full_name].proto_file.startswith("google/")

    # -- files ----------------------------------------------------------------------------

    def build(self, proto: str) -> ProtoFile:
        """The view of one proto file."""
        fd = self._files[proto]
        docs = _Docs(fd)
        pkg_prefix = "." + fd.package if fd.package else ""
        self._used_pb2: set[str] = {proto}
        self._used_mirrors: set[str] = set()
        messages = [
            self._message(fd, docs, [4, i], pkg_prefix, msg)
            for i, msg in enumerate(fd.message_type)
        ]
        enums = [
            self._enum(docs, [5, i], f"{pkg_prefix}.{e.name}", e.name, e)
            for i, e in enumerate(fd.enum_type)
        ]
        mirror_pb2 = sorted(self._used_pb2)
        services = [self._service(fd, docs, i, svc) for i, svc in enumerate(fd.service)]
        all_enums = list(enums)
        pending = list(messages)
        while pending:
            msg = pending.pop(0)
            all_enums.extend(msg.enums)
            pending.extend(msg.messages)
        base = _module_base(proto)
        module_package = posixpath.dirname(proto).replace("/", ".")
        return ProtoFile(
            name=proto,
            package=fd.package,
            module_package=module_package,
            base=base,
            doc=docs.file_doc,
            services=services,
            messages=messages,
            enums=enums,
            all_enums=all_enums,
            pb2_imports=[self._pb2_import(p) for p in sorted(self._used_pb2)],
            mirror_pb2_imports=[self._pb2_import(p) for p in mirror_pb2],
            mirror_imports=[
                Import(
                    posixpath.dirname(p).replace("/", "."),
                    _module_base(p) + "_mirrors",
                    _module_base(p) + "_mirrors",
                )
                for p in sorted(self._used_mirrors)
            ],
        )

    def _pb2_import(self, proto: str) -> Import:
        module = pb2_module(proto)
        package, _, name = module.rpartition(".")
        return Import(package, name, self._pb2_alias(proto))

    def _service(
        self,
        fd: descriptor_pb2.FileDescriptorProto,
        docs: _Docs,
        index: int,
        svc: descriptor_pb2.ServiceDescriptorProto,
    ) -> Service:
        full = full_name(fd, svc.name)
        flat = svc.name in kinds.FLAT
        methods = []
        for j, m in enumerate(svc.method):
            for t in (m.input_type, m.output_type):
                self._used_pb2.add(self._types[t].proto_file)
            methods.append(
                Method(
                    name=m.name,
                    py_name=naming.escape(naming.snake_case(m.name), naming.CLIENT_RESERVED),
                    path=f"/{full}/{m.name}",
                    doc=docs.get([6, index, 2, j]),
                    deprecated=m.options.deprecated,
                    client_streaming=m.client_streaming,
                    server_streaming=m.server_streaming,
                    input_ref=self.pb2_ref(m.input_type),
                    output_ref=self.pb2_ref(m.output_type),
                    input_mirror=self._method_mirror(m.input_type),
                    output_mirror=self._method_mirror(m.output_type),
                    flat_arg=self._flat_arg(m.input_type) if flat else None,
                    flat_item=self._flat_item(m.output_type) if flat else None,
                )
            )
        return Service(
            name=svc.name,
            full_name=full,
            py_name=naming.snake_case(svc.name),
            doc=docs.get([6, index]),
            methods=methods,
        )

    def _enum(
        self,
        docs: _Docs,
        path: list[int],
        full: str,
        qualname: str,
        enum: descriptor_pb2.EnumDescriptorProto,
    ) -> Enum:
        return Enum(
            name=enum.name,
            full_name=full,
            qualname=qualname,
            module_name=enum_module_name(qualname),
            doc=docs.get(path),
            values=[
                EnumValue(
                    proto_name=v.name,
                    py_name=naming.enum_member_name(enum.name, v.name),
                    number=v.number,
                    doc=docs.get([*path, 2, k]),
                )
                for k, v in enumerate(enum.value)
            ],
        )

    def _message(
        self,
        fd: descriptor_pb2.FileDescriptorProto,
        docs: _Docs,
        path: list[int],
        prefix: str,
        msg: descriptor_pb2.DescriptorProto,
    ) -> Message:
        full = f"{prefix}.{msg.name}"
        info = self._types[full]
        taken = {f.name for f in msg.field}
        builtins = {name: (f"_b.{name}" if name in taken else name) for name in _BUILTIN_TYPES}
        fields = [
            self._field(fd, docs, [*path, 2, i], msg, f, builtins) for i, f in enumerate(msg.field)
        ]
        oneofs: list[Oneof] = []
        for k, decl in enumerate(msg.oneof_decl):
            members = [
                naming.escape(f.name, naming.MIRROR_RESERVED)
                for f in msg.field
                if f.HasField("oneof_index") and f.oneof_index == k and not f.proto3_optional
            ]
            if members:
                oneofs.append(Oneof(decl.name, members))
        nested = [
            self._message(fd, docs, [*path, 3, i], full, n)
            for i, n in enumerate(msg.nested_type)
            if not n.options.map_entry
        ]
        enums = [
            self._enum(docs, [*path, 4, i], f"{full}.{e.name}", f"{info.qualname}.{e.name}", e)
            for i, e in enumerate(msg.enum_type)
        ]
        return Message(
            name=msg.name,
            full_name=full,
            qualname=info.qualname,
            pb2_ref=self.pb2_ref(full),
            doc=docs.get(path),
            fields=fields,
            oneofs=oneofs,
            messages=nested,
            enums=enums,
        )

    def _value_conv(
        self, fd: descriptor_pb2.FileDescriptorProto, f: FD, builtins: dict[str, str]
    ) -> tuple[str, str | None, str | None, bool]:
        """(annotation, from_pb format, to_pb format, has_presence) for a single value.

        The formats take the value expression at ``{}``; None means the value passes as is.
        """
        if f.type in _SCALARS:
            return builtins[_SCALARS[f.type][0]], None, None, False
        info = self._types[f.type_name]
        if f.type == FD.TYPE_ENUM and not self._has_mirror(f.type_name):
            # An enum from another project's proto (``google.protobuf.NullValue``): its
            # number, as pb2 exposes it.
            self._used_pb2.add(info.proto_file)
            cast = f'_t.cast("{self.pb2_ref(f.type_name)}.ValueType", {{}})'
            return builtins["int"], None, cast, False
        if f.type == FD.TYPE_ENUM:
            self._note_mirror(info, fd.name)
            ref = self._mirror_ref(info, fd.name)
            # pb2 stubs type enum fields with a NewType of int; the IntEnum member is that
            # int already, so a cast (no conversion) satisfies the checker.
            cast = f'_t.cast("{self.pb2_ref(f.type_name)}.ValueType", {{}})'
            return ref, f"{ref}({{}})", cast, False
        if f.type_name == ".google.protobuf.Empty":
            # A flag: True when present. pb2 takes None for an absent message field.
            return builtins["bool"], "True", "_s.empty_to_pb({})", False
        if f.type_name in _WKT:
            ann, from_fn, to_fn = _WKT[f.type_name]
            to_fmt = (
                f"{to_fn}(value={{}})" if to_fn.startswith("_s.wrappers_pb2") else f"{to_fn}({{}})"
            )
            return ann.format(**builtins), f"{from_fn}({{}})", to_fmt, True
        if not self._has_mirror(f.type_name):
            self._used_pb2.add(info.proto_file)
            return self.pb2_ref(f.type_name), "_s.copy_message({})", None, True
        self._note_mirror(info, fd.name)
        ref = self._mirror_ref(info, fd.name)
        return ref, f"{ref}.from_pb({{}})", "{}.to_pb()", True

    def _note_mirror(self, info: TypeInfo, current: str) -> None:
        if info.proto_file != current:
            self._used_mirrors.add(info.proto_file)

    def _field(
        self,
        fd: descriptor_pb2.FileDescriptorProto,
        docs: _Docs,
        path: list[int],
        msg: descriptor_pb2.DescriptorProto,
        f: FD,
        builtins: dict[str, str],
    ) -> Field:
        py = naming.escape(f.name, naming.MIRROR_RESERVED)
        attr = f"m.{f.name}" if not keyword.iskeyword(f.name) else f'getattr(m, "{f.name}")'
        self_attr = f"self.{py}"
        entry = None
        if f.label == FD.LABEL_REPEATED and f.type == FD.TYPE_MESSAGE:
            info = self._types[f.type_name]
            if info.is_map_entry:
                entry = next(n for n in msg.nested_type if n.name == f.type_name.rsplit(".", 1)[1])
        assign_after = False
        doc = docs.get(path)
        if f.options.deprecated:
            doc = (doc + "\n\n" if doc else "") + "Deprecated: kept for wire compatibility."
        if entry is not None:
            key_ann = builtins[_SCALARS[entry.field[0].type][0]]
            v_ann, v_from, v_to, _ = self._value_conv(fd, entry.field[1], builtins)
            from_pb = (
                f"{{k: {v_from.format('v')} for k, v in {attr}.items()}}"
                if v_from
                else f"dict({attr})"
            )
            to_pb = (
                f"{{k: {v_to.format('v')} for k, v in {self_attr}.items()}}" if v_to else self_attr
            )
            ann = f"{builtins['dict']}[{key_ann}, {v_ann}]"
            default = f"_dc.field(default_factory={builtins['dict']})"
        elif f.label == FD.LABEL_REPEATED:
            v_ann, v_from, v_to, _ = self._value_conv(fd, f, builtins)
            from_pb = f"[{v_from.format('v')} for v in {attr}]" if v_from else f"list({attr})"
            to_pb = f"[{v_to.format('v')} for v in {self_attr}]" if v_to else self_attr
            ann = f"{builtins['list']}[{v_ann}]"
            default = f"_dc.field(default_factory={builtins['list']})"
        else:
            v_ann, v_from, v_to, presence = self._value_conv(fd, f, builtins)
            in_oneof = f.HasField("oneof_index")
            if presence or in_oneof:
                is_flag = f.type_name == ".google.protobuf.Empty"
                ann = "_t.Literal[True] | None" if is_flag else f"{v_ann} | None"
                default = "None"
                value = v_from.format(attr) if v_from else attr
                from_pb = f'{value} if m.HasField("{f.name}") else None'
                assign_after = f.type != FD.TYPE_MESSAGE
                if assign_after:
                    to_pb = v_to.format(self_attr) if v_to else self_attr
                else:
                    to_pb = (
                        f"None if {self_attr} is None else {v_to.format(self_attr)}"
                        if v_to
                        else self_attr
                    )
            elif f.type_name == ".google.protobuf.Empty":
                ann, default = v_ann, "False"
                from_pb = f'm.HasField("{f.name}")'
                to_pb = v_to.format(self_attr) if v_to else self_attr
            else:
                ann = v_ann
                if f.type == FD.TYPE_ENUM and self._has_mirror(f.type_name):
                    enum_info = self._types[f.type_name]
                    zero = enum_info.zero_member
                    if enum_info.proto_file == fd.name:
                        default = f"{enum_module_name(enum_info.qualname)}.{zero}"
                    else:
                        default = f"{v_ann}.{zero}"
                else:
                    default = _SCALARS.get(f.type, ("int", "0"))[1]
                from_pb = v_from.format(attr) if v_from else attr
                to_pb = v_to.format(self_attr) if v_to else self_attr
        return Field(
            proto_name=f.name,
            py_name=py,
            number=f.number,
            doc=doc,
            deprecated=f.options.deprecated,
            is_keyword=keyword.iskeyword(f.name),
            assign_after=assign_after,
            annotation=ann,
            default=default,
            to_pb=to_pb,
            from_pb=from_pb,
        )


def enum_module_name(qualname: str) -> str:
    return qualname if "." not in qualname else "_" + qualname.replace(".", "_")
