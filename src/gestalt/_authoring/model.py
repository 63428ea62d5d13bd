"""``Model`` and ``field``: typed operation inputs and outputs.

A ``Model`` subclass becomes a standard dataclass when the class is created, so type checkers
see a checked ``__init__`` (``dataclass_transform``) and the SDK can read its fields to build
catalog parameters and to decode host parameters. A plain ``@dataclass`` works the same way;
its fields may carry ``description`` and ``required`` in ``dataclasses.field(metadata=...)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, dataclass_transform

DESCRIPTION_KEY = "description"
REQUIRED_KEY = "required"


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
        if "__dataclass_fields__" not in cls.__dict__:
            dataclasses.dataclass(cls)
