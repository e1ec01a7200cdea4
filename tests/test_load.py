"""The load probe (--load): concurrent clients against real servers on every backend, every
value read back; lost writes and SQLite's single writer caught and explained. And its
arithmetic, tested directly."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter

from mlflowcheck.core.loadstats import Sent, compare_points, figures, percentile
from mlflowcheck.explain.load import error_kind, explain_errors
from mlflowcheck.runtime.server import free_port
from tests.faultproxy import Fault
from tests.support import ENTRY, run_suite
from tests.test_broken_deployments import assert_fails, run_through_proxy

LOAD = ("--load", "3", "--load-seconds", "3", "-k", "not model and not registry")


def test_load_probe_reads_back_every_value_on_each_backend(database, tmp_path):
    junit = tmp_path / "junit.xml"
    four = ("--load", "4", *LOAD[2:])
    result = run_suite(
        tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
        "--server-dir", str(tmp_path / "server"), "--backend-store-uri", database.uri, "--junitxml", str(junit), *four,
    )  # fmt: skip
    assert result.code == 0, result.output
    load = result.report["load"]
    assert (load["lost"], load["duplicated"], load["altered"], load["errors"]) == (0, 0, 0, {})
    assert load["clients"] == 4
    assert len(load["workers"]) == 2  # on Locust, one process per core here
    assert load["points"] > 0
    assert {"runs/log-batch", "runs/log-metric", "runs/log-parameter", "runs/set-tag"} <= set(load["latency_ms"])
    assert "lost 0, duplicated 0, altered 0" in result.check("load")["message"]
    # The database itself holds every point the clients had acknowledged: in the workers' runs.
    [(stored,)] = database.query(
        "select count(*) from metrics m join runs r on r.run_uuid = m.run_uuid where r.name like %s", "load-%"
    )
    assert stored == load["points"]
    # The workers' traced calls: every span they were sent is in the spans table, in their traces.
    assert load["traces"] > 0, load
    assert load["spans"] == 2 * load["traces"]
    [(spans,)] = database.query(
        "select count(*) from spans where trace_id in (select trace_id from spans where name like %s)", "load-%-call-%"
    )
    assert spans == load["spans"]
    # The probe's own figures per second are metrics of the suite's run, for the UI to chart.
    # (`key` is a reserved word in MySQL: read the rows, pick the column here.)
    rows = database.query("select * from metrics where run_uuid = %s", result.report["run_id"])
    charted = [(sum(1 for row in rows if "load.points_per_s" in row),)]
    assert charted == [(len(load["per_second"]),)]
    assert f'<property name="load.points" value="{load["points"]}" />' in junit.read_text()


def test_writes_a_proxy_swallows_under_load_are_counted_as_lost(server, tmp_path):
    # Every client's batch of step 7 is answered 200 by the proxy and never reaches the server.
    drop = Fault("POST", r"/runs/log-batch$", "drop", body=r'"step": 7[,}]')
    result = run_through_proxy(server, tmp_path, drop, args=list(LOAD))
    assert_fails(result, "load", "The server lost data under load: 15 lost, 0 duplicated, 0 altered", "step 7")
    load = result.report["load"]
    assert load["lost"] == 15  # 5 metrics of step 7, for each of 3 users
    # Counted per worker: the 3 users run in Locust's 2 processes here (one per core), 2 and 1.
    lost = sorted((w["users"], w["lost"]) for w in load["workers"].values())
    assert lost == [(1, 5), (2, 10)], load["workers"]
    assert "By worker: " in result.check("load")["message"]


def test_load_probe_fails_when_p95_exceeds_the_limit(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, *LOAD, "--load-p95-ms", "0.01")
    assert_fails(result, "load", "exceeds --load-p95-ms 0.01", "--workers")


def test_a_locked_sqlite_database_is_named_as_sqlites_single_writer(tmp_path):
    # Another process holds SQLite's write lock while the clients log: the server waits for the
    # lock (busy_timeout, 20 s), then answers "database is locked"; the suite waits long enough to
    # hear why, and says what it means. (No client retries: they would only wait out the lock.)
    # The lock is held until the load check has answered, however long its workers take to start:
    # a fixed hold let a slow start outlast it.
    port, server_dir = free_port(), tmp_path / "server"
    command = [sys.executable, str(ENTRY), "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server",
               "--server-dir", str(server_dir), "--no-ui", *LOAD]  # fmt: skip
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, env=env) as proc:  # fmt: skip
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "PASS  run" in line:
                break
        lock = sqlite3.connect(server_dir / "my.db", timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            for line in proc.stdout:
                seen.append(line)
                if "PASS  load " in line or "FAIL  load " in line:  # its verdict, not its progress line
                    break
        finally:
            lock.rollback()
            lock.close()
        rest, _ = proc.communicate(timeout=300)
    output = "".join(seen) + rest
    assert proc.returncode == 1, output
    assert "FAIL  load" in output
    assert "database is locked" in output
    assert "SQLite lets one process write at a time" in output


# --- the arithmetic --------------------------------------------------------------------------


def test_points_are_lost_duplicated_or_altered_by_step_and_timestamp():
    sent = [(0, 0.5, 100), (1, 0.25, 101), (2, 0.125, 102)]
    assert compare_points("k", sent, list(sent)).total == 0
    loss = compare_points("k", sent, [(0, 0.5, 100), (0, 0.5, 100), (1, 0.3, 101)])
    assert (loss.lost, loss.duplicated, loss.altered) == (1, 1, 1)
    assert "k step 1: sent 0.25, read back 0.3" in loss.examples


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([], 95) == 0.0


def test_figures_count_points_requests_and_errors_per_second():
    sent = Sent(run_id="r", metrics={"loss": [(0, 1.0, 1), (1, 0.5, 2)]})
    sent.requests = [("runs/log-batch", 100.0, 100.1, 1), ("runs/log-batch", 101.2, 101.4, 1)]
    sent.errors = [("runs/log-batch", "HTTP 500", 101.5)]
    f = figures([sent], started=100.0, seconds=2.0, loss=compare_points("loss", [], []))
    assert (f.points, f.requests, f.points_per_s) == (2, 2, 1.0)
    assert f.errors == Counter({"HTTP 500": 1})
    assert [row["second"] for row in f.per_second] == [0, 1]
    assert f.per_second[1]["errors"] == 1
    assert f.latency_ms["runs/log-batch"]["p95"] == 200.0


def test_errors_are_classified_and_explained():
    from mlflow.exceptions import MlflowException

    locked = MlflowException("API request failed with error code 500 != 200. Response body: 'database is locked'")
    assert error_kind(locked) == "database is locked"
    assert "PostgreSQL or MySQL" in explain_errors(Counter({"database is locked": 3}), [])
    assert "--workers" in explain_errors(Counter({"connection reset": 1}), [])
    assert "proxy_read_timeout" in explain_errors(Counter({"HTTP 504": 1}), [])
    assert "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE" in explain_errors(Counter({"HTTP 500": 1}), ["QueuePool limit of size 5"])


# --- durability: --restart -------------------------------------------------------------------


def test_restart_reads_back_everything_including_the_load_through_a_new_server_process(database, tmp_path):
    result = run_suite(
        tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
        "--server-dir", str(tmp_path / "server"), "--backend-store-uri", database.uri, "--restart",
        "--load", "2", "--load-seconds", "2",
    )  # fmt: skip
    assert result.code == 0, result.output
    message = result.check("restart")["message"]
    assert "restarted the server (SIGTERM, answering again in" in message
    # The seed's run, the evaluation's and the two load clients' runs, fingerprinted before and after.
    assert "read back through the new process: 1 experiments, 4 runs, " in message
    load = result.report["load"]
    histories = re.search(r"([\d,]+) metric histories \(([\d,]+) points\)", message)
    assert int(histories[2].replace(",", "")) >= load["points"] + 10  # the load's, and the seed's 10
    traces = re.search(r"([\d,]+) traces \(([\d,]+) spans\)", message)
    assert int(traces[2].replace(",", "")) >= load["spans"] + 3  # the load's, and the seed's trace's 3
    assert "2 logged models" in message  # the seed's model and the trace's app
    assert "1 model versions" in message
    assert message.endswith(": all equal")


def test_restart_needs_a_server_the_suite_started(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, "--restart")
    assert result.code == 2
    assert "error: --restart restarts a server this suite starts" in result.output
    assert "Tip: run --restart with --start-server" in result.output
