"""The load probe's Locust process: started in its own session (Locust forks its workers), its
progress read while it runs, stopped as a group with a deadline; its merged ledger read back.

Locust patches the standard library for gevent when it is imported: it runs in a process of
its own, never in the suite's."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.runtime.processes import child_env, stop_group
from mlflowcheck.runtime.server import free_port, tail

LOADFILE = Path(__file__).resolve().parents[1] / "probes" / "loadfile.py"
START_DEADLINE = 120.0  # Locust's and MLflow's imports in each process, on a busy machine
LAST_REQUESTS = 60.0  # after the run's time, how long the last requests may take on a slow server
WORKER_POOL = 100  # a worker's HTTP connections: it learns its users' number only from the master


@dataclass
class Plan:
    """One load run: how many users, where, for how long, and how Locust spreads them."""

    url: str
    experiment_id: str
    users: int
    seconds: float
    traced: bool = False
    users_per_second: float | None = None  # the ramp-up; default: every user at once
    processes: int = 1  # on this machine: 1 is Locust's local runner
    master: bool = False  # distributed: this process is the master, workers come from elsewhere
    master_bind_host: str = "*"
    master_bind_port: int = 5557
    expect_workers: int = 1
    expect_workers_max_wait: float = START_DEADLINE
    csv_prefix: str | None = None
    html: str | None = None
    workdir: Path = field(default_factory=Path)

    @property
    def ramp(self) -> float:
        return self.users / (self.users_per_second or self.users)


def local_processes(users: int) -> int:
    """Locust processes for USERS on this machine: one per core, at most one per user."""
    return max(1, min(users, os.cpu_count() or 1))


def command(plan: Plan, ledger: Path) -> list[str]:
    rate = plan.users_per_second or plan.users
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOADFILE), "--headless", "--only-summary",
        "-u", str(plan.users), "-r", f"{rate:g}", "--loglevel", "WARNING",
        "--mlflow-url", plan.url, "--mlflow-experiment-id", plan.experiment_id,
        "--mlflow-seconds", f"{plan.seconds:g}", "--mlflow-traced", "1" if plan.traced else "",
        "--mlflow-ledger", str(ledger),
    ]  # fmt: skip
    if plan.master:
        cmd += ["--master", "--master-bind-host", plan.master_bind_host, "--master-bind-port",
                str(plan.master_bind_port), "--expect-workers", str(plan.expect_workers),
                "--expect-workers-max-wait", f"{plan.expect_workers_max_wait:g}"]  # fmt: skip
    elif plan.processes > 1:
        # The forked workers connect to the master's port on loopback, never on every interface.
        port = str(free_port())
        cmd += ["--processes", str(plan.processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
                "--master-port", port]  # fmt: skip
    if plan.csv_prefix:
        cmd += ["--csv", plan.csv_prefix]
    if plan.html:
        cmd += ["--html", plan.html]
    return cmd


def locust_env(users: int) -> dict[str, str]:
    env = child_env()  # the loadfile imports this package
    # One HTTP session is shared by a process's users: a pool smaller than its users would open and
    # drop connections all the time ("Connection pool is full").
    env["MLFLOW_HTTP_POOL_MAXSIZE"] = str(max(10, users))
    env["MLFLOW_HTTP_POOL_CONNECTIONS"] = str(max(10, users))
    return env


def run(plan: Plan, progress=None) -> dict:
    """Run Locust to the end of the plan; its merged ledger. Raises CheckFailed with Locust's own
    words when it ends without one."""
    ledger = plan.workdir / f"load-ledger-{time.time_ns()}.json"
    log_path = ledger.with_suffix(".log")
    progress_file = ledger.with_name(ledger.name + ".progress")
    waits = plan.expect_workers_max_wait if plan.master else START_DEADLINE
    allowed = waits + plan.ramp + plan.seconds + LAST_REQUESTS + 30
    deadline = time.monotonic() + allowed
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command(plan, ledger), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=locust_env(plan.users), cwd=plan.workdir, start_new_session=True)  # fmt: skip
    try:
        while proc.poll() is None and time.monotonic() < deadline and not ledger.exists():
            if progress is not None:
                progress(progress_line(plan, progress_file))
            time.sleep(0.2)
        if plan.csv_prefix or plan.html:  # Locust writes its own reports as it shuts down
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
    finally:
        stop_group(proc)
    if not ledger.exists():
        said = tail(log_path, 12).strip() or "(nothing)"
        if proc.returncode is None or time.monotonic() >= deadline:
            why = f"did not finish within {allowed:.0f}s"
        else:
            why = f"ended (exit code {proc.returncode}) without its ledger"
        if plan.master and "waiting for workers" in said:
            worker = f"mlflowcheck --load-worker --master-host <this machine> --master-port {plan.master_bind_port}"
            tip = f"start {plan.expect_workers} worker(s) within {plan.expect_workers_max_wait:g}s: `{worker}`."
            why = f"waited {plan.expect_workers_max_wait:g}s for {plan.expect_workers} worker(s) in vain"
        else:
            tip = "look at Locust's output above; run again with fewer --load users."
        raise CheckFailed(f"The load probe's Locust run {why}. Locust said:\n{said}", tip)
    return json.loads(ledger.read_text(encoding="utf-8"))


def progress_line(plan: Plan, progress_file: Path) -> str:
    try:
        now = json.loads(progress_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        waiting = f"waiting for {plan.expect_workers} worker(s)" if plan.master else "starting"
        return f"load: {waiting} ({plan.users} users)"
    workers = f", {now['workers']} workers" if plan.master or plan.processes > 1 else ""
    elapsed = min(plan.ramp + plan.seconds, now["elapsed"])
    return (f"load: {elapsed:4.1f}s of {plan.ramp + plan.seconds:g}s, {now['users']} users{workers}, "
            f"{now['points']:,} points, {now['errors']} errors")  # fmt: skip


def worker_command(master_host: str, master_port: int) -> list[str]:
    """`mlflowcheck --load-worker`: Locust's own worker with the loadfile; the master sends the rest."""
    return [sys.executable, "-m", "locust", "-f", str(LOADFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port)]  # fmt: skip
