"""Any input gets an answer: arbitrary strings as the tracking URI end in a parsed target or a
clear exit-2 message from the real command line, never a traceback or a hang."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlflowcheck.core.secrets import split_credentials
from mlflowcheck.core.target import DEFAULT_TRACKING_URI
from tests.support import ALL_CHECKS, ENTRY, ROOT

# argv cannot carry NUL or lone surrogates; everything else is fair game.
ARGUMENT = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)
URLISH = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "http://", "https://", "mlflow://", "sqlite:///"]),
    st.sampled_from(["", "u:p@ss/w@", "\x1b[2J@"]),
    st.sampled_from(["127.0.0.1", "[::1", "[::1]", "localhost", "exa mple", ""]),
    ARGUMENT,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uri=st.one_of(URLISH, ARGUMENT))
def test_any_tracking_uri_gets_a_parsed_target_or_an_exit_2_message(uri, tmp_path):
    # Only the uri check runs, so no address is ever contacted; the seed's own address would
    # start a server.
    assume(split_credentials(uri.strip())[0].rstrip("/") != DEFAULT_TRACKING_URI)
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, str(ENTRY), f"--tracking-uri={uri}", "-k", "uri", "--no-ui", "--json", str(report)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert proc.returncode in (0, 2), output
    [check] = json.loads(report.read_text(encoding="utf-8"))["checks"]
    if proc.returncode == 0:
        assert check["status"] == "passed"
    else:
        assert check["status"] == "failed"
        assert "Tip: " in check["message"]
    assert "\x1b" not in output


# --- every report asked for is written, or the run says why ----------------------------------


@pytest.mark.parametrize(
    ("option", "path", "why"),
    [
        ("--json", "/no/such/dir/r.json", "no such folder: /no/such/dir"),
        ("--junitxml", "/", "this is a folder, not a file"),
        ("--json", "/sys/r.json", "cannot be written (Permission denied)"),  # root too: the kernel says no
        ("--junitxml", "{file}/junit.xml", "{file} is not a folder"),
        ("--screenshots", "{file}", "this is a file, not a folder"),
        ("--screenshots", "/sys/shots", "/sys cannot be written (Permission denied)"),
        ("--server-dir", "/no/such/x/y", "no such folder: /no/such/x"),
    ],
)
def test_an_output_path_that_cannot_be_written_stops_the_run_before_any_check(option, path, why, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    path, why = path.format(file=a_file), why.format(file=a_file)
    proc = subprocess.run(
        [sys.executable, str(ENTRY), option, path, "--no-ui"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: {option} {path}: {why}.\nTip: give {option} a "), proc.stderr
    assert proc.stdout == ""  # no check ran, no server was started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize("option", ["--json", "--junitxml"])
def test_a_report_that_cannot_be_written_at_the_end_is_an_error_that_names_the_file(option, server, tmp_path):
    # /dev/full: opens like a file, and every write fails as on a full disk (ENOSPC).
    proc = subprocess.run(
        [sys.executable, str(ENTRY), "--tracking-uri", server.url, option, "/dev/full", "-k", "uri or network",
         "--no-ui"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Verdict: PASS: 2 passed" in proc.stdout  # the checks ran; only the report is lost
    what = "JSON report" if option == "--json" else "JUnit XML"
    assert f"error: The {what} could not be written to /dev/full: No space left on device" in proc.stderr
    assert "Tip: free space on that disk or give another path" in proc.stderr


def test_version_and_python_m_name_the_suite_and_the_mlflow_client():
    import importlib.metadata

    from mlflowcheck import __version__

    client = importlib.metadata.version("mlflow")
    for argv, prog in (([str(ENTRY)], "test_mlflow_local.py"), (["-m", "mlflowcheck"], "python -m mlflowcheck")):
        proc = subprocess.run(
            [sys.executable, *argv, "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"{prog} {__version__} (MLflow client {client}, Python "), proc.stdout


def test_errors_go_to_stderr_and_results_to_stdout(tmp_path):
    # A URI without a scheme: the uri check fails (a result, on stdout). A host the suite may not
    # start a server on: an error before any check (stderr), and no request is sent to it.
    proc = subprocess.run(
        [sys.executable, str(ENTRY), "--tracking-uri", "127.0.0.1:9", "--no-ui", "--start-server"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert re.search(r"^  FAIL  uri +[\d.]+s  The tracking URI '127\.0\.0\.1:9' has no scheme\.$", proc.stdout, re.M)
    assert "Tip: did you mean http://127.0.0.1:9 ? Pass --tracking-uri http://127.0.0.1:9" in proc.stdout
    assert f"Verdict: ERROR (the suite could not run): 0 passed, 1 failed, {len(ALL_CHECKS) - 1} skipped" in proc.stdout
    assert proc.stderr == ""  # a failed check is a result, not an error
    bad = subprocess.run(
        [sys.executable, str(ENTRY), "--tracking-uri", "http://mlflow.invalid:9", "--start-server", "--no-ui"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == (
        "error: --start-server needs a local address; mlflow.invalid is not one.\n"
        "Tip: use --tracking-uri http://127.0.0.1:PORT with --start-server, or start the server on that host.\n"
    )
