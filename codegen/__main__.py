"""``python -m codegen``: rebuild ``generated/`` from the protos (or check it is up to date)."""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

from codegen import toolchain
from codegen.generate import generate

REPO = Path(__file__).resolve().parent.parent


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """Unified diffs (and missing/extra files) between two generated trees."""
    problems: list[str] = []
    want = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    have = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    want = {p for p in want if "__pycache__" not in p.parts}
    have = {p for p in have if "__pycache__" not in p.parts}
    for rel in sorted(want - have):
        problems.append(f"missing from generated tree: {rel}")
    for rel in sorted(have - want):
        problems.append(f"not produced by the generator: {rel}")
    for rel in sorted(want & have):
        a = (expected / rel).read_text(encoding="utf-8").splitlines(keepends=True)
        b = (actual / rel).read_text(encoding="utf-8").splitlines(keepends=True)
        if a != b:
            problems.extend(difflib.unified_diff(b, a, f"committed/{rel}", f"regenerated/{rel}"))
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--proto-root", type=Path, default=REPO / "proto")
    parser.add_argument("--out", type=Path, default=REPO / "generated")
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and fail on any difference from --out",
    )
    parser.add_argument(
        "--fragments",
        action="store_true",
        help="render only per-proto modules (no gestalt.gen package files), as goldens do",
    )
    args = parser.parse_args(argv)
    try:
        toolchain.check()
    except toolchain.ToolchainError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not args.check:
        generate(args.proto_root, args.out, sdk_package=not args.fragments)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "generated"
        generate(args.proto_root, fresh, sdk_package=not args.fragments)
        problems = diff_trees(fresh, args.out)
    if problems:
        sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in problems)
        stale = f"{args.out} is out of date: run `make gen` (or `python -m codegen`)"
        print(stale, file=sys.stderr)
        return 1
    print(f"{args.out}: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
