"""The documentation: it builds without a warning, covers the public API, and says nothing
about the SDK's insides; ``examples/README.md`` lists every example.

The Sphinx build runs once for the module; the other checks read the HTML it wrote, so they
see what a reader sees, docstrings included.
"""

from __future__ import annotations

import html
import inspect
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import gestalt
import gestalt.local
import gestalt.testing
from tests.conftest import REPO

DOCS = REPO / "docs"
#: Where we list the choices that differ from the reference SDK, by number; for maintainers.
QUIRKS = DOCS / "quirks.md"
#: Pages for the SDK's maintainers, which name its internal packages on purpose.
ARCHITECTURE = DOCS / "guides" / "architecture.rst"
#: Internal references a user-facing page must not make: quirk numbers (``quirk 12``,
#: ``quirks 3 and 4``, ``Q12``) and private modules (``gestalt._runtime.process``).
INTERNAL = re.compile(r"\bquirks?\s+(?:no\.?\s*)?\d+|\bQ\d+\b|\bgestalt\._\w+", re.IGNORECASE)
#: The classes whose every public method the issue asked for by name.
REQUIRED = ("ObjectStore", "Index", "Cursor", "Transaction")


@dataclass(frozen=True)
class Built:
    """The outcome of ``sphinx -W`` over ``docs/``."""

    run: subprocess.CompletedProcess[str]
    html: Path

    def pages(self) -> dict[str, str]:
        """Each HTML page (relative path -> its visible text, tags removed)."""
        assert self.run.returncode == 0, self.run.stdout + self.run.stderr
        return {
            str(path.relative_to(self.html)): html.unescape(
                re.sub(r"<[^>]+>", "", path.read_text())
            )
            for path in sorted(self.html.rglob("*.html"))
        }

    def ids(self) -> set[str]:
        """Every anchor the pages define (``gestalt.ObjectStore.get`` for a documented method)."""
        assert self.run.returncode == 0, self.run.stdout + self.run.stderr
        found: set[str] = set()
        for path in self.html.rglob("*.html"):
            found.update(re.findall(r'id="([\w.]+)"', path.read_text()))
        return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("docs") / "html"
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, out],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Built(run, out)


def test_docs_build_with_warnings_as_errors(built: Built) -> None:
    assert built.run.returncode == 0, built.run.stdout + built.run.stderr
    for page in ("reference/core", "reference/local", "reference/gen", "guides/host-services"):
        assert (built.html / f"{page}.html").exists(), page


def public_members(cls: type) -> dict[str, type]:
    """Public methods and properties of ``cls`` -> the SDK class that defines each.

    Only what the SDK itself defines counts (not ``str``'s methods on a ``StrEnum``, say).
    """
    members: dict[str, type] = {}
    for owner in reversed(cls.__mro__):
        if not owner.__module__.startswith("gestalt") or owner.__module__.startswith("gestalt.gen"):
            continue
        for name, value in vars(owner).items():
            if name.startswith("_"):
                continue
            if inspect.isfunction(value) or isinstance(
                value, property | classmethod | staticmethod
            ):
                members[name] = owner
    return members


def missing_from(ids: set[str], module: ModuleType) -> list[str]:
    """The public names of ``module`` (and their members) without an entry in the docs."""
    prefix = module.__name__
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if f"{prefix}.{name}" not in ids:
            missing.append(f"{prefix}.{name}")
            continue
        if not inspect.isclass(obj) or obj.__module__.startswith("gestalt.gen"):
            continue
        for member, owner in public_members(obj).items():
            # Documented on the class, or on the public base class that defines it.
            where = {f"{prefix}.{name}.{member}", f"{prefix}.{owner.__name__}.{member}"}
            if not where & ids:
                missing.append(f"{prefix}.{name}.{member}")
    return missing


def test_every_public_name_and_method_is_documented(built: Built) -> None:
    ids = built.ids()
    missing = [
        name
        for module in (gestalt, gestalt.testing, gestalt.local)
        for name in missing_from(ids, module)
    ]
    assert missing == []
    # The check itself sees the methods the stores inherit from private helper classes.
    for name in REQUIRED:
        for cls in (getattr(gestalt, name), getattr(gestalt, f"Async{name}")):
            members = public_members(cls)
            assert len(members) >= 3, cls
            assert {f"gestalt.{cls.__name__}.{m}" for m in members} <= ids
    assert "gestalt.ObjectStore.get_all" in ids
    assert "gestalt.AsyncIndex.count" in ids


def test_missing_methods_are_noticed() -> None:
    ids = {"gestalt.Cursor", "gestalt.Cursor.close"}

    module = ModuleType("gestalt")
    vars(module).update(__all__=["Cursor"], Cursor=gestalt.Cursor)
    missing = missing_from(ids, module)
    assert "gestalt.Cursor.continue_" in missing
    assert "gestalt.Cursor.close" not in missing


def test_docs_cite_no_quirk_numbers_or_private_modules(built: Built) -> None:
    found = [
        f"{page}: {match.group(0)!r} in ...{text[max(match.start() - 60, 0) : match.end() + 20]}..."
        for page, text in built.pages().items()
        if page != "guides/architecture.html"
        for match in INTERNAL.finditer(text)
    ]
    sources = [*DOCS.rglob("*.rst"), *DOCS.rglob("*.md"), REPO / "examples" / "README.md"]
    for path in sources:
        if path in (QUIRKS, ARCHITECTURE):
            continue
        text = path.read_text(encoding="utf-8")
        found.extend(f"{path}: {m.group(0)!r}" for m in INTERNAL.finditer(text))
        if "quirks" in text:
            found.append(f"{path}: refers to the quirks list")
    assert found == []


def test_class_bases_shown_are_public(built: Built) -> None:
    bases = [
        line.strip()
        for text in built.pages().values()
        for line in text.splitlines()
        if line.strip().startswith("Bases:")
    ]
    assert any("HostServiceError" in line for line in bases)
    assert [line for line in bases if re.search(r"(?<![\w.])_[A-Za-z]", line)] == []


def test_internal_references_are_recognised() -> None:
    for text in (
        "(quirk 12)",
        "quirks 3 and 4",
        "Q18:",
        "see gestalt._runtime.process",
        "Quirk no. 7",
    ):
        assert INTERNAL.search(text), text
    for text in ("gestalt.gen.v1", "gestalt.local", "quirks of S3", "Q&A"):
        assert not INTERNAL.search(text), text


def test_examples_readme_lists_every_example() -> None:
    examples = REPO / "examples"
    folders = {
        path.name
        for path in examples.iterdir()
        if path.is_dir() and not path.name.startswith((".", "_"))
    }
    readme = (examples / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([\w.-]+)/` \|", readme, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == folders
    assert "hello" in folders and len(folders) >= 5


def test_no_page_shows_a_builtin_docstring(built: Built) -> None:
    """A name documented through a re-export must not fall back to its value's type's docstring."""
    builtin_lines = [
        line.strip()
        for doc in (str.__doc__, int.__doc__, dict.__doc__, object.__doc__)
        for line in (doc or "").splitlines()
        if len(line.strip()) > 30 and "'" not in line
    ]
    found = [
        f"{page}: {line!r}"
        for page, text in built.pages().items()
        for line in builtin_lines
        if line in text
    ]
    assert found == []
