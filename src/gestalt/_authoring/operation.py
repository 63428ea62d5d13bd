"""Operation registration: read a handler's signature once and plan every call.

Handler shapes: ``()``, ``(req: Request)``, ``(params: T)`` and ``(params: T, req: Request)``
(the second parameter may also be left unannotated). The input annotation ``T`` decides how
parameters arrive:

* a ``Model`` or dataclass: the parameter object is decoded into it; the catalog lists one
  parameter per field;
* ``dict`` / ``Mapping`` (optionally parameterised), ``Any`` or ``object``: the parameter
  object itself, decoded per the annotation; the catalog lists no parameters;
* anything else (``str``, ``int``, ``list[str]``, an ``Enum``, ``datetime`` ...): a single
  parameter named after the handler argument, listed in the catalog, required unless the
  argument has a default or accepts ``None`` (quirk 11: the reference accepted one key of any
  name and listed nothing).

Rejected at registration with ``TypeError``: an unannotated or ``None``-annotated input
(quirk 10: the reference registered it and failed every call with a 500), more than two
parameters, ``*args`` / ``**kwargs`` / keyword-only parameters, a second parameter annotated
with something other than ``Request``, and annotations ``gestalt._authoring.decode`` cannot decode.
Operation ids and methods are checked with ``ValueError`` (see ``gestalt._authoring.catalog``).
"""

from __future__ import annotations

import dataclasses
import inspect
import marshal
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from gestalt._authoring.callers import caller_frame
from gestalt._authoring.catalog import (
    CatalogError,
    catalog_value,
    check_method,
    check_operation_id,
    clean_roles,
)
from gestalt._authoring.decode import (
    DecodeError,
    Decoder,
    NoneType,
    accepts_none,
    catalog_schema,
    compile_decoder,
    dataclass_fields,
    field_required,
    without_none,
)
from gestalt._authoring.model import DESCRIPTION_KEY, is_dataclass_type

if TYPE_CHECKING:
    from gestalt._authoring.request import Request

#: How an operation turns the decoded parameters and the request into the handler's arguments.
#: The request comes as a function that builds it, called only by handlers that take it: the
#: runtime's ``Request`` costs several microseconds to build from the host's message.
Arguments: TypeAlias = "Callable[[Mapping[str, Any], Callable[[], Request]], tuple[Any, ...]]"
_MISSING: Any = object()
DEFAULT_OPERATION_METHOD = "POST"
"""The HTTP method of an operation registered without ``method=``."""

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_STAR_ARGS = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
_WHOLE = (dict, Mapping, typing.MutableMapping, Any, object)


class Operation:
    """A registered operation: catalog facts plus a ready-made plan for calling the handler.

    A plain slotted class, not a ``NamedTuple``: defining one costs about half a millisecond
    at import, which every plugin would pay.
    """

    __slots__ = (
        "allowed_roles",
        "arguments",
        "description",
        "handler",
        "id",
        "is_async",
        "method",
        "parameters",
        "read_only",
        "tags",
        "title",
        "visible",
    )

    def __init__(
        self,
        *,
        id: str,
        method: str,
        title: str,
        description: str,
        read_only: bool,
        allowed_roles: tuple[str, ...],
        tags: tuple[str, ...],
        visible: bool | None,
        handler: Callable[..., Any],
        is_async: bool,
        parameters: bytes | tuple[dict[str, Any], ...],
        arguments: Arguments,
    ) -> None:
        self.id = id
        self.method = method
        self.title = title
        self.description = description
        self.read_only = read_only
        self.allowed_roles = allowed_roles
        self.tags = tags
        self.visible = visible
        self.handler = handler
        self.is_async = is_async
        self.parameters = parameters
        self.arguments = arguments

    def catalog_entry(self) -> dict[str, Any]:
        """Return this operation's catalog entry (host camelCase keys).

        The parameter dicts may be this operation's own: copy the entry before changing it.
        """
        entry: dict[str, Any] = {"id": self.id, "method": self.method}
        if self.title:
            entry["title"] = self.title
        if self.description:
            entry["description"] = self.description
        if self.read_only:
            entry["readOnly"] = True
        parameters = self.parameters
        if parameters:
            entry["parameters"] = list(
                marshal.loads(parameters) if isinstance(parameters, bytes) else parameters
            )
        if self.allowed_roles:
            entry["allowedRoles"] = list(self.allowed_roles)
        if self.tags:
            entry["tags"] = list(self.tags)
        if self.visible is not None:
            entry["visible"] = self.visible
        return entry


def build_operation(
    func: Callable[..., Any],
    *,
    id: str | None,
    method: str,
    title: str,
    description: str,
    allowed_roles: list[str] | None,
    tags: list[str] | None,
    read_only: bool,
    visible: bool | None,
) -> Operation:
    """Validate the registration options and the handler signature; raise on any problem."""
    if not callable(func):
        raise TypeError(f"operation handler must be callable, not {type(func).__name__}")
    op_id = (id or getattr(func, "__name__", "") or "").strip()
    where = f"operation {op_id!r} ({_qualname(func)})"
    try:
        check_operation_id(op_id)
        verb = check_method(method)
        roles = clean_roles(allowed_roles or ())
    except CatalogError as exc:
        raise ValueError(f"{where}: {exc}" if op_id else str(exc)) from None
    tag_list = list(tags or ())
    if not all(isinstance(tag, str) for tag in tag_list):
        raise TypeError(f"{where}: tags must be strings")
    if visible is not None and not isinstance(visible, bool):
        raise TypeError(f"{where}: visible must be a bool or None")
    frame = caller_frame()  # where the decorator runs: its locals name local model classes
    localns = frame.f_locals if frame.f_locals is not frame.f_globals else {}
    parameters, arguments = _plan(func, where, localns)
    del frame
    return Operation(
        id=op_id,
        method=verb,
        title=title.strip(),
        description=description.strip(),
        read_only=bool(read_only),
        allowed_roles=tuple(roles),
        tags=tuple(tag_list),
        visible=visible,
        handler=func,
        is_async=is_async_callable(func),
        parameters=_packed(parameters),
        arguments=arguments,
    )


def _packed(parameters: tuple[dict[str, Any], ...]) -> bytes | tuple[dict[str, Any], ...]:
    """The catalog parameters as ``marshal`` bytes, a fraction of the dicts' memory: only the
    catalog reads them, and a served plugin never builds its catalog. Checked and built at
    registration all the same, so a bad parameter still fails at import."""
    if not parameters:
        return ()
    try:
        return marshal.dumps(parameters)
    except ValueError:  # a value marshal cannot write (catalog_value makes none)
        return parameters


def _plain_function(func: Any) -> bool:
    """A ``def`` function with no attributes (no ``__wrapped__`` or ``__signature__`` set)."""
    return type(func) is types.FunctionType and not func.__dict__


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine (``async def`` functions and ``__call__``)."""
    if _plain_function(func):
        return bool(func.__code__.co_flags & inspect.CO_COROUTINE)
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - the bound __call__ of callable objects
    )


def positional_parameters(func: Callable[..., Any], where: str) -> list[inspect.Parameter]:
    """Return the handler's parameters; reject ``*args``, ``**kwargs`` and keyword-only ones."""
    if _plain_function(func):
        # What inspect.signature() reads from the code object, at a tenth of its cost.
        code = func.__code__
        if not (code.co_flags & _STAR_ARGS or code.co_kwonlyargcount):
            count, defaults = code.co_argcount, func.__defaults__ or ()
            first_default = count - len(defaults)
            return [
                inspect.Parameter(
                    name,
                    _POSITIONAL[index >= code.co_posonlyargcount],
                    default=defaults[index - first_default]
                    if index >= first_default
                    else inspect.Parameter.empty,
                )
                for index, name in enumerate(code.co_varnames[:count])
            ]
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(f"{where}: cannot read the handler's signature") from None
    for param in params:
        if param.kind not in _POSITIONAL:
            raise TypeError(f"{where}: parameter {param.name!r} must be a plain positional one")
    return params


def parameter_hints(
    func: Callable[..., Any], where: str, localns: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Resolve the handler's parameter annotations; the return annotation is never evaluated.

    ``localns`` (the namespace where the decorator ran) resolves names of local classes.
    """
    target: Any = inspect.unwrap(func)
    if inspect.ismethod(target):
        target = target.__func__
    elif not inspect.isfunction(target) and callable(target):
        target = type(target).__call__
    shim = _Annotations(
        getattr(target, "__annotations__", None), getattr(target, "__globals__", {})
    )
    try:
        return typing.get_type_hints(shim, localns=dict(localns or {}), include_extras=True)
    except Exception as exc:
        raise TypeError(f"{where}: cannot resolve the parameter annotations: {exc}") from None


def is_request_type(annotation: Any) -> bool:
    """Whether an annotation names ``gestalt.Request`` (or a subclass)."""
    from gestalt._authoring.request import Request  # here: a plugin's import needs it, ours not

    return isinstance(annotation, type) and issubclass(annotation, Request)


class _Annotations:
    """Just enough of a function for ``typing.get_type_hints``, minus the return annotation."""

    def __init__(self, annotations: dict[str, Any] | None, namespace: dict[str, Any]) -> None:
        self.__annotations__ = {k: v for k, v in (annotations or {}).items() if k != "return"}
        self.__globals__ = namespace


def _plan(
    func: Callable[..., Any], where: str, localns: Mapping[str, Any]
) -> tuple[tuple[dict[str, Any], ...], Arguments]:
    params = positional_parameters(func, where)
    if len(params) > 2:
        raise TypeError(f"{where}: operation handlers take at most two parameters (input, request)")
    if not params:
        return (), _no_arguments
    hints = parameter_hints(func, where, localns)

    def annotation(param: inspect.Parameter) -> Any:
        hint = hints.get(param.name, _MISSING)
        return _MISSING if hint is NoneType else hint

    first = annotation(params[0])
    if len(params) == 1 and is_request_type(first):
        return (), _request_only
    if first is _MISSING:
        raise TypeError(
            f"{where}: parameter {params[0].name!r} needs a type annotation: a Model or dataclass "
            "for named fields, a type such as str for one parameter, dict for the raw "
            "parameters, or gestalt.Request for the request context"
        )
    if is_request_type(first):
        raise TypeError(f"{where}: the Request parameter must come after the input parameter")
    if len(params) == 2:
        second = annotation(params[1])
        if second is not _MISSING and not is_request_type(second):
            raise TypeError(
                f"{where}: the second parameter {params[1].name!r} must be annotated "
                "gestalt.Request or left unannotated"
            )
    try:
        parameters, decode, whole = _plan_input(params[0], first, localns)
    except (TypeError, CatalogError) as exc:
        raise TypeError(f"{where}: {exc}") from None
    # One closure per operation: it runs on every call, and each operation keeps it.
    if whole and len(params) == 1:
        return parameters, lambda values, request: (decode(dict(values)),)
    if whole:
        return parameters, lambda values, request: (decode(dict(values)), request())
    if len(params) == 1:
        return parameters, lambda values, request: (decode(values),)
    return parameters, lambda values, request: (decode(values), request())


def _no_arguments(values: Mapping[str, Any], request: Callable[[], Request]) -> tuple[Any, ...]:
    return ()


def _request_only(values: Mapping[str, Any], request: Callable[[], Request]) -> tuple[Any, ...]:
    return (request(),)


def _plan_input(
    param: inspect.Parameter, annotation: Any, localns: Mapping[str, Any]
) -> tuple[tuple[dict[str, Any], ...], Decoder, bool]:
    """The catalog parameters and the decoder of the input parameter, and whether that decoder
    takes all the parameters (as a dict) rather than the one named after the handler's."""
    core = without_none(annotation)
    if is_dataclass_type(core):
        return _model_parameters(core, localns), compile_decoder(core, localns), True
    decoder = compile_decoder(annotation, localns)
    if core in _WHOLE or typing.get_origin(core) in _WHOLE:
        return (), decoder, True
    return (_named_parameter(param, annotation),), _named(param, annotation, decoder), False


def _model_parameters(cls: type[Any], localns: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    entries = []
    for f, tp in dataclass_fields(cls, localns):
        entry: dict[str, Any] = {"name": f.name, **catalog_schema(tp)}
        description = f.metadata.get(DESCRIPTION_KEY)
        if isinstance(description, str) and description.strip():
            entry["description"] = description.strip()
        if field_required(f, tp):
            entry["required"] = True
        if f.default is not dataclasses.MISSING:
            try:
                entry["default"] = catalog_value(f.default)
            except CatalogError as exc:
                raise CatalogError(f"{cls.__qualname__}.{f.name}: {exc}") from None
        entries.append(entry)
    return tuple(entries)


def _named_parameter(param: inspect.Parameter, annotation: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": param.name, **catalog_schema(annotation)}
    if param.default is inspect.Parameter.empty and not accepts_none(annotation):
        entry["required"] = True
    if param.default is not inspect.Parameter.empty:
        entry["default"] = catalog_value(param.default)
    return entry


def _named(
    param: inspect.Parameter, annotation: Any, decoder: Decoder
) -> Callable[[Mapping[str, Any]], Any]:
    name, default, optional = param.name, param.default, accepts_none(annotation)

    def decode(values: Mapping[str, Any]) -> Any:
        if name in values:
            try:
                return decoder(values[name])
            except DecodeError as exc:
                raise exc.within(name) from None
        if default is not inspect.Parameter.empty:
            return default
        if optional:
            return None
        raise DecodeError("required value is missing", (name,))

    return decode


def _qualname(func: Any) -> str:
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}" if module else name
