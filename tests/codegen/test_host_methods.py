"""``host_methods.toml``: what it may name, and the clear failure when it names too much."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen.generate import generate
from tests.conftest import REPO

PROTOS = REPO / "tests" / "goldens" / "protos"


def _tree(tmp_path: Path, spec: str) -> Path:
    root = tmp_path / "protos"
    shutil.copytree(PROTOS / "fragments", root / "fragments")
    (root / "host_methods.toml").write_text(spec, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('["fragments.host_service.Nope".X]\nargs = ""\ndoc = "x"\n', "no such service"),
        ('["fragments.host_service.Things".Nope]\nargs = ""\ndoc = "x"\n', "no rpc 'Nope'"),
        (
            '["fragments.host_service.Things".DropThing]\nargs = "name!"\ndoc = "x"\n',
            "has no field 'name'",
        ),
        (
            '["fragments.host_service.Things".ListThings]\nreturns = "limit"\ndoc = "x"\n',
            "no repeated field 'limit'",
        ),
    ],
)
def test_a_spec_naming_what_the_protos_lack_fails_clearly(
    tmp_path: Path, spec: str, message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        generate(_tree(tmp_path, spec), tmp_path / "out", sdk_package=False)


def test_without_a_spec_no_methods_module_is_rendered(tmp_path: Path) -> None:
    root = tmp_path / "protos"
    shutil.copytree(PROTOS / "fragments", root / "fragments")
    written = generate(root, tmp_path / "out", sdk_package=False)
    assert not [p for p in written if p.name.endswith("_methods.py")]
    assert [p for p in written if p.name == "host_service_clients.py"]
