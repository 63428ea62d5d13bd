"""The built wheel ships ``gestalt`` and ``gestalt.gen`` with their type markers, and only
those: not the source checkout's ``generated/gestalt/__init__.pyi``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_contents_and_import(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gestalt_sdk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "gestalt/__init__.py",
        "gestalt/py.typed",
        "gestalt/gen/__init__.py",
        "gestalt/gen/py.typed",
        "gestalt/gen/support.py",
        "gestalt/gen/serving.py",
        "gestalt/gen/v1/cache_pb2.py",
        "gestalt/gen/v1/cache_pb2.pyi",
        "gestalt/gen/v1/cache_pb2_grpc.pyi",
        "gestalt/gen/v1/cache_clients.py",
        "gestalt/gen/v1/cache_servicers.py",
        "gestalt/gen/v1/cache_mirrors.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("codegen/", "tests/", "generated/")) for name in names)
    # The type checkers' marker of the source checkout would shadow gestalt/__init__.py.
    assert "gestalt/__init__.pyi" not in names

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = (
        f"import sys; sys.path.insert(0, {str(unpacked)!r});"
        "import gestalt.gen.v1.s3_clients as m; print(m.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip().startswith(str(unpacked))
