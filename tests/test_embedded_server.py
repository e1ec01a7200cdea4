"""The suite starts the light seed server itself when asked, and leaves nothing running."""

from __future__ import annotations

import os
from pathlib import Path

from mlflowcheck.server import free_port, is_listening
from tests.conftest import ALL_CHECKS, run_suite


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
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server", "--server-dir", str(server_dir)
    )
    assert result.code == 0, result.output
    assert result.statuses() == dict.fromkeys(ALL_CHECKS, "passed")
    assert f"Nothing listens at http://127.0.0.1:{port}: starting `mlflow server" in result.output
    assert "Stopped the server this suite started" in result.output
    # The seed's layout, made by running it: the database and the artifact directory.
    assert (server_dir / "my.db").is_file()
    assert (server_dir / "mlartifacts" / result.report["experiment_id"]).is_dir()
    # Nothing left behind: the port is free and no process of that server survives.
    assert not is_listening("127.0.0.1", port)
    assert processes_mentioning(f"--port {port}") == []


def test_non_default_address_with_nothing_listening_is_reported_not_started(tmp_path):
    port = free_port()
    result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.code == 2
    assert "starting" not in result.output
    assert processes_mentioning(f"--port {port}") == []


def test_start_server_reports_the_servers_own_error_when_it_cannot_start(tmp_path):
    port = free_port()
    result = run_suite(
        tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server",
        "--server-dir", str(tmp_path), "--backend-store-uri", "nosuchdb://x",
    )  # fmt: skip
    assert result.code == 2, result.output
    assert "The local mlflow server did not start" in result.output
    assert "Tip: " in result.output
    assert processes_mentioning(f"--port {port}") == []


def test_start_server_refuses_a_non_local_address(tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", "http://192.0.2.1:5000", "--start-server")
    assert result.code == 2
    assert "--start-server needs a local address" in result.output
