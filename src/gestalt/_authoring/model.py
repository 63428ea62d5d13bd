"""``Model`` and ``field``: typed operation inputs and outputs.

A ``Model`` subclass is a standard dataclass, so type checkers see a checked ``__init__``
(``dataclass_transform``) and the SDK can read its fields to build catalog parameters and to
decode host parameters. A plain ``@dataclass`` works the same way; its fields may carry
``description`` and ``required`` in ``dataclasses.field(metadata=...)``.

Generating a dataclass's methods costs about half a millisecond per class, which a plugin of
hundreds of models would pay at import. So when a class is created, only its fields are
listed (cheaply, by the rules ``dataclasses`` applies) and the methods are generated when the
class is first needed as a dataclass: on its first instance, or when anything reads
``__dataclass_fields__`` (``dataclasses.fields()``, ``is_dataclass()``) or its signature. A
class using anything beyond plain annotated fields with defaults (``ClassVar``, ``InitVar``,
``KW_ONLY``, ``field(init=..., kw_only=...)``, bases that are not models, descriptors as
defaults) is made a dataclass at once, as are classes ``dataclasses`` would reject, so that its
error is raised where the class is defined.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
from typing import TYPE_CHECKING, Any, dataclass_transform

DESCRIPTION_KEY = "description"
REQUIRED_KEY = "required"
_FIELDS = "__dataclass_fields__"
# Held while a class is made a dataclass; re-entrant because bases are completed first.
_completing = threading.RLock()


def field(
    *,
    description: str = "",
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    required: bool | None = None,
) -> Any:
    """Declare a model field with catalog metadata.

    ``description`` is shown in the catalog. ``default`` / ``default_factory`` work as in
    ``dataclasses.field``. ``required`` overrides what the catalog infers (by default a field is
    required when it has no default and does not accept ``None``); a field declared
    ``required=False`` without a default is decoded as ``None`` when the caller omits it.
    """
    metadata: dict[str, Any] = {}
    if description.strip():
        metadata[DESCRIPTION_KEY] = description.strip()
    if required is not None:
        metadata[REQUIRED_KEY] = bool(required)
    result: Any = dataclasses.field(
        default=default, default_factory=default_factory, metadata=metadata
    )
    return result


class _Deferred:
    """Stands in for ``__dataclass_fields__`` until the class is made a dataclass.

    ``fields`` are the ``__init__`` fields as ``dataclasses.fields()`` will list them. Reading
    the attribute through the class (as ``dataclasses`` does) completes the class first.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[dataclasses.Field[Any], ...]) -> None:
        self.fields = fields

    def __get__(self, instance: object, owner: type) -> dict[str, dataclasses.Field[Any]]:
        complete(owner)
        fields = vars(owner).get(_FIELDS)
        if type(fields) is not dict:
            raise AttributeError(_FIELDS)
        return fields


class _CompletedSignature:
    """``__signature__`` of models: completes the class, then lets ``inspect`` read it."""

    def __get__(self, instance: object, owner: type) -> None:
        complete(owner)


def complete(cls: type) -> None:
    """Make a model class whose dataclass methods were deferred a dataclass (once, thread-safe)."""
    if type(vars(cls).get(_FIELDS)) is dict:
        return
    with _completing:
        if not isinstance(vars(cls).get(_FIELDS), _Deferred):
            return
        delattr(cls, _FIELDS)
        dataclasses.dataclass(cls)


def model_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The ``__init__`` fields of a dataclass or model class, without completing a model."""
    deferred = vars(cls).get(_FIELDS)
    if isinstance(deferred, _Deferred):
        return deferred.fields
    return tuple(f for f in dataclasses.fields(cls) if f.init)


def is_dataclass_type(tp: Any) -> bool:
    """Whether ``tp`` is a dataclass or a model class (deferred or not)."""
    return isinstance(tp, type) and (
        isinstance(vars(tp).get(_FIELDS), _Deferred) or dataclasses.is_dataclass(tp)
    )


def _special(annotation: Any) -> bool:
    """Whether ``dataclasses`` could treat this annotation as more than a plain field."""
    if isinstance(annotation, str):
        return any(word in annotation for word in ("ClassVar", "InitVar", "KW_ONLY"))
    return (
        annotation is typing.ClassVar
        or getattr(annotation, "__origin__", None) is typing.ClassVar
        or annotation is dataclasses.KW_ONLY
        or annotation is dataclasses.InitVar
        or isinstance(annotation, dataclasses.InitVar)
    )


def _plain_fields(cls: type) -> tuple[dataclasses.Field[Any], ...] | None:
    """The fields ``dataclasses`` would give ``cls``, or ``None`` unless they are plain.

    Plain: every base is a model (or ``object``), every annotation a field taking a default
    from the class body (or none), in an order ``__init__`` accepts. ``None`` asks the caller to
    let ``dataclasses`` do the work, and raise, itself.
    """
    namespace = vars(cls)
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        if base is object or base is Model:
            continue
        if not issubclass(base, Model):
            return None
        entry = vars(base).get(_FIELDS)
        if isinstance(entry, _Deferred):
            inherited = entry.fields
        elif type(entry) is dict:
            inherited = tuple(dataclasses.fields(base))  # type: ignore[arg-type]
            if len(inherited) != len(entry) or not all(f.init for f in inherited):
                return None
        else:
            return None
        for f in inherited:
            fields[f.name] = f
    if "__annotations__" not in namespace and "__annotate__" in namespace:
        return None  # annotations evaluated lazily (Python 3.14): leave them to dataclasses
    annotations: dict[str, Any] = namespace.get("__annotations__", {})
    for name, annotation in annotations.items():
        if _special(annotation):
            return None
        default = namespace.get(name, dataclasses.MISSING)
        if default is dataclasses.MISSING and hasattr(cls, name):
            return None  # an inherited attribute would become the default
        if isinstance(default, dataclasses.Field):
            if default.init is not True or default.kw_only is not dataclasses.MISSING:
                return None
            spec = default
        elif hasattr(type(default), "__get__"):
            return None  # dataclasses reads defaults with getattr, which binds descriptors
        else:
            spec = dataclasses.field(default=default)
        if spec.default is not dataclasses.MISSING and type(spec.default).__hash__ is None:
            return None  # a mutable default, which dataclasses refuses
        spec.name, spec.type = name, annotation
        fields[name] = spec
    if any(isinstance(v, dataclasses.Field) and k not in annotations for k, v in namespace.items()):
        return None
    seen_default = False
    for f in fields.values():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if seen_default:
                return None  # a required field after one with a default
        else:
            seen_default = True
    return tuple(fields.values())


@dataclass_transform(field_specifiers=(field,))
class Model:
    """Base class for operation input and output models.

    Subclasses are turned into dataclasses automatically; inherited fields come first::

        class SearchInput(Model):
            query: str = field(description="Search term")
            limit: int = 10
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _FIELDS in cls.__dict__:  # made by dataclasses already (``slots=True`` copies)
            return
        fields = _plain_fields(cls)
        if fields is None:
            dataclasses.dataclass(cls)
        else:
            setattr(cls, _FIELDS, _Deferred(fields))

    if not TYPE_CHECKING:  # type checkers see the dataclass ``__init__`` instead

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            if type(vars(cls).get(_FIELDS)) is not dict:
                complete(cls)
            return super().__new__(cls)

        __signature__ = _CompletedSignature()
