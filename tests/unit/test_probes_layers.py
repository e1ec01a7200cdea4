"""probes.layers against canned answers: what each layer check says about a server that answers
like a broken deployment would (pytest-httpserver on 127.0.0.1 plays the deployment)."""

from __future__ import annotations

import base64
import importlib.metadata
import itertools
import sys

import pytest
import requests
from werkzeug import Response

from mlflowcheck.core import secrets
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.target import Target, parse_target
from mlflowcheck.net.http import http
from mlflowcheck.probes.layers import access, diagnose, identify, object_store_error, reach, replicas_disagree
from mlflowcheck.runtime.server import free_port

#: The Server header werkzeug (under pytest-httpserver) sends before any a canned answer adds.
WERKZEUG = f"Werkzeug/{importlib.metadata.version('werkzeug')} Python/{sys.version.split()[0]}"
SEARCH = "/api/2.0/mlflow/experiments/search"
LISTING = "/api/2.0/mlflow-artifacts/artifacts"
NGINX_404 = "<html><body><center><h1>404 Not Found</h1></center><hr><center>nginx/1.25.3</center></body></html>"
NO_BUCKET = (
    "An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The specified bucket does not exist"
)
ACCESS_TIP = (
    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account on this "
    "server, then run again; if they are right, check the proxy's configuration."
)
S3_TIP = (
    "the fix is on the server's side (clients need no object-store credentials when artifacts are proxied): "
    "NoSuchBucket, create the bucket named in --artifacts-destination or fix its name; InvalidAccessKeyId, "
    "SignatureDoesNotMatch or no credentials, fix the AWS credentials in the server's environment (and "
    "MLFLOW_S3_ENDPOINT_URL for a non-AWS store); AccessDenied, grant the server's identity s3:PutObject, "
    "s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket."
)


def raised(call, *args) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        call(*args)
    return info.value


def test_reach_says_nothing_is_listening_at_a_free_port_and_how_to_start_a_server():
    port = free_port()
    failure = raised(reach, parse_target(f"http://127.0.0.1:{port}"))
    assert failure.message == f"Nothing is listening at 127.0.0.1:{port} (Connection refused)."
    assert failure.tip == (
        f"start the server (mlflow server --host 127.0.0.1 --port {port} ...), check the address, or add "
        "--start-server to let this suite start one there."
    )
    assert failure.fatal


def test_reach_says_a_host_that_cannot_be_resolved_cannot_be_resolved():
    # A label starting with "-" is refused by the resolver library itself: no DNS query leaves the machine.
    failure = raised(reach, parse_target("http://-mlflowcheck-nowhere:5000"))
    assert failure.message == "The host '-mlflowcheck-nowhere' of http://-mlflowcheck-nowhere:5000 cannot be resolved."
    assert failure.tip == "check the spelling of the tracking URI's host."
    assert failure.fatal


def test_reach_says_a_host_with_an_empty_label_cannot_be_resolved():
    failure = raised(reach, parse_target("http://mlflow..example.com:5000"))
    assert failure.message == "The host 'mlflow..example.com' of http://mlflow..example.com:5000 cannot be resolved."


def test_reach_passes_when_the_port_accepts_connections(target):
    assert reach(target) is None


def test_identify_returns_the_version_an_mlflow_server_names(canned, target):
    canned.expect_request("/version").respond_with_data("3.17.2")
    assert identify(target) == "3.17.2"


def test_identify_says_another_app_on_the_port_is_not_mlflow(canned, target):
    canned.expect_request("/version").respond_with_data(
        '{"detail": "Not Found"}', status=404, content_type="application/json", headers={"Server": "uvicorn"}
    )
    failure = raised(identify, target)
    assert failure.message == (
        f"{target.url} is not an MLflow server: GET /version answered HTTP 404, application/json, "
        f"server header '{WERKZEUG}, uvicorn': '{{\"detail\": \"Not Found\"}}'."
    )
    assert failure.tip == (
        "check the port: another service is listening there. Point --tracking-uri at the MLflow server "
        "(the port given to `mlflow server --port`)."
    )
    assert failure.fatal


def test_identify_says_a_reverse_proxys_own_error_page_means_mlflow_is_under_a_path(canned, target):
    canned.expect_request("/version").respond_with_data(
        NGINX_404, status=404, content_type="text/html", headers={"Server": "nginx/1.25.3"}
    )
    failure = raised(identify, target)
    assert failure.message == (
        f"A reverse proxy (nginx) answers at {target.url}, with its own page for GET /version (HTTP 404, "
        f"text/html, server header '{WERKZEUG}, nginx/1.25.3': '{NGINX_404}'): MLflow is probably mounted under a "
        "path on it that the tracking URI lacks."
    )
    assert failure.tip.endswith(f"then add it to the URI, e.g. --tracking-uri {target.url}/mlflow-prefix.")
    assert failure.tip.startswith("find that path in the proxy's configuration (nginx: the `location` block")


def test_identify_says_a_sign_in_page_comes_from_a_gateway_the_client_cannot_log_in_through(canned, target):
    page = (
        "<html><head><title>Sign in - Acme SSO</title></head><body><form>"
        '<input name="user"><input type="password" name="pw"></form></body></html>'
    )
    canned.expect_request("/version").respond_with_data(page, content_type="text/html")
    failure = raised(identify, target)
    assert failure.message == (
        f"{target.url} answered GET /version with an HTML page (titled 'Sign in - Acme SSO'), not MLflow: a proxy "
        "or single sign-on gateway in front of the server answers with its own page."
    )
    assert failure.tip == (
        "MLflow's client (and this suite) cannot log in through a web form: let the API paths (/api/, /ajax-api/, "
        "/version, /mlflow-artifacts/) through to MLflow with credentials a client can send (basic auth, or a "
        "bearer token in MLFLOW_TRACKING_TOKEN)."
    )


def test_identify_returns_no_version_from_a_protected_server_and_leaves_it_to_the_access_check(canned, target):
    canned.expect_request("/version").respond_with_data("Unauthorized", status=401)
    assert identify(target) == ""


def test_identify_finds_mlflow_under_mlflow_and_says_which_tracking_uri_to_use(canned, target):
    canned.expect_request("/version").respond_with_data("Not Found", status=404)
    canned.expect_request("/mlflow/version").respond_with_data("3.17.2")
    failure = raised(identify, target)
    assert failure.message == (
        f"MLflow does not answer at {target.url} (GET /version answered HTTP 404), but it does at "
        f"{target.url}/mlflow: the server, or the proxy in front of it, serves it under /mlflow."
    )
    assert failure.tip == f"use --tracking-uri {target.url}/mlflow"


def test_identify_finds_mlflow_at_the_root_when_the_uri_has_a_path_too_many(canned, target):
    canned.expect_request("/version").respond_with_data("3.17.2")
    canned.expect_request("/mlflow/version").respond_with_data("Not Found", status=404)
    failure = raised(identify, parse_target(f"{target.url}/mlflow"))
    assert failure.message == (
        f"MLflow does not answer at {target.url}/mlflow (GET /version answered HTTP 404), but it does at "
        f"{target.url}: the server, or the proxy in front of it, serves it under the root."
    )
    assert failure.tip == f"use --tracking-uri {target.url}"


def test_access_says_no_credentials_were_given_to_a_server_that_answers_401(canned, target):
    canned.expect_request(SEARCH).respond_with_data("Unauthorized", status=401)
    failure = raised(access, target)
    assert failure.message == "The server requires authentication (HTTP 401) and no credentials were given."
    assert failure.tip == ACCESS_TIP


def test_access_sends_the_credentials_and_says_they_were_refused_by_a_server_that_answers_401(
    canned, target, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    secrets.use_credentials(None, target.url)
    canned.expect_request(SEARCH).respond_with_data("Unauthorized", status=401)
    failure = raised(access, target)
    assert failure.message == (
        "The server requires authentication (HTTP 401) and the credentials in MLFLOW_TRACKING_USERNAME/PASSWORD "
        "were refused."
    )
    assert failure.tip == ACCESS_TIP
    sent = canned.log[0][0].headers.get("Authorization")
    assert sent == "Basic " + base64.b64encode(b"alice:wrong-password").decode()


def test_access_says_a_proxy_may_drop_the_authorization_header_when_the_401_comes_through_nginx(
    canned, target, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "right-password")
    canned.expect_request(SEARCH).respond_with_data("Unauthorized", status=401, headers={"Server": "nginx/1.25.3"})
    failure = raised(access, target)
    assert failure.message == (
        "The server requires authentication (HTTP 401) and the credentials in MLFLOW_TRACKING_USERNAME/PASSWORD "
        "were refused. The reverse proxy in front of the server (nginx) may also be dropping the Authorization "
        "header on the way: then the server answers as if no credentials arrived (nginx: look for a "
        "`proxy_set_header Authorization` line)."
    )


def test_access_says_the_host_protection_refuses_the_address_and_which_allowed_hosts_to_add(canned, target):
    said = "Invalid Host header - possible DNS rebinding attack detected"
    canned.expect_request(SEARCH).respond_with_data(said, status=403)
    failure = raised(access, target)
    netloc = f"127.0.0.1:{canned.port}"
    assert failure.message == (
        f"The server's host protection rejects the address this client uses (Host: {netloc}): HTTP 403: {said}"
    )
    assert failure.tip == (
        f"add it to the server's allowed hosts (`mlflow server --allowed-hosts '{netloc},...'`), or reach the "
        "server by a name it already allows."
    )


def test_access_says_a_403_is_a_permission_the_account_lacks(canned, target, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "right-password")
    canned.expect_request(SEARCH).respond_with_json(
        {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}, status=403
    )
    failure = raised(access, target)
    assert failure.message == (
        "The server does not allow the account 'alice' to do this: GET /api/2.0/mlflow/experiments/search "
        "answered HTTP 403 (Permission denied), on an experiment."
    )
    assert failure.tip.startswith("this is a permission, not a storage problem. An admin grants it:")


def test_access_says_the_tracking_stores_database_is_locked_when_mlflow_answers_with_that_error(canned, target):
    canned.expect_request(SEARCH).respond_with_json(
        {
            "error_code": "TEMPORARILY_UNAVAILABLE",
            "message": "(sqlite3.OperationalError) database is locked\n[SQL: SELECT experiments.experiment_id "
            "FROM experiments]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)",
        },
        status=503,
    )
    failure = raised(access, target)
    assert failure.message == (
        "The tracking store's SQLite database is locked by another writer: SQLite lets one process write at a "
        "time, and the server waited 20 s. SQLite said: database is locked"
    )
    assert failure.tip == (
        "SQLite is for one server process: use --workers 1, no other program writing the file, and the file on a "
        "local disk (never NFS or SMB); for concurrent use, move to PostgreSQL or MySQL."
    )


def test_access_says_an_html_page_with_200_is_not_the_json_mlflow_sends(canned, target):
    canned.expect_request(SEARCH).respond_with_data(
        "<html><body>Welcome</body></html>", content_type="text/html", headers={"Server": "Caddy"}
    )
    failure = raised(access, target)
    assert failure.message == (
        f"GET {target.url}{SEARCH} answered HTTP 200, text/html, server header '{WERKZEUG}, Caddy': "
        "'<html><body>Welcome</body></html>', not the JSON an MLflow server sends."
    )
    assert failure.tip == "check that the tracking URI is the server's root and no proxy rewrites /api paths."
    assert not failure.fatal


def test_access_passes_when_the_api_answers_json(canned, target):
    canned.expect_request(SEARCH, query_string="max_results=1").respond_with_json({"experiments": []})
    assert access(target) is None


def test_replicas_disagree_when_a_run_is_found_by_every_other_request(canned, target):
    statuses = itertools.cycle([200, 404])
    canned.expect_request("/api/2.0/mlflow/runs/get").respond_with_handler(
        lambda _request: Response('{"run": {}}', status=next(statuses), content_type="application/json")
    )
    failure = replicas_disagree(target, "/api/2.0/mlflow/runs/get?run_id=abc", "the run abc")
    assert failure.message == (
        f"The replicas behind {target.url} do not share one tracking store: the run abc, created a moment ago, "
        "is found by some requests and not by others (6 GETs answered HTTP 200, 404, 200, 404, 200, 404)."
    )
    assert failure.tip == (
        "point every replica's --backend-store-uri at the same database (and the same --artifacts-destination); "
        "replicas with their own SQLite files behind a load balancer lose runs at random."
    )


def test_replicas_agree_when_every_request_finds_the_run(canned, target):
    canned.expect_request("/api/2.0/mlflow/runs/get").respond_with_json({"run": {}})
    assert replicas_disagree(target, "/api/2.0/mlflow/runs/get?run_id=abc", "the run abc") is None
    assert len(canned.log) == 6


def test_object_store_error_names_the_missing_bucket_the_artifact_listing_quotes(canned, target):
    canned.expect_request(LISTING, query_string="path=").respond_with_json(
        {"error_code": "INTERNAL_ERROR", "message": NO_BUCKET}, status=500
    )
    failure = object_store_error(target.url)
    assert failure.message == (
        "The server's object store refused the artifact request: NoSuchBucket. The server said: NoSuchBucket: "
        f"{NO_BUCKET}"
    )
    assert failure.tip == S3_TIP


def test_object_store_error_is_none_when_the_artifact_listing_works(canned, target):
    canned.expect_request(LISTING).respond_with_json({"files": []})
    assert object_store_error(target.url) is None


def failed_upload(target: Target) -> requests.HTTPError:
    resp = http("PUT", f"{target.url}{LISTING}/1/run/artifacts/model.pkl", data=b"model")
    with pytest.raises(requests.HTTPError) as info:
        resp.raise_for_status()
    return info.value


def test_diagnose_explains_a_bare_500_of_an_upload_by_what_the_object_store_said(canned, target):
    canned.expect_request(f"{LISTING}/1/run/artifacts/model.pkl", method="PUT").respond_with_data(
        "Internal Server Error", status=500
    )
    canned.expect_request(LISTING, query_string="path=").respond_with_json(
        {"error_code": "INTERNAL_ERROR", "message": NO_BUCKET}, status=500
    )
    failure = diagnose(failed_upload(target))
    assert failure.message == (
        "The server's object store refused the artifact request: NoSuchBucket. The server said: NoSuchBucket: "
        f"{NO_BUCKET}"
    )
    assert failure.tip == S3_TIP


def test_diagnose_says_the_artifact_store_fails_when_the_listing_does_not_say_why(canned, target):
    canned.expect_request(f"{LISTING}/1/run/artifacts/model.pkl", method="PUT").respond_with_data(
        "Internal Server Error", status=500
    )
    canned.expect_request(LISTING).respond_with_json({"files": []})
    failure = diagnose(failed_upload(target))
    assert failure.message == (
        f"The server failed to handle an artifact (PUT {LISTING}/1/run/artifacts/model.pkl answered HTTP 500: "
        "Internal Server Error)."
    )
    assert failure.tip == (
        "the server's artifact store is failing: check that its --artifacts-destination exists, is writable by "
        "the server process and has free space; the server's log names the error."
    )
