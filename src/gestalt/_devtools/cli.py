"""The ``gestalt`` command (also ``python -m gestalt``): run, call and check providers locally.

Subcommands:

* ``gestalt dev [ROOT]`` starts the provider under ROOT the way the host does, with embedded
  Cache, IndexedDB and S3 services, restarts it when its source changes, stops on Ctrl-C;
* ``gestalt invoke OPERATION [key=value ... | --json '{...}']`` calls an operation on the
  provider ``gestalt dev`` runs for ROOT, or on a one-shot start of ROOT (``key=value``:
  JSON when it parses, else the plain string; see ``INVOKE_VALUES``);
* ``gestalt catalog [ROOT]`` prints (or ``--output`` writes) the static catalog the host reads;
* ``gestalt check [ROOT]`` reports every problem with the project's configuration and catalog;
* ``gestalt build [ROOT] [-o OUTPUT]`` builds a single-file executable of the provider
  its ``[tool.gestalt]`` table declares (the seven arguments of the host's packaging step,
  ``ROOT TARGET OUTPUT NAME KIND GOOS GOARCH``, work too).

Output is for people by default; ``--json`` before the subcommand prints one JSON document
for scripts (after ``invoke`` it gives the params, like ``--params``). Errors are one
``gestalt: error: ...`` line (exit status 1) unless ``--debug``. ``invoke`` of an operation the
provider does not have prints the host's 404 answer and such a line naming the operation and
the ones that exist (an ``"error"`` key of the JSON document with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from gestalt._devtools.build import BuildError
from gestalt._devtools.output import CommandError, Output, json_object
from gestalt._runtime.project import ProjectError


def parse_assignments(
    items: Sequence[str], string_keys: Callable[[], Collection[str]] | None = None
) -> dict[str, Any]:
    """``key=value`` arguments as params (the rule ``INVOKE_VALUES`` states).

    A value is taken as JSON when it parses as JSON, else as the plain string. A number,
    boolean, array or object goes back to the text as written when its key is one of
    ``string_keys()`` (the operation's string parameters; asked only when needed).
    """
    params: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"expected key=value, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
        if params[key] is None or isinstance(params[key], str):
            texts.pop(key, None)
        else:
            texts[key] = value
    if texts and string_keys is not None:
        for key in texts.keys() & set(string_keys()):
            params[key] = texts[key]
    return params


def string_parameters(root: Path, operation: str) -> set[str]:
    """Names of the parameters the static catalog of ``root`` lists as ``string`` for ``operation``.

    Empty for other provider kinds and unknown operations (the call itself reports those).
    """
    import yaml

    from gestalt._authoring.providers import ProviderKind
    from gestalt._runtime.project import export_catalog, load_spec

    target, kind = load_spec(root)
    if kind is not ProviderKind.INTEGRATION:
        return set()
    catalog = yaml.safe_load(export_catalog(root, target))
    for op in catalog.get("operations") or []:
        if isinstance(op, dict) and op.get("id") == operation:
            return {
                str(param.get("name"))
                for param in op.get("parameters") or []
                if isinstance(param, dict) and param.get("type") == "string"
            }
    return set()


INVOKE_VALUES = """\
Each key=value sets one parameter. A value that is valid JSON is sent as that JSON (42, 1.5,
true, null, [1, 2], {"a": 1}, "quoted text"); anything else is sent as the plain string
(Ann, 2026-01-02, a b). When the operation's catalog lists the parameter as a string, a value
that parsed as a number, boolean, array or object is sent as the text as written instead, so
name=123 sends "123" (null stays null). --json '{...}' gives parameters as one JSON object,
taken exactly as written, and wins over key=value for the same key.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gestalt`` command."""
    parser = argparse.ArgumentParser(
        prog="gestalt", description="Run, call and check Gestalt providers locally."
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks on errors, and what the provider logged for an invoked call",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run a provider with embedded host services")
    dev.add_argument("root", nargs="?", default=".", type=Path, help="provider directory")
    dev.add_argument("--data", type=Path, help="data directory (default ROOT/.gestalt/data)")
    dev.add_argument("--name", help="provider name the host would configure")
    dev.add_argument("--config", default="{}", help="provider config as a JSON object")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on changes")

    invoke = sub.add_parser(
        "invoke",
        help="call an operation and print the result",
        description="Call an operation on the provider gestalt dev runs for ROOT (or on a\n"
        "one-shot start of ROOT) and print its status and body; exit status 1 for a\n"
        "status >= 400.",
        epilog=INVOKE_VALUES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    invoke.add_argument("operation", help="operation id, as the catalog lists it")
    invoke.add_argument(
        "assignments", nargs="*", metavar="key=value", help="one parameter (see below)"
    )
    invoke.add_argument(
        "--params",
        "--json",
        dest="params",
        metavar="JSON",
        help="params as one JSON object (JSON output is `gestalt --json invoke ...`)",
    )
    invoke.add_argument("--root", default=".", type=Path, help="provider directory")
    invoke.add_argument("--token", default="", help="credential token to send")

    catalog = sub.add_parser("catalog", help="print or write the static catalog")
    catalog.add_argument("root", nargs="?", default=".", type=Path)
    catalog.add_argument("--output", "-o", type=Path, help="write the catalog to this file")

    check = sub.add_parser("check", help="validate configuration, manifest and catalog")
    check.add_argument("root", nargs="?", default=".", type=Path)

    build = sub.add_parser(
        "build",
        help="build a single-file provider executable",
        usage="gestalt build [-h] [-o OUTPUT] [--name NAME] [--goos GOOS] [--goarch GOARCH] [ROOT]",
        description="Build the provider under ROOT into one executable file (PyInstaller, "
        "the 'build' extra), with the target, kind and name from its pyproject.toml "
        "[tool.gestalt] table. The target is imported first, so a typo fails before the "
        "build starts. The host's packaging step passes seven arguments instead: ROOT "
        "TARGET OUTPUT NAME KIND GOOS GOARCH.",
    )
    build.add_argument(
        "args", nargs="*", metavar="ROOT", help="provider directory (default: the current one)"
    )
    build.add_argument(
        "-o", "--output", type=Path, help="executable to write (default: ROOT/dist/NAME)"
    )
    build.add_argument(
        "--name",
        help="plugin name to embed (default: tool.gestalt.name, else the plugin's own name)",
    )
    build.add_argument("--goos", help="target OS, Go spelling (default: this machine's)")
    build.add_argument(
        "--goarch", help="target architecture, Go spelling (default: this machine's)"
    )
    build.set_defaults(subparser=build)
    return parser


def run_build(args: argparse.Namespace) -> Path:
    """``gestalt build``: the project form, or the packaging step's seven arguments."""
    from gestalt._devtools.build import build, build_project

    parser: argparse.ArgumentParser = args.subparser
    positional: list[str] = args.args
    options = (args.output, args.name, args.goos, args.goarch)
    if len(positional) == 7:
        if any(option is not None for option in options):
            parser.error("with seven arguments no options apply")
        root, target, output, name, kind, goos, goarch = positional
        return build(Path(root), target, Path(output), name, kind, goos, goarch)
    if len(positional) > 1:
        parser.error(
            f"expected ROOT (read its [tool.gestalt] table) or the seven "
            f"arguments ROOT TARGET OUTPUT NAME KIND GOOS GOARCH, got {len(positional)} "
            "arguments"
        )
    return build_project(
        Path(positional[0] if positional else "."),
        args.output,
        name=args.name,
        goos=args.goos,
        goarch=args.goarch,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gestalt`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # ``key=value`` items may follow options of ``invoke``; anything else is an error.
        if args.command != "invoke" or any(
            "=" not in item or item.startswith("-") for item in extra
        ):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.assignments.extend(extra)
    out = Output(args.json)
    try:
        if args.command == "dev":
            from gestalt._devtools.devhost import run_dev

            return run_dev(args, out)
        if args.command == "invoke":
            from gestalt._devtools.devhost import run_invoke

            params = parse_assignments(
                args.assignments, lambda: string_parameters(args.root, args.operation)
            )
            if args.params:
                params.update(json_object(args.params, "the params", plural=True))
            return run_invoke(args.root, args.operation, params, args.token, out, debug=args.debug)
        if args.command == "catalog":
            from gestalt._runtime.project import export_catalog

            text = export_catalog(args.root)
            if args.output:
                args.output.write_text(text, encoding="utf-8")
                out.line(f"wrote {args.output}")
                out.document({"written": str(args.output)})
            elif out.as_json:
                import yaml

                out.document(yaml.safe_load(text))
            else:
                sys.stdout.write(text)
            return 0
        if args.command == "check":
            from gestalt._runtime.project import check_project

            problems = check_project(args.root)
            for problem in problems:
                out.line(f"{out.style('error', '31')}: {problem}")
            if not problems:
                out.line(out.style("ok", "32") + f": {args.root.resolve()} passes every check")
            out.document({"ok": not problems, "problems": problems})
            return 1 if problems else 0
        if args.command == "build":
            path = run_build(args)
            out.line(str(path))
            out.document({"output": str(path)})
            return 0
    except (CommandError, ProjectError, BuildError) as exc:
        if args.debug:
            details = getattr(exc, "details", "")
            if details:
                print(details, file=sys.stderr)
            raise
        print(f"gestalt: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2
