"""Launch providers exactly the way the Gestalt host does, for the runtime tests.

``Provider`` is the SDK's own launcher (``gestalt._runtime.launch.ProviderProcess``): ``python -m
gestalt._runtime ROOT TARGET KIND`` in a subprocess with the host's reduced environment
(contract 1.3), ``GESTALT_PLUGIN_SOCKET`` in a fresh temporary directory and the test process
as ``GESTALT_PLUGIN_PARENT_PID``; it is connected when constructed and stopped with SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from gestalt._authoring.providers import ProviderKind
from gestalt._runtime.launch import ProviderProcess, provider_env
from tests.conftest import DATA

EXAMPLES = DATA / "provider"
#: The providers the runtime tests launch.
PROVIDERS = Path(__file__).resolve().parent / "providers"
#: Seconds a runtime test waits for one call.
TIMEOUT = 10.0


def host_env(**extra: str) -> dict[str, str]:
    """The environment the host gives a provider, plus ``extra``."""
    env = provider_env(extra)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_cli(args: list[str], timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the runtime to completion (error paths, catalog export)."""
    return subprocess.run(
        [sys.executable, "-m", "gestalt._runtime", *args],
        env=host_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Provider(ProviderProcess):
    """One provider process, connected, removing its temporary directory when stopped."""

    def __init__(
        self,
        root: Path | str,
        target: str,
        kind: str = "integration",
        *,
        socket_value: str | None = None,
        parent_pid: int | None = None,
        **env: str,
    ) -> None:
        super().__init__(
            Path(root),
            target,
            ProviderKind.parse(kind),
            env={"PYTHONDONTWRITEBYTECODE": "1", **env},
            socket_value=socket_value,
            parent_pid=parent_pid,
        )
        self.wait_ready(timeout=30)

    def stderr(self) -> str:
        """Everything the provider wrote to stdout and stderr so far."""
        return self.output_text()

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int:
        """Send ``sig``, wait for the exit status, and remove the temporary directory."""
        code = super().stop(sig, grace)
        self.remove_dir()
        assert code is not None
        return code

    def __enter__(self) -> Provider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def stub(provider: Provider, stub_type: Any) -> Any:
    """A generated client of ``stub_type`` on the provider's channel."""
    return stub_type(provider.channel)
