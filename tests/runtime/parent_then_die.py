"""Start a provider as its parent, print the provider's pid, then wait to be killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

socket_path, root, target = sys.argv[1:4]
env = dict(
    os.environ, GESTALT_PLUGIN_SOCKET=socket_path, GESTALT_PLUGIN_PARENT_PID=str(os.getpid())
)
child = subprocess.Popen(
    [sys.executable, "-m", "gestalt._runtime", root, target, "integration"], env=env
)
print(child.pid, flush=True)
time.sleep(600)
