"""A real server killed (SIGKILL to its process group) in the middle of a run: the suite says
what happened and when, skips the rest at once, and gives its verdict within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mlflowcheck.probes.traces import RETRIEVER
from mlflowcheck.runtime.browser import find_browser
from tests.faultproxy import Fault, FaultProxy
from tests.support import ENTRY


def kill_during(srv, url: str, tmp_path, marker: str, *args: str, wait: float = 0.0) -> tuple[str, int, float]:
    """Run the suite against ``url``; when ``marker`` is printed (and ``wait`` has passed), kill
    the server's whole process group. Returns the output, the exit code and the seconds from the
    kill to the verdict line."""
    command = [sys.executable, str(ENTRY), "--tracking-uri", url, *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, env={k: v for k, v in os.environ.items()
                                                         if not k.startswith("MLFLOW_")}) as proc:  # fmt: skip
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                break
        time.sleep(wait)
        os.killpg(srv.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        took = float("inf")
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("Verdict:"):
                took = time.monotonic() - killed
        proc.wait(timeout=120)
    return "".join(seen), proc.returncode, took


def assert_death_reported(output: str, code: int, took: float, during: str, before: str, skipped: list[str]):
    assert code == 1, output
    assert f"FAIL  {during}" in output, output
    assert f"The server stopped answering during '{during}' (it answered during '{before}')" in output, output
    assert "it crashed, was stopped or was restarted, and it does not answer now" in output
    assert "Traceback" not in output
    for name in skipped:
        assert f"SKIP  {name:<13}        the server stopped answering during '{during}'" in output, output
    assert took < 10, f"the verdict came {took:.1f}s after the death"


def test_killed_during_metric_logging(fresh_server, tmp_path):
    srv = fresh_server()
    # The proxy holds the metrics request for 3 s: the server dies while it is under way.
    hold = Fault("POST", r"/runs/log-batch$", "delay:3", body=r'"metrics"', times=1)
    with FaultProxy(srv.url, [hold]) as proxy:
        output, code, took = kill_during(srv, proxy.url, tmp_path, "PASS  params", "--no-ui", wait=1.0)
    assert_death_reported(output, code, took, "metrics", "params", ["search", "final_report"])


def test_killed_during_the_model_upload(fresh_server, tmp_path):
    srv = fresh_server()
    # The proxy holds the model file's upload for 3 s: the server dies while the model worker
    # uploads it, after the main process's last check before the model's verdict.
    hold = Fault("PUT", r"/model\.skops$", "delay:3", times=1)
    with FaultProxy(srv.url, [hold]) as proxy:
        output, code, took = kill_during(srv, proxy.url, tmp_path, "PASS  prompts", "--no-ui", wait=0.5)
    assert_death_reported(output, code, took, "model", "prompts", ["run", "final_report"])


def test_killed_during_the_trace_export_is_a_death_not_minutes_of_retries(fresh_server, tmp_path):
    srv = fresh_server()
    # The proxy holds the spans for 3 s: the server dies while the trace is exported, which
    # MLflow's client never raises from; reading it back finds the server gone.
    # (The seed's trace's spans, by its retriever span's name: not the otlp check's span before it.)
    hold = Fault("POST", r"/v1/traces$", "delay:3", body=RETRIEVER, times=1)
    with FaultProxy(srv.url, [hold]) as proxy:
        output, code, took = kill_during(srv, proxy.url, tmp_path, "PASS  search", "--no-ui", wait=1.0)
    assert_death_reported(output, code, took, "trace", "search", ["assessments", "run", "final_report"])


def test_killed_during_the_browser_check_skips_the_rest_without_browser_waits(fresh_server, tmp_path):
    if find_browser()[0] is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser check", pytrace=False)
        pytest.skip("no Chromium on this machine")
    srv = fresh_server()
    output, code, took = kill_during(srv, srv.url, tmp_path, "PASS  registry", "--ui")
    assert_death_reported(output, code, took, "browser", "registry", ["final_report"])


def test_killed_during_the_load_probe(fresh_server, tmp_path):
    srv = fresh_server()
    output, code, took = kill_during(
        srv, srv.url, tmp_path, "PASS  run", "--no-ui", "--load", "2", "--load-seconds", "8", wait=4.0
    )
    assert_death_reported(output, code, took, "load", "registry", ["final_report"])
