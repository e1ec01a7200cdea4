"""The suite's own child processes: their environment, and stopping one with everything it
started (its process group gets SIGTERM, a deadline, then SIGKILL: ``mlflow server``'s workers
and Locust's outlive their parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

#: Where this package is imported from (a checkout, or site-packages): its children import it too.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def child_env(drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a Python process of the suite's (Locust's, a probe target's): this one's
    but ``drop``, with this package importable and MLflow's telemetry off."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    return env


def stop_group(proc: subprocess.Popen, deadline: float = 10.0) -> None:
    """``proc`` leads its own group (started with start_new_session): SIGTERM to the group, wait up
    to ``deadline`` for it to empty, then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        proc.poll()  # reap the leader, else the group never empties
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
