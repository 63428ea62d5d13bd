"""The generation pipeline: protoc, view model, templates, headers, formatting."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from codegen import hostmethods, model, protoc, render


def find_protos(proto_root: Path) -> list[str]:
    """Every ``.proto`` under ``proto_root``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))


def generate(proto_root: Path, out: Path, *, sdk_package: bool = True) -> list[Path]:
    """Rebuild ``out`` from the protos under ``proto_root``; return the files written.

    With ``sdk_package`` the ``gestalt.gen`` package files (``__init__``, ``support``,
    ``serving``, ``hostcalls``, ``py.typed``) and the type checkers' marker
    ``gestalt/__init__.pyi`` are rendered too; golden tests switch it off and render only the
    per-proto modules.
    """
    protos = find_protos(proto_root)
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}")
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "out"
        stage.mkdir()
        written = _generate_into(proto_root, protos, stage, sdk_package=sdk_package)
        _sync_tree(stage, out)
    return [out / p.relative_to(stage) for p in written]


def _sync_tree(stage: Path, out: Path) -> None:
    """Make ``out`` hold exactly the files of ``stage``, leaving unchanged files untouched.

    A file whose bytes are the same keeps its modification time, so the interpreter's cached
    bytecode for it stays valid; files ``stage`` lacks are removed (``__pycache__`` is left
    to the interpreter, except in a directory ``stage`` lacks, which goes with it).
    """
    wanted = {p.relative_to(stage) for p in stage.rglob("*") if p.is_file()}
    kept_dirs = {parent for relative in wanted for parent in relative.parents}
    if out.exists():
        for path in sorted(out.rglob("*"), reverse=True):
            relative = path.relative_to(out)
            if "__pycache__" in relative.parts:
                continue
            if path.is_file() and relative not in wanted:
                path.unlink()
            elif (
                path.is_dir()
                and relative not in kept_dirs
                and all(entry.name == "__pycache__" for entry in path.iterdir())
            ):
                shutil.rmtree(path)
    for relative in sorted(wanted):
        source, target = stage / relative, out / relative
        data = source.read_bytes()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _generate_into(
    proto_root: Path, protos: list[str], stage: Path, *, sdk_package: bool
) -> list[Path]:
    fds = protoc.compile_protos(proto_root, protos, stage)
    for proto in protos:
        stem = proto[: -len(".proto")]
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            render.prepend_header(stage / (stem + suffix), proto)

    env = render.environment()
    builder = model.Builder(fds)
    files = [builder.build(proto) for proto in protos]
    spec = hostmethods.load_spec(proto_root)
    named = {model.full_name(fd, s.name) for fd in fds.file for s in fd.service}
    unknown = sorted(set(spec) - named)
    if unknown:
        raise SystemExit(f"{hostmethods.SPEC}: no such service: {', '.join(unknown)}")
    rendered: list[Path] = []
    for view in files:
        folder = stage / Path(view.name).parent
        ctx = {"file": view, "header": render.header(view.name)}
        rendered.append(
            render.render(env, "mirrors.py.j2", folder / f"{view.base}_mirrors.py", **ctx)
        )
        if view.services:
            rendered.append(
                render.render(env, "clients.py.j2", folder / f"{view.base}_clients.py", **ctx)
            )
            rendered.append(
                render.render(env, "servicers.py.j2", folder / f"{view.base}_servicers.py", **ctx)
            )
        methods = hostmethods.methods_file(builder, view, builder.file(view.name), spec)
        if methods is not None:
            view.has_methods = True
            path = folder / f"{view.base}_methods.py"
            rendered.append(render.render(env, "methods.py.j2", path, methods=methods, **ctx))
        if view.provider_kinds:
            rendered.append(
                render.render(env, "providers.py.j2", folder / f"{view.base}_providers.py", **ctx)
            )

    packages = sorted({str(Path(p).parent) for p in protos})
    for package in packages:
        members = [f for f in files if str(Path(f.name).parent) == package]
        rendered.append(
            render.render(
                env,
                "package_init.py.j2",
                stage / package / "__init__.py",
                header=render.header(f"the protos in {package}/"),
                package=package.replace("/", "."),
                files=members,
            )
        )
    if sdk_package:
        root = stage / "gestalt" / "gen"
        rendered.append(
            render.render(
                env,
                "support.py.j2",
                root / "support.py",
                header=render.header("codegen/templates/support.py.j2"),
            )
        )
        rendered.append(
            render.render(
                env,
                "serving.py.j2",
                root / "serving.py",
                header=render.header("codegen/templates/serving.py.j2"),
            )
        )
        rendered.append(
            render.render(
                env,
                "hostcalls.py.j2",
                root / "hostcalls.py",
                header=render.header("codegen/templates/hostcalls.py.j2"),
            )
        )
        rendered.append(
            render.render(
                env,
                "gen_init.py.j2",
                root / "__init__.py",
                header=render.header("every proto under proto/"),
                files=files,
            )
        )
        (root / "py.typed").write_text("", encoding="utf-8")
        rendered.append(
            render.render(
                env,
                "package_marker.pyi.j2",
                root.parent / "__init__.pyi",
                header=render.header("codegen/templates/package_marker.pyi.j2"),
            )
        )
    render.ruff_format(rendered)
    return sorted(p for p in stage.rglob("*") if p.is_file())
