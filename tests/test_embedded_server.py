"""The suite starts the light seed server itself when asked, and leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from mlflowcheck.cli import build_parser
from mlflowcheck.core.target import parse_target, resolve_tracking_uri
from mlflowcheck.engine.run import wants_local_server
from mlflowcheck.runtime.browser import find_browser
from mlflowcheck.runtime.server import LocalServer, free_port, group_members, is_listening
from tests.support import ENTRY, processes_started_under, run_suite


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and "mlflow" in cmdline:
                found.append(cmdline)
    return found


def test_start_server_starts_a_light_server_passes_and_stops_it(tmp_path):
    port = free_port()
    server_dir = tmp_path / "project"
    junit = tmp_path / "junit.xml"
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server", "--server-dir", str(server_dir),
        "--junitxml", str(junit),
    )  # fmt: skip
    result.assert_all_passed()
    assert f"Nothing listens at http://127.0.0.1:{port}: starting `mlflow server" in result.output
    # Whose server passed: one this suite started, said in the verdict, the JSON and the JUnit XML.
    assert "on a server this suite started itself (nothing was listening), not one you run" in result.output
    assert result.report["server_started_by_suite"] is True
    assert '<property name="server_started_by_suite" value="true" />' in junit.read_text()
    assert "Stopped the server this suite started" in result.output
    # The seed's layout, made by running it: the database and the artifact directory.
    assert (server_dir / "my.db").is_file()
    assert (server_dir / "mlartifacts" / result.report["experiment_id"]).is_dir()
    # Nothing left behind: the port is free and no process of that server survives.
    assert not is_listening("127.0.0.1", port)
    assert processes_mentioning(f"--port {port}") == []


def test_start_server_reports_the_servers_own_error_when_it_cannot_start(tmp_path):
    port = free_port()
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server",
        "--server-dir", str(tmp_path), "--backend-store-uri", "nosuchdb://x",
    )  # fmt: skip
    assert result.code == 2, result.output
    said = "error: The local mlflow server did not start: mlflow server exited with code 1 before it was ready."
    assert f"{said} It said:\n" in result.output
    quoted, log = result.output.split(f"{said} It said:\n")[1].split("(full log: ")
    assert "'nosuchdb://x'" in quoted  # the server's own words, from its log
    assert log.startswith(f"{tmp_path / 'mlflow-server.log'})\n")
    tip = "fix what the server said above; a wrong --backend-store-uri, a database that is down or a port in use"
    assert f"Tip: {tip} are the usual causes." in result.output
    assert processes_mentioning(f"--port {port}") == []


def test_start_server_refuses_a_non_local_address(tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", "http://192.0.2.1:5000", "--start-server")
    assert result.code == 2
    assert result.output == (
        "error: --start-server needs a local address; 192.0.2.1 is not one.\n"
        "Tip: use --tracking-uri http://127.0.0.1:PORT with --start-server, or start the server on that host.\n"
    )  # and nothing else: no check ran


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], True),  # the seed's address, http://127.0.0.1:3111: the embedded default
        (["--tracking-uri", "http://127.0.0.1:3111/"], True),
        (["--tracking-uri", "http://127.0.0.1:5000"], False),
        (["--tracking-uri", "http://127.0.0.1:5000", "--start-server"], True),
    ],
)
def test_only_the_default_address_is_started_without_start_server(argv, expected, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = build_parser().parse_args(argv)
    target = parse_target(resolve_tracking_uri(args.tracking_uri))
    assert wants_local_server(args, target) is expected


def ctrl_c_at_its_default() -> None:
    """Popen's preexec_fn for a suite that a test sends Ctrl+C (SIGINT). A shell without job
    control starts a background command (`cmd &` in a script) with SIGINT ignored, its children
    inherit that, and Python then installs no KeyboardInterrupt handler: the test would send a
    signal the suite never sees."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def suite_process(tmp_path, port: int, *args: str, ui: bool = False, tmp: Path | None = None):
    """The suite started on a free port with --start-server, its output on a pipe; ended
    with SIGTERM (then SIGKILL) if the test leaves it running, so it can stop its server.
    Its TMPDIR is ``tmp`` (default: tmp_path/tmp), to see what the suite leaves there."""
    command = [
        sys.executable, str(ENTRY), "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server",
        "--server-dir", str(tmp_path), "--ui" if ui else "--no-ui", *args,
    ]  # fmt: skip
    tmp = tmp or tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=tmp_path,
        env=env, preexec_fn=ctrl_c_at_its_default,
    ) as proc:  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def read_until(proc, marker: str, seconds: float = 180) -> str:
    """The suite's output up to and including the first line containing ``marker``."""
    lines = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if not line or marker in line:
            break
    return "".join(lines)


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_keep_serving_serves_the_results_until_stopped_then_stops_the_server(tmp_path, stop_signal):
    port = free_port()
    with suite_process(tmp_path, port, "--keep-serving", "-k", "not model and not registry") as proc:
        seen = read_until(proc, "Serving the results")
        assert seen.splitlines()[-1].startswith(f"Serving the results at http://127.0.0.1:{port}/"), seen
        assert "Verdict: PASS" in seen
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        proc.send_signal(stop_signal)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Stopped the server this suite started." in rest
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not is_listening("127.0.0.1", port)
    assert processes_mentioning(f"--port {port}") == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_signal_during_the_checks_still_stops_the_server_and_removes_temporary_files(tmp_path, stop_signal):
    port = free_port()
    with suite_process(tmp_path, port) as proc:
        seen = read_until(proc, "PASS  experiment")  # the checks are under way
        assert "PASS  experiment" in seen
        proc.send_signal(stop_signal)
        rest, _ = proc.communicate(timeout=60)
    assert list((tmp_path / "tmp").iterdir()) == []  # the suite's temporary directory is gone
    assert proc.returncode == 2, rest
    assert "the checks after the last line above did not run.\n" in rest
    assert "Verdict: ERROR (the suite could not run): " in rest
    assert "Stopped the server this suite started" in rest
    assert not is_listening("127.0.0.1", port)
    assert processes_mentioning(f"--port {port}") == []


def test_failures_quote_the_error_lines_of_the_server_the_suite_started(tmp_path):
    # The started server's artifact directory cannot be created: a file is in the way.
    server_dir = tmp_path / "project"
    server_dir.mkdir()
    (server_dir / "mlartifacts").write_text("")
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{free_port()}", "--start-server",
        "--server-dir", str(server_dir), "-k", "not model and not registry",
    )  # fmt: skip
    assert result.code == 1, result.output
    message = result.check("artifact")["message"]
    assert "The server cannot write to its artifact store." in message  # named from the log
    assert "NotADirectoryError" in message
    assert f"The server's log ({server_dir / 'mlflow-server.log'}) says:" in message
    assert "ERROR" in message.split("says:")[1]


def browser_or_skip() -> None:
    if find_browser()[0] is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser check", pytrace=False)
        pytest.skip("no Chromium on this machine")


@pytest.fixture
def short_tmp():
    """A TMPDIR of its own, with a short path: Chromium's profile there holds a Unix socket,
    whose path may not exceed 107 bytes (pytest's tmp_path is too deep)."""
    path = Path(tempfile.mkdtemp(prefix="mlfc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_cold_start_overlaps_the_helpers_with_the_servers_boot_and_leaves_nothing_running(tmp_path, short_tmp):
    browser_or_skip()
    port, tmp = free_port(), short_tmp
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server", "--server-dir", str(tmp_path),
        "--screenshots", str(tmp_path / "shots"), "-v", env={"TMPDIR": str(tmp)}, ui=True,
    )  # fmt: skip
    result.assert_all_passed()
    phases = {p["phase"]: p for p in result.report["timeline"]}
    ready = phases["server starts"]["end"]
    # Chromium, the checks' imports and the model worker's imports all happened while the server booted,
    for name in ("browser: Chromium starts", "imports"):
        assert phases[name]["end"] <= ready + 0.05, result.report["timeline"]
    assert phases["model worker: imports"]["start"] < ready
    # the browser loaded the web app as soon as the server answered, before the first check ended,
    assert phases["browser: web app loads"]["start"] <= phases["check uri"]["end"] + 0.05
    # and opened the page without the model as soon as the run was logged and the web app had
    # loaded, not after the model worker (which, on a fast machine, may finish first anyway).
    page = phases["browser: experiment page"]["start"]
    assert page <= max(phases["check artifact"]["end"], phases["browser: web app loads"]["end"]) + 0.1
    assert page < phases["check browser"]["start"]
    assert "Timeline (seconds since the process started):" in result.output
    # Nothing of it is left: the server, the worker, Playwright's driver and Chromium are gone.
    assert processes_started_under(tmp) == []
    assert not is_listening("127.0.0.1", port)
    assert list(tmp.iterdir()) == []


def test_an_interrupt_while_the_server_boots_stops_it_the_worker_and_chromium(tmp_path, short_tmp):
    browser_or_skip()
    port, tmp = free_port(), short_tmp
    with suite_process(tmp_path, port, ui=True, tmp=tmp) as proc:
        seen = read_until(proc, "Nothing listens at")
        assert "starting `mlflow server" in seen
        time.sleep(2.0)  # the server boots; Chromium and the imports are under way
        assert processes_started_under(tmp), "the suite started nothing?"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, seen + rest
    assert rest.endswith("Interrupted.\n"), rest  # before any check: no verdict to give
    assert "Traceback" not in rest
    assert processes_started_under(tmp) == []
    assert not is_listening("127.0.0.1", port)
    assert list(tmp.iterdir()) == []


def test_stopping_a_server_is_graceful_and_stops_its_whole_process_group(tmp_path):
    server = LocalServer(workdir=tmp_path).start()
    pgid = server.process.pid
    assert len(group_members(pgid)) > 1  # mlflow's CLI and the server process it started
    server.stop()
    assert group_members(pgid) == set()
    assert server.process is None
    # The server proper shut down on its own (SIGTERM), not by SIGKILL: uvicorn says so last.
    assert "Application shutdown complete" in server.log_path.read_text()
