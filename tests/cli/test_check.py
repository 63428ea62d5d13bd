"""``gestalt check``: every problem with a project, with file and key, and exit status 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import EXAMPLES, HELLO, gestalt

ONE_OPERATION = """\
from gestalt import Plugin

plugin = Plugin("tiny")


@plugin.operation(id={op_id!r})
def ping() -> dict[str, bool]:
    return {{"pong": True}}
"""


def check(root: Path | str, cwd: Path) -> tuple[int, list[str]]:
    """Exit status and problems of ``gestalt --json check ROOT``."""
    run = gestalt("--json", "check", root, cwd=cwd, timeout=60)
    document: dict[str, Any] = json.loads(run.stdout)
    assert document["ok"] is (run.returncode == 0)
    return run.returncode, document["problems"]


def project(root: Path, pyproject: str | None, **files: str) -> Path:
    """A project folder with this ``pyproject.toml`` (None: none) and these files."""
    root.mkdir()
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_hello_passes(tmp_path: Path) -> None:
    run = gestalt("check", HELLO, cwd=tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (
        0,
        f"ok: {HELLO} passes every check\n",
        "",
    )
    assert check(".", HELLO) == (0, [])


@pytest.mark.parametrize(
    "example", ["auth_provider", "secrets_provider", "cache_provider", "s3_provider"]
)
def test_other_kinds_pass(tmp_path: Path, example: str) -> None:
    assert check(EXAMPLES / example, tmp_path) == (0, [])


@pytest.mark.parametrize(
    ("pyproject", "problem"),
    [
        (None, "{root}: no pyproject.toml with a [tool.gestalt] table"),
        ('[project]\nname = "x"\n', "{root}/pyproject.toml: no [tool.gestalt] table"),
        ("[tool.gestalt\n", "{root}/pyproject.toml: invalid TOML: "),
        (
            "[tool.gestalt]\n",
            "{root}/pyproject.toml: [tool.gestalt] has no provider key (expected 'provider' or ",
        ),
        (
            '[tool.gestalt]\nprovider = ""\n',
            "{root}/pyproject.toml: tool.gestalt.provider must be a non-empty string",
        ),
        (
            '[tool.gestalt]\nprovider = "hello:"\n',
            "{root}/pyproject.toml: tool.gestalt.provider: target 'hello:': after ':' there "
            "must be a Python identifier",
        ),
        (
            '[tool.gestalt]\ncache = "2fast"\n',
            "{root}/pyproject.toml: tool.gestalt.cache: target '2fast': the module must be "
            "dot-separated Python identifiers",
        ),
    ],
    ids=[
        "no-pyproject",
        "no-gestalt-table",
        "invalid-toml",
        "no-provider-key",
        "empty-target",
        "bad-attribute",
        "bad-module",
    ],
)
def test_configuration_problems(tmp_path: Path, pyproject: str | None, problem: str) -> None:
    root = project(tmp_path / "p", pyproject)
    code, problems = check(root, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith(problem.format(root=root))


def test_missing_root_and_human_output(tmp_path: Path) -> None:
    assert check("missing", tmp_path) == (1, ["missing: no such directory"])
    run = gestalt("check", "missing", cwd=tmp_path)
    assert (run.returncode, run.stdout) == (1, "error: missing: no such directory\n")


def test_target_that_does_not_resolve(tmp_path: Path) -> None:
    hello = project(tmp_path / "h", '[tool.gestalt]\nprovider = "hello:nope"\n')
    shutil.copy(HELLO / "hello.py", hello)
    shutil.copy(HELLO / "manifest.yaml", hello)
    code, problems = check(hello, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert "hello:nope did not resolve: no attribute 'nope'" in problems[0]

    secrets = project(tmp_path / "s", '[tool.gestalt]\nsecrets = "secrets_provider:nope"\n')
    shutil.copy(EXAMPLES / "secrets_provider" / "secrets_provider.py", secrets)
    code, problems = check(secrets, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith(f"{secrets}/pyproject.toml: tool.gestalt: ")
    assert problems[0].endswith("secrets_provider:nope did not resolve: no attribute 'nope'")


def test_unresolvable_integration_target_names_file_and_key(tmp_path: Path) -> None:
    hello = project(tmp_path / "h", '[tool.gestalt]\nprovider = "hello:nope"\n')
    shutil.copy(HELLO / "hello.py", hello)
    shutil.copy(HELLO / "manifest.yaml", hello)
    _, problems = check(hello, tmp_path)
    assert problems[0].startswith(f"{hello}/pyproject.toml: tool.gestalt.provider: ")


TINY = '[tool.gestalt]\nprovider = "tiny:plugin"\n'
BROKEN = {"tiny.py": "import json\nraise RuntimeError('tiny is broken')\n"}
BAD_ID = {"tiny.py": ONE_OPERATION.format(op_id="bad id!")}


@pytest.mark.parametrize("files", [BROKEN, BAD_ID], ids=["import-error", "bad-operation-id"])
def test_provider_that_fails_to_import(tmp_path: Path, files: dict[str, str]) -> None:
    root = project(tmp_path / "p", TINY, **files)
    code, problems = check(root, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith("catalog export of tiny:plugin failed: ")
    assert "importing tiny failed" in problems[0]


@pytest.mark.parametrize(
    ("files", "reason"),
    [(BROKEN, "RuntimeError: tiny is broken"), (BAD_ID, "invalid operation id 'bad id!'")],
    ids=["import-error", "bad-operation-id"],
)
def test_import_failure_reason_is_reported(
    tmp_path: Path, files: dict[str, str], reason: str
) -> None:
    root = project(tmp_path / "p", TINY, **files)
    _, problems = check(root, tmp_path)
    assert reason in problems[0]


def test_empty_catalog(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", TINY, **{"tiny.py": "from gestalt import Plugin\nplugin = Plugin('t')\n"}
    )
    code, problems = check(root, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert "plugin 't' has no operations" in problems[0]


def test_malformed_manifest_and_every_problem_it_causes(tmp_path: Path) -> None:
    root = tmp_path / "hello"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__", ".gestalt"))
    (root / "manifest.yaml").write_text("source: [unclosed\n", encoding="utf-8")
    code, problems = check(root, tmp_path)
    assert code == 1
    assert len(problems) == 2
    assert problems[0].startswith(f"{root}/manifest.yaml: invalid YAML: ")
    assert "\n" not in problems[0]
    assert problems[1].startswith("catalog export of hello:plugin failed: ")

    run = gestalt("check", root, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.splitlines() == [f"error: {problem}" for problem in problems]

    (root / "manifest.yaml").write_text("- a list\n", encoding="utf-8")
    _, problems = check(root, tmp_path)
    assert problems[0] == f"{root}/manifest.yaml: expected a mapping at the top level"


def test_unknown_key_is_named_with_its_likely_spelling(tmp_path: Path) -> None:
    alone = project(tmp_path / "a", '[tool.gestalt]\nprovder = "hello:plugin"\n')
    shutil.copy(HELLO / "hello.py", alone)
    code, problems = check(alone, tmp_path)
    assert code == 1
    assert problems == [
        f"{alone}/pyproject.toml: [tool.gestalt] unknown key 'provder' (did you mean 'provider'?)",
        f"{alone}/pyproject.toml: [tool.gestalt] has no provider key (expected 'provider' or one "
        "of integration, authentication, cache, s3, agent, workflow, secrets, telemetry, "
        "indexeddb, runtime, authorization)",
    ]
    # Beside a valid key the typo is still reported (the runtime would silently skip it).
    both = project(
        tmp_path / "b",
        '[tool.gestalt]\nprovider = "hello:plugin"\ncahce = "x"\nAuth = "x"\nzzz = 1\n'
        'name = "hello"\n',
    )
    shutil.copy(HELLO / "hello.py", both)
    shutil.copy(HELLO / "manifest.yaml", both)
    run = gestalt("check", both, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"error: {both}/pyproject.toml: [tool.gestalt] unknown key 'cahce' (did you mean 'cache'?)",
        f"error: {both}/pyproject.toml: [tool.gestalt] unknown key 'zzz' (expected one of "
        "provider, integration, authentication, cache, s3, agent, workflow, secrets, telemetry, "
        "indexeddb, runtime, authorization, name)",
    ]


@pytest.mark.parametrize("method", ["FETCH", "HEAD", "options"])
def test_method_the_host_does_not_accept(tmp_path: Path, method: str) -> None:
    source = ONE_OPERATION.format(op_id="ping").replace(
        "@plugin.operation(id='ping')", f"@plugin.operation(id='ping', method={method!r})"
    )
    root = project(tmp_path / "p", TINY, **{"tiny.py": source})
    code, problems = check(root, tmp_path)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith("catalog export of tiny:plugin failed: ")
    assert problems[0].endswith(
        f"operation 'ping' (tiny.ping): invalid HTTP method {method!r}: the host accepts GET, "
        "POST, PUT, PATCH, DELETE"  # no "(traceback above)": check prints no traceback
    )
    # The accepted ones pass, in any case (a fresh folder: no stale bytecode of the same size).
    good = project(tmp_path / "q", TINY, **{"tiny.py": source.replace(repr(method), "'patch'")})
    assert check(good, tmp_path) == (0, [])
