"""An exception or an answer, turned into a cause and a Tip (explain.errors). The exceptions are
MLflow's own, made by MLflow's own code from a hand-built answer (rest_utils.verify_rest_response),
so each test sees the text a real client would."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.utils.rest_utils import verify_rest_response

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.explain.errors import (
    answered_by,
    artifact_failure,
    explain,
    explain_http_error,
    known_server_error,
    object_store_said,
    permission_denied,
    proxy_gave_up,
    status_in,
)

ENDPOINT = "/api/2.0/mlflow/runs/create"
ARTIFACT_URL = "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a.txt"

PERMISSION_TIP = (
    "this is a permission, not a storage problem. An admin grants it: with MLflow's basic-auth app, EDIT on the "
    "registered model (`mlflow.server.get_app_client('basic-auth', tracking_uri=URL)"
    ".create_registered_model_permission(NAME, USER, 'EDIT')`, or POST "
    "/api/2.0/mlflow/registered-models/permissions/create) or on the experiment (create_experiment_permission); "
    "or use --registered-model with a model this account may edit."
)
STORAGE_TIP = (
    "make the server's --artifacts-destination a directory the server process can write, then restart `mlflow server`."
)
DISK_TIP = "free space where the server keeps its artifacts and database."
OBJECT_STORE_TIP = (
    "the fix is on the server's side (clients need no object-store credentials when artifacts are proxied): "
    "NoSuchBucket, create the bucket named in --artifacts-destination or fix its name; InvalidAccessKeyId, "
    "SignatureDoesNotMatch or no credentials, fix the AWS credentials in the server's environment (and "
    "MLFLOW_S3_ENDPOINT_URL for a non-AWS store); AccessDenied, grant the server's identity s3:PutObject, "
    "s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket."
)
LOG_TIP = "look in the server's log for the request that failed."
GATEWAY_TIP = "look at the server processes and their log; the proxy's error log names the upstream it tried."
NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>"
    "\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)


def client_error(resp: requests.Response) -> MlflowException:
    """What MLflow's client raises for this answer to a REST call."""
    with pytest.raises(MlflowException) as info:
        verify_rest_response(resp, ENDPOINT)
    return info.value


# --- the permission (HTTP 403) -----------------------------------------------------------------


def test_permission_denied_is_explained_as_a_permission_not_as_storage(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "irrelevant-pw")
    failure = explain(RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied"}))
    assert "does not allow the account 'bob'" in failure.message
    assert "HTTP 403" in failure.message
    assert "create_registered_model_permission" in failure.tip
    assert "artifact store" not in str(failure)


def test_a_403_from_the_auth_app_through_the_client_is_a_permission_of_the_account(monkeypatch, answer):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "irrelevant-pw")
    exc = client_error(answer(403, '{"error_code": "PERMISSION_DENIED", "message": "Permission denied."}'))
    assert isinstance(exc, RestException)
    failure = explain(exc)
    assert failure.message == (
        "The server does not allow the account 'bob' to do this: the request answered HTTP 403 "
        "(PERMISSION_DENIED: Permission denied.)."
    )
    assert failure.tip == PERMISSION_TIP


def test_a_403_on_an_artifact_through_the_client_is_a_permission_of_an_anonymous_client(answer):
    exc = client_error(answer(403, "Permission denied", ctype="text/plain"))
    failure = explain(exc)
    assert failure.message == (
        "The server does not allow an anonymous client to do this: an artifact request answered HTTP 403 "
        "(Permission denied)."
    )
    assert failure.tip == PERMISSION_TIP


@pytest.mark.parametrize(
    ("environment", "who"),
    [
        ({}, "an anonymous client"),
        ({"MLFLOW_TRACKING_TOKEN": "tok-123456"}, "these credentials"),
        ({"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pw-123456"}, "the account 'alice'"),
    ],
)
def test_a_permission_names_who_was_refused_and_never_the_secret(monkeypatch, environment, who):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    failure = permission_denied("PUT /x", "Forbidden")
    assert failure.message == f"The server does not allow {who} to do this: PUT /x answered HTTP 403 (Forbidden)."
    assert failure.tip == PERMISSION_TIP
    assert "123456" not in str(failure)


def test_a_storage_error_on_a_path_with_403_in_it_is_still_a_storage_error(answer):
    exc = client_error(answer(500, "[Errno 13] Permission denied: '/srv/mlartifacts/403/0a1b'", ctype="text/plain"))
    failure = explain(exc)
    assert failure.message.startswith("The server cannot write to its artifact store.")
    assert failure.tip == STORAGE_TIP


# --- the server's own words (storage, disk, object store, database) -----------------------------


def test_server_errors_that_name_a_storage_cause_are_still_explained_as_storage():
    failure = explain(MlflowException("[Errno 13] Permission denied: '/srv/mlartifacts/1'"))
    assert "cannot write to its artifact store" in failure.message


def test_a_full_disk_in_mlflows_json_error_is_quoted_with_the_fix(answer):
    exc = client_error(
        answer(500, '{"error_code": "INTERNAL_ERROR", "message": "[Errno 28] No space left on device"}', ctype="json")
    )
    failure = explain(exc)
    assert (
        failure.message
        == "The server's disk is full. The server said: INTERNAL_ERROR: [Errno 28] No space left on device"
    )
    assert failure.tip == DISK_TIP


@pytest.mark.parametrize(
    "said",
    [
        "[Errno 13] Permission denied: '/srv/mlartifacts/1'",
        "[Errno 30] Read-only file system: '/srv/mlartifacts'",
        "[Errno 20] Not a directory: '/srv/mlartifacts/x'",
    ],
)
def test_an_artifact_store_the_server_cannot_write_is_explained_with_its_own_words(said):
    failure = known_server_error(said)
    assert failure.message == f"The server cannot write to its artifact store. The server said: {said}"
    assert failure.tip == STORAGE_TIP


@pytest.mark.parametrize(
    ("said", "code"),
    [
        ("An error occurred (NoSuchBucket) when calling the PutObject operation", "NoSuchBucket"),
        ("botocore.exceptions.NoCredentialsError: Unable to locate credentials", "NoCredentialsError"),
        ("(SignatureDoesNotMatch) when calling the ListObjectsV2 operation", "SignatureDoesNotMatch"),
        ("An error occurred (AccessDenied) when calling the GetObject operation: Access Denied", "AccessDenied"),
        ("(ExpiredToken) The provided token has expired.", "ExpiredToken"),
    ],
)
def test_an_object_store_refusal_names_the_stores_error_code(said, code):
    failure = known_server_error(said)
    assert failure.message == f"The server's object store refused the artifact request: {code}. The server said: {said}"
    assert failure.tip == OBJECT_STORE_TIP


def test_a_known_error_may_be_explained_without_quoting_the_server():
    failure = known_server_error("[Errno 28] No space left on device", quote=False)
    assert failure.message == "The server's disk is full."
    assert failure.tip == DISK_TIP


def test_a_message_nobody_knows_is_not_a_known_server_error():
    assert known_server_error("Run 'abc' not found") is None
    assert known_server_error("") is None


# --- what the object store said, asked directly -------------------------------------------------


@pytest.mark.parametrize(
    ("said", "code"),
    [
        ("An error occurred (NoSuchBucket): The specified bucket does not exist", "NoSuchBucket"),
        ("The AWS Access Key Id you provided does not exist in our records.", "InvalidAccessKeyId"),
        ("The request signature we calculated does not match the signature you provided.", "SignatureDoesNotMatch"),
        ("access denied", "AccessDenied"),
        ("Unable to locate credentials", "NoCredentialsError"),
        ("The provided token has expired.", "ExpiredToken"),
    ],
)
def test_an_object_stores_message_is_turned_into_its_error_code(said, code):
    failure = object_store_said(said)
    assert failure.message.startswith(f"The server's object store refused the artifact request: {code}.")
    assert failure.message.endswith(f"The server said: {code}: {said}")
    assert failure.tip == OBJECT_STORE_TIP


def test_an_os_error_from_the_store_is_explained_and_other_words_are_not():
    failure = object_store_said("[Errno 13] Permission denied: '/srv'")
    assert (
        failure.message
        == "The server cannot write to its artifact store. The server said: [Errno 13] Permission denied: '/srv'"
    )
    assert failure.tip == STORAGE_TIP
    assert object_store_said("[Errno 2] No such file or directory") is None
    assert object_store_said("something else") is None
    assert object_store_said("") is None


# --- a reverse proxy that gave up ---------------------------------------------------------------


def test_a_504_page_from_nginx_is_the_proxys_read_timeout(answer):
    exc = client_error(answer(504, NGINX_PAGE.format(status=504, reason="Gateway Time-out")))
    failure = explain(exc)
    assert failure.message == (
        "The reverse proxy in front of the server (nginx) gave up waiting for the server (HTTP 504 Gateway "
        "Time-out): the server took longer than the proxy's read timeout. The server itself may still have done "
        "the work."
    )
    assert failure.tip == (
        "raise the proxy's timeout for MLflow (nginx: `proxy_read_timeout 300s;`, with proxy_send_timeout to "
        "match), then find out why the server was that slow (its log, its database)."
    )


@pytest.mark.parametrize(("status", "reason"), [(502, "Bad Gateway"), (503, "Service Temporarily Unavailable")])
def test_a_502_or_503_page_from_nginx_is_a_server_the_proxy_could_not_reach(answer, status, reason):
    failure = explain(client_error(answer(status, NGINX_PAGE.format(status=status, reason=reason))))
    assert failure.message == (
        f"The reverse proxy in front of the server (nginx) could not get an answer from the server (HTTP {status}): "
        "the server is down, restarting, overloaded, or closed the connection."
    )
    assert failure.tip == GATEWAY_TIP


def test_proxy_gave_up_only_for_gateway_statuses_written_by_a_named_proxy():
    assert proxy_gave_up(None, "nginx") is None
    assert proxy_gave_up(500, "<center>nginx</center>") is None
    assert proxy_gave_up(502, "Bad Gateway") is None, "no proxy named: the server's own 502"
    failure = proxy_gave_up(503, "server: HAProxy")
    assert failure.message.startswith("The reverse proxy in front of the server (HAProxy) could not get an answer")
    assert failure.tip == GATEWAY_TIP


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("API request to endpoint /x failed with error code 413 != 200. Response body: ''", 413),
        ("HTTP 502", 502),
        ("Caused by ResponseError('too many 503 error responses')", 503),
        ("413 Request Entity Too Large", 413),
        ("error code 500 != 200 ... HTTP 404", 500),  # the first one named
        ("Run 'abc' not found", None),
    ],
)
def test_the_status_a_client_error_names_is_found_in_its_text(text, status):
    assert status_in(text) == status


@pytest.mark.parametrize(
    ("text", "proxy"),
    [
        ("<hr><center>nginx/1.22.1</center>", "nginx"),
        ("NGINX", "nginx"),
        ("cloudflare-nginx", "nginx"),
        ("Apache/2.4.62 (Debian) Server at h Port 80", "Apache"),
        ("server: envoy", "envoy"),
        ("traefik", "Traefik"),
        ("HAProxy", "HAProxy"),
        ("cloudflare", "cloudflare"),
        ("Caddy", "Caddy"),
        ("AWS ELB", "AWS ELB"),
        ("kong", "Kong"),
    ],
)
def test_the_proxy_named_in_an_error_page_is_the_one_that_answered(text, proxy):
    assert answered_by(text) == f"The reverse proxy in front of the server ({proxy})"


@pytest.mark.parametrize("text", ["plain words", "nginxy", "", "apachee"])
def test_a_page_that_names_no_proxy_is_the_servers_or_an_unknown_proxys(text):
    assert answered_by(text) == "The server (or a proxy in front of it)"


# --- the other client errors --------------------------------------------------------------------


def test_an_unauthenticated_request_is_told_which_variables_to_set(answer):
    exc = client_error(answer(401, '{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}'))
    failure = explain(exc)
    assert failure.message == (
        "The server refused the request (UNAUTHENTICATED): UNAUTHENTICATED: You are not authenticated."
    )
    assert failure.tip == "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."


def test_another_refusal_quotes_mlflows_error_code_and_message(answer):
    exc = client_error(
        answer(400, '{"error_code": "INVALID_PARAMETER_VALUE", "message": "Missing value for parameter \'name\'"}')
    )
    failure = explain(exc)
    assert failure.message == (
        "The server refused the request (INVALID_PARAMETER_VALUE): INVALID_PARAMETER_VALUE: "
        "Missing value for parameter 'name'"
    )
    assert failure.tip == LOG_TIP


def test_a_client_that_ran_out_of_retries_on_5xx_says_the_server_kept_failing():
    text = (
        "API request to http://h:1/api/2.0/mlflow/runs/create failed with exception HTTPConnectionPool(host='h', "
        "port=1): Max retries exceeded with url: /api/2.0/mlflow/runs/create (Caused by ResponseError('too many "
        "500 error responses'))"
    )
    failure = explain(MlflowException(text))
    assert failure.message == f"The server kept answering with errors: {text}"
    assert failure.tip == "the server failed internally; its log says why."


def test_an_html_error_page_of_the_server_is_quoted_as_words_not_markup(answer):
    page = "<!doctype html><html><title>500 Internal Server Error</title><p>The server encountered an error</p></html>"
    failure = explain(client_error(answer(500, page)))
    assert failure.message == (
        f"The server answered with an HTML error page: API request to endpoint {ENDPOINT} failed with error code "
        "500 != 200. Response body: ' 500 Internal Server Error The server encountered an error '"
    )
    assert failure.tip == "the server (or a proxy in front of it) failed; look in the server's log."


def test_any_other_mlflow_error_is_quoted_with_the_log_tip():
    failure = explain(MlflowException("Run 'abc' not found\nsecond line\nthird\nfourth"))
    assert failure.message == "Run 'abc' not found second line third"
    assert failure.tip == LOG_TIP


def test_a_timeout_asks_whether_the_server_is_overloaded_or_hung():
    failure = explain(requests.Timeout("Read timed out. (read timeout=120)"))
    assert failure.message == "The server did not answer in time: Read timed out. (read timeout=120)"
    assert failure.tip == "is it overloaded or hung? Look at its log."


def test_a_lost_connection_says_the_server_stopped_answering():
    failure = explain(requests.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))"))
    assert (
        failure.message == "The connection to the server failed: ('Connection aborted.', RemoteDisconnected('closed'))"
    )
    assert failure.tip == "the server stopped answering during the run; check that it is still up."


def test_an_unexpected_exception_is_named_by_its_type_with_the_verbose_tip():
    failure = explain(ValueError("bad\nthing\nhere\nfour"))
    assert failure.message == "ValueError: bad thing here"
    assert failure.tip == "this is unexpected; run again with --verbose to see the traceback."


def test_a_check_failure_is_its_own_explanation():
    given = CheckFailed("already explained", "nothing to add")
    assert explain(given) is given


def test_an_http_error_with_an_answer_is_explained_from_the_answer(answer):
    resp = answer(500, "", url=ARTIFACT_URL, method="PUT")
    failure = explain(requests.HTTPError("500 Server Error", response=resp))
    assert failure.message == (
        "The server failed to handle an artifact (PUT /api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a.txt "
        "answered HTTP 500 with an HTML error page (look in the server's log))."
    )


# --- requests the suite made itself --------------------------------------------------------------


def test_a_403_on_a_direct_request_is_a_permission_naming_the_request(answer):
    failure = explain_http_error(answer(403, "Forbidden", ctype="text/plain", url=ARTIFACT_URL, method="PUT"))
    assert failure.message == (
        "The server does not allow an anonymous client to do this: PUT "
        "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a.txt answered HTTP 403: 'Forbidden', on the run's "
        "artifacts."
    )
    assert failure.tip == PERMISSION_TIP


def test_a_403_for_a_foreign_host_header_is_not_taken_for_a_permission(answer):
    failure = explain_http_error(
        answer(403, "Invalid Host header - possible DNS rebinding attack detected", ctype=None)
    )
    assert failure.message == (
        f"POST {ENDPOINT} answered HTTP 403: Invalid Host header - possible DNS rebinding attack detected."
    )
    assert failure.tip == "look in the server's log for this request."


def test_a_direct_request_that_hit_a_known_server_error_gets_that_explanation(answer):
    body = '{"message": "[Errno 30] Read-only file system: \'/srv/a\'"}'
    failure = explain_http_error(answer(500, body, ctype="application/json", url=ARTIFACT_URL, method="PUT"))
    assert (
        failure.message
        == "The server cannot write to its artifact store. The server said: [Errno 30] Read-only file system: '/srv/a'"
    )
    assert failure.tip == STORAGE_TIP


def test_a_bare_5xx_of_the_artifact_proxy_is_the_artifact_store_failing(answer):
    resp = answer(502, "", url=ARTIFACT_URL, method="GET")
    assert artifact_failure(resp)
    failure = explain_http_error(resp)
    assert failure.message == (
        "The server failed to handle an artifact (GET /api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a.txt "
        "answered HTTP 502 with an HTML error page (look in the server's log))."
    )
    assert failure.tip == (
        "the server's artifact store is failing: check that its --artifacts-destination exists, is writable by the "
        "server process and has free space; the server's log names the error."
    )


def test_what_the_object_store_said_replaces_the_bare_5xx_when_a_probe_asked_it(answer):
    store = CheckFailed("The server's object store refused the artifact request: NoSuchBucket.", "create it")
    assert explain_http_error(answer(500, "", url=ARTIFACT_URL, method="PUT"), store=store) is store


def test_an_artifact_failure_is_a_5xx_of_the_artifact_proxy_the_server_did_not_explain(answer):
    assert not artifact_failure(answer(500, "", url="http://h:1/api/2.0/mlflow/runs/create"))
    assert not artifact_failure(answer(404, "", url=ARTIFACT_URL))
    assert not artifact_failure(answer(500, '{"message": "[Errno 28] No space left"}', url=ARTIFACT_URL))


def test_any_other_direct_answer_is_quoted_with_its_request(answer):
    failure = explain_http_error(answer(404, "nope", ctype="text/plain", url="http://h:1/x", method="GET"))
    assert failure.message == "GET /x answered HTTP 404: nope."
    assert failure.tip == "look in the server's log for this request."
