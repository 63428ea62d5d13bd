"""A provider project on disk: its ``[tool.gestalt]`` target, catalog and checks.

The catalog is always produced the way the host produces it, by running
``python -m gestalt._runtime ROOT TARGET`` with ``GESTALT_PLUGIN_WRITE_CATALOG`` in a
subprocess, so what ``gestalt catalog`` prints and ``gestalt check`` validates is exactly what
the host would load.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gestalt._authoring.kinds import ProviderKind
from gestalt._runtime.launch import LaunchError, provider_env, runtime_reason

if TYPE_CHECKING:
    from gestalt._runtime.process import LaunchSpec

#: A message that starts with where the problem is (``FILE:LINE:COLUMN: ...``).
LOCATED = re.compile(r"\S[^:]*:\d+:\d+: ")
#: Parameter types the host's catalog schema knows.
PARAMETER_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object"})


class ProjectError(Exception):
    """The project cannot be used as configured; the message names file and key."""


def load_spec(root: Path) -> tuple[str, ProviderKind]:
    """The target and kind declared in ``ROOT/pyproject.toml``."""
    spec = load_launch_spec(root)
    return spec.target, spec.kind


def load_launch_spec(root: Path) -> LaunchSpec:
    """Everything ``[tool.gestalt]`` in ``ROOT/pyproject.toml`` declares (target, kind, name)."""
    from gestalt._runtime.process import RuntimeConfigError, spec_from_pyproject

    if not root.is_dir():
        raise ProjectError(f"{root}: no such directory")
    if not (root / "pyproject.toml").is_file():
        raise ProjectError(f"{root.resolve()}: no pyproject.toml with a [tool.gestalt] table")
    try:
        return spec_from_pyproject(root)
    except (RuntimeConfigError, ValueError) as exc:
        raise ProjectError(str(exc)) from None


# Run in a child process: resolve the target as the runtime would, without serving it.
_RESOLVE = """\
import sys
from pathlib import Path
from gestalt._authoring.kinds import ProviderKind
from gestalt._runtime.process import (
    LaunchSpec, ProviderImportError, RuntimeConfigError, resolve, syntax_error_line
)
try:
    resolve(LaunchSpec(sys.argv[1], ProviderKind(sys.argv[2]), Path(sys.argv[3])))
except RuntimeConfigError as exc:
    sys.exit(str(exc))
except ProviderImportError as exc:
    cause = exc.__cause__ or exc
    if isinstance(cause, SyntaxError):
        sys.exit(syntax_error_line(cause))
    sys.exit(f"importing {exc} failed: {type(cause).__name__}: {cause}")
"""


def target_problem(root: Path, target: str, kind: ProviderKind) -> str | None:
    """Why ``target`` does not resolve to a ``kind`` provider under ``root`` (None: it does).

    The target is imported in a child process with the host's environment, as the runtime
    would import it, so the provider's import-time side effects stay out of this process.
    """
    run = subprocess.run(
        [sys.executable, "-c", _RESOLVE, target, kind.value, str(root.resolve())],
        env=provider_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode == 0:
        return None
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {run.returncode}"


def export_catalog(root: Path, target: str | None = None) -> str:
    """The static catalog YAML of the integration plugin under ``root``.

    ``target`` defaults to the one declared in ``root/pyproject.toml``.
    """
    if target is None:
        target, kind = load_spec(root)
        if kind is not ProviderKind.INTEGRATION:
            raise ProjectError(f"{root.resolve()}: only integration plugins have a catalog")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        run = subprocess.run(
            [sys.executable, "-m", "gestalt._runtime", str(root.resolve()), target],
            env=provider_env({"GESTALT_PLUGIN_WRITE_CATALOG": str(path)}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode != 0:
            lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
            detail = runtime_reason(lines[-1]) if lines else f"exit status {run.returncode}"
            if LOCATED.match(detail):  # FILE:LINE:COLUMN: ... says it all
                raise ProjectError(detail)
            raise ProjectError(f"catalog export of {target} failed: {detail}")
        return path.read_text(encoding="utf-8")


def check_project(root: Path) -> list[str]:
    """Every problem the host would have with the project under ``root`` (empty: none)."""
    import yaml

    table_problems = unknown_keys(root) if root.is_dir() else []
    try:
        target, kind = load_spec(root)
    except ProjectError as exc:
        return [*table_problems, str(exc)]
    problems: list[str] = table_problems
    manifest = root / "manifest.yaml"
    if manifest.is_file():
        try:
            data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(f"{manifest}: invalid YAML: {exc}".replace("\n", " "))
        else:
            if not isinstance(data, dict):
                problems.append(f"{manifest}: expected a mapping at the top level")
    if kind is not ProviderKind.INTEGRATION:
        return problems + _check_launch(root, target, kind)
    try:
        text = export_catalog(root)
    except ProjectError as exc:
        message = str(exc)
        if "did not resolve" in message or "cannot import module" in message:
            # The target itself is wrong: point at where it is written.
            message = f"{root.resolve()}/pyproject.toml: tool.gestalt.provider: {message}"
        return [*problems, message]
    where = f"{root.resolve()}/catalog.yaml (exported)"
    problems.extend(f"{where}: {p}" for p in catalog_problems(yaml.safe_load(text)))
    return problems


def unknown_keys(root: Path) -> list[str]:
    """A problem for each ``[tool.gestalt]`` key the runtime ignores, with the likely spelling.

    The runtime reads ``provider`` or a provider kind (``cache``, ``s3`` ...) and the optional
    ``name`` (the plugin name a build embeds), and skips any other key, so a typo such as
    ``provder`` would go unnoticed. An unreadable file or table
    is left to ``load_spec`` to report.
    """
    import difflib
    import tomllib

    path = root.resolve() / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    tool = data.get("tool")
    table = tool.get("gestalt") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        return []
    known = ["provider", *(kind.value for kind in ProviderKind), "name"]
    problems = []
    for key in table:
        if key in ("provider", "name") or (key.strip() and _is_kind(key)):
            continue
        close = difflib.get_close_matches(key.lower(), known, n=1)
        hint = (
            f" (did you mean {close[0]!r}?)" if close else f" (expected one of {', '.join(known)})"
        )
        problems.append(f"{path}: [tool.gestalt] unknown key {key!r}{hint}")
    return problems


def _is_kind(key: str) -> bool:
    try:
        ProviderKind.parse(key)
    except ValueError:
        return False
    return True


def catalog_problems(catalog: Any) -> list[str]:
    """What the host's catalog schema rejects in ``catalog`` (a parsed catalog.yaml)."""
    from gestalt._authoring.catalog import CatalogError, check_method, check_operation_id

    if not isinstance(catalog, dict):
        return ["the catalog must be a mapping"]
    problems = []
    if not str(catalog.get("name") or "").strip():
        problems.append("name: missing")
    operations = catalog.get("operations")
    if not isinstance(operations, list) or not operations:
        return [*problems, "operations: at least one operation is required"]
    seen: set[str] = set()
    for i, op in enumerate(operations):
        key = f"operations[{i}]"
        if not isinstance(op, dict):
            problems.append(f"{key}: expected a mapping")
            continue
        op_id = str(op.get("id") or "")
        key = f"operations[{op_id or i}]"
        try:
            check_operation_id(op_id)
        except CatalogError as exc:
            problems.append(f"{key}.id: {exc}")
        if op_id in seen:
            problems.append(f"{key}.id: duplicate operation id")
        seen.add(op_id)
        try:
            check_method(str(op.get("method") or ""))
        except CatalogError as exc:
            problems.append(f"{key}.method: {exc}")
        for j, param in enumerate(op.get("parameters") or []):
            pkey = f"{key}.parameters[{j}]"
            if not isinstance(param, dict) or not str(param.get("name") or "").strip():
                problems.append(f"{pkey}.name: missing")
            elif param.get("type") not in PARAMETER_TYPES:
                problems.append(f"{pkey}.type: {param.get('type')!r} is not a catalog type")
    return problems


def _check_launch(root: Path, target: str, kind: ProviderKind) -> list[str]:
    """For non-integration kinds: does the target resolve? (Started without serving.)"""
    problem = target_problem(root, target, kind)
    if problem is None:
        return []
    if LOCATED.match(problem):  # FILE:LINE:COLUMN: ... says it all
        return [problem]
    return [f"{root.resolve()}/pyproject.toml: tool.gestalt: {problem}"]


def explain_unknown_operation(
    operation: str, status: int, body: str, known: Callable[[], list[str]]
) -> str | None:
    """Say which operation was asked for and which exist, when the provider's answer to a call
    of ``operation`` is the contract's unknown-operation reply (404 ``{"error":"unknown
    operation"}``); ``None`` for any other answer.

    ``known`` lists the provider's operation ids; it is only called for that reply. If it lists
    ``operation``, the reply came from the handler itself and needs no explanation.
    """
    from gestalt._authoring.plugin import _UNKNOWN_OPERATION

    if status != 404 or body != _UNKNOWN_OPERATION:
        return None
    try:
        ids = known()
    except (ProjectError, LaunchError, OSError, subprocess.SubprocessError) as exc:
        return f"unknown operation {operation!r} (the operations could not be listed: {exc})"
    if operation in ids:
        return None
    if not ids:
        return f"unknown operation {operation!r}: the provider has no operations"
    close = difflib.get_close_matches(operation, ids, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown operation {operation!r}{hint}; the operations are: {', '.join(ids)}"
