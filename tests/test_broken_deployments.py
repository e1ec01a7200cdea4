"""Each family of checks, broken for real on a server: the suite fails that check, names it,
and says what to do. Faults are real server configurations where one exists (read-only
database, unwritable artifact store, another web service on the port) and otherwise a real
reverse proxy in front of a real server that breaks one kind of request."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

import pytest

from mlflowcheck.runtime.server import free_port
from tests.faultproxy import Fault, FaultProxy
from tests.support import ALL_CHECKS, run_suite


def run_through_proxy(server, tmp_path, *faults: Fault, args=()):
    with FaultProxy(server.url, list(faults)) as proxy:
        result = run_suite(tmp_path, "--tracking-uri", proxy.url, *args, ui="--ui" in args)
    assert proxy.hits, "the fault was never triggered"
    return result


def assert_fails(result, check: str, *phrases: str, code: int = 1):
    assert result.code == code, result.output
    assert result.check(check)["status"] == "failed", result.output
    message = result.check(check)["message"]
    for phrase in phrases:
        assert phrase in message, message
    assert "Tip: " in message
    assert f"FAIL  {check}" in result.output
    assert "Traceback" not in result.output


# --- the layers before any data moves -------------------------------------------------------


def test_nothing_listening_at_another_address_gets_the_start_command_within_5_seconds_and_starts_nothing(tmp_path):
    port = free_port()
    result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}")
    assert_fails(result, "network", code=2)
    assert result.check("network")["message"] == (
        f"Nothing is listening at 127.0.0.1:{port} (Connection refused).\n"
        f"Tip: start the server (mlflow server --host 127.0.0.1 --port {port} ...), check the address, "
        "or add --start-server to let this suite start one there."
    )
    # A refused connection is answered at once: the check's own time shows any retry with a
    # backoff (a second or more each), whatever the machine's load. The whole run is mostly
    # Python's start and the imports; a verdict that waited on MLflow's retries would take minutes.
    assert result.check("network")["duration"] < 1
    assert result.seconds < 5, f"took {result.seconds:.1f}s"
    assert result.statuses()["experiment"] == "skipped"
    assert (
        f"Verdict: ERROR (the suite could not run): 1 passed, 1 failed, {len(ALL_CHECKS) - 2} skipped" in result.output
    )
    # Only the seed's own address is started without --start-server.
    assert "starting" not in result.output
    assert result.report["server_started_by_suite"] is False


def test_run_says_not_mlflow_when_another_web_service_answers(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert_fails(result, "server", "is not an MLflow server", "GET /version answered HTTP 404", code=2)


def test_run_rejects_a_database_uri_as_tracking_uri_with_hint(tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", "sqlite:///my.db")
    assert_fails(result, "uri", "is not the address of a tracking server", "--backend-store-uri", code=2)


def test_versions_check_fails_with_upgrade_hint_when_server_is_mlflow_2(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("GET", r"^/version$", "replace:2.22.1"))
    assert_fails(result, "versions", "MLflow 2.22.1", "upgrade the server")
    # A version mismatch skips nothing by itself; what the version lacks is "not in this version".
    assert result.statuses()["experiment"] == "passed"
    assert result.statuses()["model"] == "unsupported"


def test_access_check_fails_with_credentials_hint_on_401(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("GET", r"^/api/2.0/mlflow/experiments/search", "status:401"))
    assert_fails(result, "access", "requires authentication", "MLFLOW_TRACKING_USERNAME")


# --- the tracking store ---------------------------------------------------------------------


def test_experiment_check_fails_with_hint_when_the_database_is_read_only(server, fresh_server, tmp_path):
    # A database the server can read but not write: SQLite opened in read-only mode.
    db = server.workdir / "my.db"
    ro = fresh_server(backend_store_uri=f"sqlite:///file:{db}?mode=ro&uri=true")
    result = run_suite(tmp_path, "--tracking-uri", ro.url)
    assert_fails(result, "experiment", "database is read-only", "readonly database", "writable")
    assert result.statuses()["params"] == "skipped"


def test_params_check_fails_when_param_writes_are_lost(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/runs/log-batch$", "drop", body=r'"params"'))
    assert_fails(result, "params", "params: read back {}")


def test_metrics_check_fails_when_metric_writes_are_lost(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/runs/log-batch$", "drop", body=r'"metrics"'))
    assert_fails(result, "metrics", "metric history of 'accuracy'")


def test_dataset_check_fails_when_dataset_inputs_are_lost(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/runs/log-inputs$", "drop"))
    assert_fails(result, "dataset", "number of dataset inputs: read back 0")


def test_run_check_fails_when_the_run_never_finishes(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/runs/update$", "drop"))
    assert_fails(result, "run", "run status: read back 'RUNNING'")


def test_search_check_fails_when_search_finds_nothing(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/runs/search$", "replace:{}"))
    assert_fails(result, "search", "search_runs did not find the run")


# --- the artifact store ---------------------------------------------------------------------


def test_artifact_check_fails_with_hint_when_the_artifact_store_is_not_writable(fresh_server, tmp_path):
    # The artifacts destination lies under a regular file: the server can never create it
    # (unlike file modes, this holds even for root).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = fresh_server(artifacts_destination=str(blocker / "mlartifacts"))
    result = run_suite(tmp_path, "--tracking-uri", broken.url)
    assert_fails(result, "artifact", "failed to handle an artifact", "--artifacts-destination")


def test_artifact_check_fails_when_the_download_differs_from_the_upload(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("GET", r"/artifacts/.*test_report\.txt$", "corrupt"))
    assert_fails(result, "artifact", "came back different: sha256")


# --- models and registry --------------------------------------------------------------------


def test_model_check_fails_when_the_model_file_comes_back_corrupted(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("GET", r"/artifacts/.*model\.skops$", "corrupt"))
    assert_fails(
        result, "model", "are not the ones this suite saved, so nothing was loaded", "\nmodel.skops: sha256 ",
        "Tip: something between this client and the artifact store changed the files",
        "a model from an untrusted source must not be loaded",
    )  # fmt: skip
    assert result.statuses()["registry"] == "skipped"


def test_registry_check_fails_with_server_message_when_aliases_fail(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/registered-models/alias$", "status:500"))
    assert_fails(result, "registry", "HTML error page")


# --- the UI ---------------------------------------------------------------------------------


def test_ui_check_fails_when_the_web_app_is_not_served(server, tmp_path):
    result = run_through_proxy(server, tmp_path, Fault("GET", r"^/$", "status:404"))
    assert_fails(result, "ui", "The MLflow web app is not served")


# --- the command line -----------------------------------------------------------------------


def test_bad_option_exits_2_with_hint():
    proc = subprocess.run(
        [sys.executable, "test_mlflow_local.py", "--model-format", "onnx"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "invalid choice: 'onnx'" in proc.stderr
    assert "Tip: run `test_mlflow_local.py --help`" in proc.stderr


@pytest.mark.parametrize(
    ("uri", "cause", "tip"),
    [
        ("ftp://127.0.0.1:3111", "has the scheme 'ftp'; an MLflow server is reached over http or https.",
         "use an address like http://127.0.0.1:3111."),
        ("http://127.0.0.1:99999", "cannot be parsed: Port out of range 0-65535.",
         "use an address like http://127.0.0.1:3111 (a port is 1-65535; an IPv6 host is written [::1])."),
        ("http://127.0.0.1:3111/api/2.0/mlflow", "points at an API path (/api/2.0/mlflow), not at the server's root.",
         "use http://127.0.0.1:3111 as the tracking URI."),
    ],
    ids=["scheme", "port", "api-path"],
)  # fmt: skip
def test_bad_tracking_uri_exits_2_with_hint(tmp_path, uri, cause, tip):
    result = run_suite(tmp_path, "--tracking-uri", uri)
    assert_fails(result, "uri", code=2)
    assert result.check("uri")["message"] == f"The tracking URI {uri!r} {cause}\nTip: {tip}"
    assert result.statuses()["network"] == "skipped"  # nothing was contacted
