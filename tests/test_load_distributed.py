"""The load probe distributed: the suite as Locust's master (--load-master) and workers as
separate processes (--load-worker) on loopback, against a real server; every worker's
acknowledged values read back, a killed worker's too."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest

from mlflowcheck.runtime.server import free_port
from tests.support import ENTRY, run_suite, start_server
from tests.test_broken_deployments import assert_fails

SELECT = ("-k", "not model and not registry and not evaluation")


@pytest.fixture(scope="module")
def roomy_server(tmp_path_factory):
    """A light server whose database pool holds 32 users at once: SQLAlchemy's default (5 + 10
    overflow) makes some of them wait 30 s and fail ("QueuePool limit ... reached")."""
    pool = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "20", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "40"}
    srv = start_server(tmp_path_factory.mktemp("roomy"), env=pool)
    yield srv
    srv.stop()


def start_worker(tmp_path, port: int) -> subprocess.Popen:
    """`test_mlflow_local.py --load-worker`, as on another machine: its own session and folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, str(ENTRY), "--load-worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    proc.log = log
    return proc


def stop(proc: subprocess.Popen) -> str:
    """Wait for a worker to quit (its master tells it to), then make sure: SIGKILL its group."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.log.close()
    return Path(proc.log.name).read_text(encoding="utf-8", errors="replace")


def master(tmp_path, url: str, port: int, users: int, seconds: int, *extra: str):
    return run_suite(
        tmp_path, "--tracking-uri", url, *SELECT, "--load", str(users), "--load-seconds", str(seconds),
        "--load-master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--expect-workers", "2",
        *extra, timeout=400,
    )  # fmt: skip


def test_a_master_and_two_worker_processes_read_back_every_value_both_workers_acknowledged(roomy_server, tmp_path):
    server = roomy_server
    port = free_port()
    workers = [start_worker(tmp_path, port) for _ in range(2)]
    try:
        csv = tmp_path / "locust"
        result = master(
            tmp_path, server.url, port, 32, 20, "--load-users-per-second", "16",
            "--load-csv", str(csv), "--load-html", str(tmp_path / "l.html"),
        )  # fmt: skip
    finally:
        logs = [stop(w) for w in workers]
    assert result.code == 0, result.output + "\n".join(logs)
    load = result.report["load"]
    assert (load["lost"], load["duplicated"], load["altered"], load["errors"]) == (0, 0, 0, {})
    assert load["clients"] == 32
    # Figures merged from both workers, each named by its host and process, each with its share.
    host = socket.gethostname()
    assert sorted(load["workers"]) == sorted(f"{host}:{w.pid}" for w in workers), load["workers"]
    assert sum(w["users"] for w in load["workers"].values()) == 32
    assert all(w["points"] > 0 and not w["gone"] for w in load["workers"].values())
    assert sum(w["points"] for w in load["workers"].values()) == load["points"]
    assert "32 users on 2 workers" in result.check("load")["message"]
    # The ramp: the users' runs were started over about 2 s, not all at once.
    client = mlflow.MlflowClient(tracking_uri=server.url)
    experiment = client.get_run(result.report["run_id"]).info.experiment_id
    runs = client.search_runs([experiment], filter_string="attributes.run_name LIKE 'load-%'", max_results=100)
    started = sorted(r.info.start_time for r in runs if r.info.run_name.split("-")[1] in load["workers"])
    assert len(started) == 32
    assert 1000 < started[-1] - started[0] < 10_000, started
    # Locust's own reports, from the master: every endpoint the users called.
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert "runs/log-batch" in stats
    assert "Aggregated" in stats
    assert (tmp_path / "l.html").stat().st_size > 0


def test_a_worker_killed_mid_run_is_named_and_what_it_had_acknowledged_is_still_read_back(server, tmp_path):
    port = free_port()
    survivor, victim = start_worker(tmp_path, port), start_worker(tmp_path, port)
    name = f"{socket.gethostname()}:{victim.pid}"
    killed = threading.Event()

    def kill_when_logging() -> None:
        # Once the victim's runs hold points (it is mid-run), SIGKILL: no goodbye, no last ledger.
        client = mlflow.MlflowClient(tracking_uri=server.url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ids = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(ids, filter_string=f"attributes.run_name LIKE 'load-{name}-%'")
            if runs and all(r.data.metrics.get("loss") is not None for r in runs):
                history = client.get_metric_history(runs[0].info.run_id, "loss")
                if len(history) >= 10:
                    os.kill(victim.pid, signal.SIGKILL)
                    killed.set()
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_logging, daemon=True)
    killer.start()
    try:
        result = master(tmp_path, server.url, port, 8, 15)
    finally:
        killer.join(timeout=5)
        stop(survivor), stop(victim)
    assert killed.is_set(), result.output
    assert_fails(result, "load", f"Load worker {name} stopped answering its master", "none lost, duplicated or altered")
    load = result.report["load"]
    assert load["workers"][name]["gone"] is True
    assert load["workers"][name]["points"] > 0  # what it had reported before it died: verified
    assert (load["lost"], load["duplicated"], load["altered"]) == (0, 0, 0)
    survived = next(w for n, w in load["workers"].items() if n != name)
    assert not survived["gone"]
    assert survived["points"] > 0


def test_a_master_without_its_workers_says_how_to_start_them(server, tmp_path):
    port = free_port()
    result = master(tmp_path, server.url, port, 4, 5, "--expect-workers-max-wait", "3")
    assert_fails(result, "load", "waited 3s for 2 worker(s) in vain", "Gave up waiting for workers")
    assert f"--load-worker --master-host <this machine> --master-port {port}" in result.check("load")["message"]
