"""Stopping a process the suite started, with everything it started: its process group gets
SIGTERM, a deadline, then SIGKILL (``mlflow server``'s workers and Locust's outlive their parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


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
