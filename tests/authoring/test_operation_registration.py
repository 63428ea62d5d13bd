"""Bad registrations fail at import time with a message naming the operation and the problem."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

import pytest

from gestalt import Model, Plugin, Request, field

if TYPE_CHECKING:
    from collections.abc import Callable


class Item(Model):
    name: str


def register(func: Callable[..., Any], **options: Any) -> Plugin:
    plugin = Plugin("reg")
    plugin.operation(**options)(func)
    return plugin


def test_ex3_unannotated_handlers_fail_at_import(load_example: Any) -> None:
    # Quirk 10: the reference registered `def unannotated(x)` and answered 500 on every call.
    with pytest.raises(TypeError) as info:
        load_example("ex3_types/types_plugin.py", "types_plugin")
    message = str(info.value)
    assert "operation 'unannotated' (types_plugin.unannotated)" in message
    assert "parameter 'x' needs a type annotation" in message


def test_none_annotation_counts_as_unannotated() -> None:
    def handler(x: None) -> None:
        return None

    with pytest.raises(TypeError, match="parameter 'x' needs a type annotation"):
        register(handler)


@pytest.mark.parametrize("bad", ["a b", "-a", "a-", "a..b", ".a", "a.", "é", "a/b"])
def test_invalid_operation_ids(bad: str) -> None:
    with pytest.raises(ValueError, match=f"invalid operation id {bad!r}"):
        register(lambda: None, id=bad)


@pytest.mark.parametrize("good", ["a", "a-b", "a_b.c-d", "_x_", "A9.b"])
def test_valid_operation_ids(good: str) -> None:
    plugin = register(lambda: None, id=f"  {good}  ")
    assert [op["id"] for op in plugin.catalog_dict()["operations"]] == [good]


def test_blank_id_is_required() -> None:
    with pytest.raises(ValueError, match=r"^operation id is required$"):
        register(lambda: None, id="   ")


def test_duplicate_id() -> None:
    plugin = Plugin("dup")

    @plugin.operation
    def ping() -> str:
        return "pong"

    with pytest.raises(ValueError, match="duplicate operation id 'ping' in plugin 'dup'"):
        plugin.operation(id="ping")(lambda: None)


def test_method_is_checked_and_upper_cased() -> None:
    plugin = register(lambda: None, id="op", method=" get ")
    assert plugin.catalog_dict()["operations"][0]["method"] == "GET"
    with pytest.raises(ValueError, match="invalid HTTP method 'GE T'"):
        register(lambda: None, id="op", method="GE T")
    for method in ("get", "Post", "PUT", "patch", "DELETE"):
        assert (
            register(lambda: None, id="op", method=method).catalog_dict()["operations"][0]["method"]
            == method.upper()
        )
    # A well-formed token the host does not route to operations is refused too.
    message = "invalid HTTP method 'FETCH': the host accepts GET, POST, PUT, PATCH, DELETE"
    with pytest.raises(ValueError, match=f"^operation 'op' \\(.*\\): {message}$"):
        register(lambda: None, id="op", method="FETCH")


def test_options_are_normalized() -> None:
    plugin = register(
        lambda: None,
        id="op",
        title="  T  ",
        description=" D ",
        allowed_roles=[" a ", "a", "", "b"],
        tags=["x", " y "],
        read_only=True,
        visible=False,
    )
    assert plugin.catalog_dict()["operations"][0] == {
        "id": "op",
        "method": "POST",
        "title": "T",
        "description": "D",
        "readOnly": True,
        "allowedRoles": ["a", "b"],
        "tags": ["x", " y "],
        "visible": False,
    }


def test_too_many_parameters() -> None:
    def handler(a: Item, b: Request, c: int) -> None:
        return None

    with pytest.raises(TypeError, match="at most two parameters"):
        register(handler)


def test_var_and_keyword_only_parameters() -> None:
    def star(*items: Item) -> None:
        return None

    def keyword(*, item: Item) -> None:
        return None

    for handler in (star, keyword):
        with pytest.raises(TypeError, match="must be a plain positional one"):
            register(handler)


def test_second_parameter_must_be_request() -> None:
    def handler(item: Item, other: int) -> None:
        return None

    with pytest.raises(TypeError, match="second parameter 'other' must be annotated"):
        register(handler)


def test_request_must_come_second() -> None:
    def handler(req: Request, item: Item) -> None:
        return None

    with pytest.raises(TypeError, match="Request parameter must come after the input"):
        register(handler)


def test_unsupported_field_type_names_the_field() -> None:
    class Opaque:
        pass

    class Holder(Model):
        thing: Opaque

    def handler(params: Holder) -> None:
        return None

    with pytest.raises(TypeError, match=r"Holder\.thing: unsupported annotation .*Opaque"):
        Plugin("reg").operation(handler)


def test_unresolvable_annotation() -> None:
    def handler(params: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(TypeError, match="cannot resolve the parameter annotations"):
        register(handler)


def test_return_annotation_is_never_evaluated() -> None:
    def handler(params: Item) -> NoSuchType:  # type: ignore[name-defined]  # noqa: F821
        return None

    register(handler)


def test_default_without_json_form_is_rejected() -> None:
    class Holder(Model):
        value: Any = field(default=object())

    def handler(params: Holder) -> None:
        return None

    with pytest.raises(TypeError, match=r"Holder\.value: default .* cannot be written"):
        Plugin("reg").operation(handler)


def test_tags_and_visible_types() -> None:
    with pytest.raises(TypeError, match="tags must be strings"):
        register(lambda: None, id="op", tags=[1])
    with pytest.raises(TypeError, match="visible must be a bool or None"):
        register(lambda: None, id="op", visible="no")


def test_module_plugin_name_conflict() -> None:
    module = types.ModuleType("conflicting_module")
    module.__dict__["plugin"] = "not a plugin"
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(TypeError, match="defines 'plugin' as a str"):
            exec(
                "from gestalt import operation\n@operation\ndef ping() -> str: ...", module.__dict__
            )
    finally:
        del sys.modules[module.__name__]


def test_decorators_return_the_function() -> None:
    plugin = Plugin("same")

    def ping() -> str:
        return "pong"

    assert plugin.operation(ping) is ping

    def configure(name: str, config: dict[str, Any]) -> None:
        return None

    assert plugin.configure(configure) is configure


def test_module_level_decorators_have_names_and_reprs() -> None:
    import gestalt

    for name in ("operation", "session_catalog", "post_connect", "http_subject"):
        decorator = getattr(gestalt, name)
        assert decorator.__doc__
        assert "implicit plugin" in repr(decorator) or name in repr(decorator)
