"""Whether tracing may be in use, answered without importing :mod:`gestalt.telemetry`.

The provider runtime asks before it loads the telemetry package (its helpers are code a
provider without OpenTelemetry never runs), and the package asks the same question here
before it loads its OpenTelemetry glue, so the rule is written once.
"""

from __future__ import annotations

import os
import sys


def tracing_wanted() -> bool:
    """True when the program imported OpenTelemetry or an ``OTEL_*`` variable is set."""
    return sys.modules.get("opentelemetry") is not None or any(
        name.startswith("OTEL_") for name in os.environ
    )
