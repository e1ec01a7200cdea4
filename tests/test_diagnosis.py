"""Broken deployments users really run, reproduced for real: the suite names the layer, the
cause and the fix, with exit code 1 (a check failed) or 2 (the suite could not run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlflowcheck.runtime.browser import find_browser
from tests.faultproxy import Fault
from tests.support import ADMIN_PASSWORD, run_suite
from tests.test_broken_deployments import assert_fails, run_through_proxy

#: Where .ci/run installs other MLflow versions for the old-server tests (one venv each).
OLD_SERVERS = Path(os.environ.get("MLFLOWCHECK_OLD_SERVERS", Path.home() / ".cache" / "mlflowcheck"))


def old_python(version: str) -> str:
    python = OLD_SERVERS / f"mlflow-{version}" / "bin" / "python"
    if not python.exists():
        message = f"no MLflow {version} environment at {python.parent.parent} (.ci/run makes it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(python)


def test_ui_address_pasted_as_tracking_uri_is_understood(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", f"{server.url}/#/experiments/0", "-k", "uri or network or server")
    assert result.code == 0, result.output
    assert f"UI address given; testing the server at {server.url}" in result.check("uri")["message"]


def test_client_side_artifacts_are_caught_when_the_server_does_not_serve_them(fresh_server, tmp_path):
    # The classic team-server mistake: on one machine it even looks like success.
    srv = fresh_server(extra_args=["--no-serve-artifacts", "--default-artifact-root", str(tmp_path / "server-side")])
    result = run_suite(tmp_path, "--tracking-uri", srv.url)
    assert_fails(result, "artifact", "a path on the client", "--no-serve-artifacts", "--serve-artifacts")
    assert result.statuses()["model"] == "skipped"
    assert not (tmp_path / "server-side").exists()  # the suite wrote nothing to the client's disk there


def test_basic_auth_without_credentials_says_which_variables_to_set(auth_server, tmp_path):
    srv = auth_server
    result = run_suite(tmp_path, "--tracking-uri", srv.url)
    assert_fails(
        result, "access", "requires authentication (HTTP 401)", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
    )
    assert result.statuses()["experiment"] == "skipped"


def test_basic_auth_with_credentials_passes_and_never_prints_them(auth_server, tmp_path):
    srv, password = auth_server, ADMIN_PASSWORD
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": password}
    result = run_suite(tmp_path, "--tracking-uri", srv.url, env=env)
    result.assert_all_passed()
    assert password not in result.output
    assert password not in str(result.report)


def test_wrong_credentials_are_reported_as_refused(auth_server, tmp_path):
    srv = auth_server
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "wrong-password"}
    result = run_suite(tmp_path, "--tracking-uri", srv.url, env=env)
    assert_fails(result, "access", "were refused")
    assert "wrong-password" not in result.output


def test_host_protection_is_named_with_the_allowed_hosts_fix(fresh_server, tmp_path):
    srv = fresh_server(extra_args=["--allowed-hosts", "mlflow.example.com"])
    result = run_suite(tmp_path, "--tracking-uri", srv.url)
    assert_fails(result, "access", "host protection rejects", f"--allowed-hosts '127.0.0.1:{srv.port}")


def test_timeout_bounds_the_run_and_names_the_check_that_was_running(server, tmp_path):
    result = run_through_proxy(
        server, tmp_path, Fault("POST", r"/runs/log-batch$", "delay:120", body=r'"params"'), args=["--timeout", "12"]
    )
    assert_fails(result, "params", "--timeout of 12s expired during this check")
    assert result.seconds < 25
    assert "Verdict: FAIL" in result.output
    assert "(the --timeout of 12s expired during 'params')" in result.output
    assert result.statuses()["metrics"] == "skipped"


def test_seed_era_server_mlflow_3_1_4_passes(fresh_server, tmp_path):
    srv = fresh_server(python=old_python("3.1.4"))
    # Its web app differs from 3.17's: the browser check runs here too, where a browser is.
    result = run_suite(tmp_path, "--tracking-uri", srv.url, ui=find_browser()[0] is not None)
    result.assert_all_passed()
    assert "minor skew: server 3.1.4, client 3.17.2" in result.check("versions")["message"]


def test_https_to_a_plain_http_server_is_told_which_scheme_works(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url.replace("http://", "https://"))
    assert_fails(result, "server", "speaks plain HTTP, not HTTPS", f"use --tracking-uri {server.url}", code=2)
