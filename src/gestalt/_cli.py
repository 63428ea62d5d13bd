"""The ``gestalt`` command (also ``python -m gestalt``): run, call and check providers locally.

Subcommands:

* ``gestalt dev [ROOT]`` starts the provider under ROOT the way the host does, with embedded
  Cache, IndexedDB and S3 services, restarts it when its source changes, stops on Ctrl-C;
* ``gestalt invoke OPERATION [key=value ... | --json '{...}']`` calls an operation on the
  provider ``gestalt dev`` runs for ROOT, or on a one-shot start of ROOT;
* ``gestalt catalog [ROOT]`` prints (or ``--output`` writes) the static catalog the host reads;
* ``gestalt check [ROOT]`` reports every problem with the project's configuration and catalog;
* ``gestalt build ROOT TARGET OUTPUT PLUGIN_NAME RUNTIME_KIND GOOS GOARCH`` builds a
  single-file executable (``python -m gestalt._build``).

Output is for people by default; ``--json`` before the subcommand prints one JSON document
for scripts (after ``invoke`` it gives the params, like ``--params``). Errors are one
``gestalt: error: ...`` line (exit status 1) unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gestalt._project import ProjectError


class CommandError(Exception):
    """A command failed for a reason the user can act on; printed as one line.

    ``details`` (a provider's traceback, say) is printed too with ``--debug``.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class Output:
    """Human or JSON output, colour only on a terminal."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.color = sys.stdout.isatty() and not as_json

    def style(self, text: str, code: str) -> str:
        """``text`` in ANSI colour ``code`` when writing to a terminal."""
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def line(self, text: str = "") -> None:
        """A line for people (suppressed in JSON mode)."""
        if not self.as_json:
            print(text, flush=True)

    def document(self, data: Any) -> None:
        """The JSON document of a command in JSON mode."""
        if self.as_json:
            print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` arguments as params; values that parse as JSON are taken as JSON."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"expected key=value, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gestalt`` command."""
    parser = argparse.ArgumentParser(
        prog="gestalt", description="Run, call and check Gestalt providers locally."
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run a provider with embedded host services")
    dev.add_argument("root", nargs="?", default=".", type=Path, help="provider directory")
    dev.add_argument("--data", type=Path, help="data directory (default ROOT/.gestalt/data)")
    dev.add_argument("--name", help="provider name the host would configure")
    dev.add_argument("--config", default="{}", help="provider config as a JSON object")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on changes")

    invoke = sub.add_parser("invoke", help="call an operation and print the result")
    invoke.add_argument("operation")
    invoke.add_argument("assignments", nargs="*", metavar="key=value")
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

    build = sub.add_parser("build", help="build a single-file provider executable")
    build.add_argument("args", nargs=argparse.REMAINDER, help="as python -m gestalt._build")
    return parser


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
            from gestalt._devhost import run_dev

            return run_dev(args, out)
        if args.command == "invoke":
            from gestalt._devhost import run_invoke

            params = parse_assignments(args.assignments)
            if args.params:
                try:
                    extra = json.loads(args.params)
                except ValueError as exc:
                    raise CommandError(f"the params are not valid JSON: {exc}") from None
                if not isinstance(extra, dict):
                    raise CommandError("the params must be a JSON object")
                params.update(extra)
            return run_invoke(args.root, args.operation, params, args.token, out)
        if args.command == "catalog":
            from gestalt._project import export_catalog

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
            from gestalt._project import check_project

            problems = check_project(args.root)
            for problem in problems:
                out.line(f"{out.style('error', '31')}: {problem}")
            if not problems:
                out.line(out.style("ok", "32") + f": {args.root.resolve()} passes every check")
            out.document({"ok": not problems, "problems": problems})
            return 1 if problems else 0
        if args.command == "build":
            from gestalt._build import main as build_main

            return build_main(args.args)
    except (CommandError, ProjectError) as exc:
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
