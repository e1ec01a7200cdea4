"""An auth layer in front of MLflow, for real: mlflow-oidc-auth 11.0.2 (its own Python 3.12
venv, no identity provider: service accounts with access tokens used as basic-auth passwords).
A token account passes everything; a second account writing to the first one's registered model
gets the permission verdict (never "the artifact store"); no token gets the auth verdict (never
a UI problem)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support import run_suite, start_server
from tests.test_diagnosis import OLD_SERVERS

OIDC_VENV = OLD_SERVERS / "oidc-auth-11.0.2"

#: Run in the plugin's venv: two service accounts and a day's access token each, written to the
#: plugin's own store (its REST API issues tokens only after an interactive sign-in).
BOOTSTRAP = r"""
import json, sys
from datetime import datetime, timedelta, timezone
from mlflow_oidc_auth.store import store
tokens = {}
for name in sys.argv[1:]:
    if not store.has_user(name):
        store.create_user(username=name, display_name=name, is_admin=False, is_service_account=True,
                          written_by="manual", service_account_source="internal")
    _, token, _ = store.replace_user_token(name, "ci", datetime.now(timezone.utc) + timedelta(days=1),
                                           created_by="tests")
    tokens[name] = token
print(json.dumps(tokens))
"""


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    python = OIDC_VENV / "bin" / "python"
    if not python.exists():
        message = f"no mlflow-oidc-auth environment at {OIDC_VENV} (.ci/run makes it, with Python 3.12)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("oidc")
    env = {
        "OIDC_USERS_DB_URI": f"sqlite:///{workdir / 'auth.db'}",
        "SECRET_KEY": "test-only-secret-key",
        # The plugin reads a .env in its working directory: the test's own directory has none.
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "MLFLOW_"))}
    boot = subprocess.run(
        [str(python), "-c", BOOTSTRAP, "alice", "bob"],
        cwd=workdir, env={**clean, **env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert boot.returncode == 0, boot.stderr
    tokens = json.loads(boot.stdout.strip().splitlines()[-1])
    # One worker: the plugin caches permission decisions per process.
    srv = start_server(workdir, python=str(python), extra_args=["--app-name", "oidc-auth"], env=env)
    yield srv, tokens
    srv.stop()


def as_account(name: str, tokens: dict) -> dict:
    return {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": tokens[name]}


@pytest.fixture(scope="module")
def alice_run(oidc, tmp_path_factory):
    srv, tokens = oidc
    return run_suite(tmp_path_factory.mktemp("alice"), "--tracking-uri", srv.url, env=as_account("alice", tokens))


def test_a_token_account_passes_every_check_and_the_layer_is_named(alice_run, oidc):
    alice_run.assert_all_passed()
    server = alice_run.report["server"]
    assert (server["product"], server["version"], server["auth"]) == ("MLflow", "3.17.2", "oidc-auth")
    assert "PASS  server" in alice_run.output
    assert "MLflow 3.17.2, behind mlflow-oidc-auth" in alice_run.output
    assert {g["status"] for g in alice_run.report["matrix"]["groups"]} == {"PASS"}
    assert oidc[1]["alice"] not in alice_run.output  # the token is a secret like any password


def test_a_second_account_on_the_first_ones_model_gets_the_permission_verdict(alice_run, oidc, tmp_path):
    srv, tokens = oidc
    assert alice_run.code == 0  # alice created mlflow-local-test-model and owns it
    result = run_suite(tmp_path, "--tracking-uri", srv.url, env=as_account("bob", tokens))
    assert result.code == 1, result.output
    statuses = result.statuses()
    # bob's own experiment, run and artifacts work: the refusal is about alice's model alone.
    assert statuses["artifact"] == statuses["model"] == statuses["final_report"] == "passed", result.output
    assert statuses["registry"] == "failed"
    message = result.check("registry")["message"]
    assert "The server does not allow the account 'bob' to do this:" in message
    assert "answered HTTP 403 Permission denied, on the registered model (--registered-model)" in message
    assert "this is a permission, not a storage problem. An admin grants it: with mlflow-oidc-auth" in message
    assert "/api/2.0/mlflow/permissions/users/bob/registered-models/" in message
    assert "artifact store" not in message
    assert "--artifacts-destination" not in message
    assert tokens["bob"] not in result.output


def test_no_token_is_the_auth_verdict_on_the_api_and_on_the_ui(oidc, tmp_path):
    srv, _ = oidc
    result = run_suite(tmp_path, "--tracking-uri", srv.url)
    assert result.code == 1, result.output
    assert result.report["server"]["auth"] == "oidc-auth"
    access = result.check("access")["message"]
    assert "answered HTTP 401: mlflow-oidc-auth requires authentication and no credentials were given" in access
    assert "Tip: set an access token from mlflow-oidc-auth" in access
    ui = result.check("ui")["message"]
    assert "GET / answered HTTP 401: mlflow-oidc-auth requires authentication" in ui
    assert "--artifacts-only" not in result.output
    assert result.statuses()["experiment"] == "skipped"
