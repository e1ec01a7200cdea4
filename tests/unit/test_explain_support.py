"""Missing, not broken: which answers say an endpoint does not exist, and what the message says."""

from __future__ import annotations

import pytest

from mlflowcheck.core.errors import Unsupported
from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.explain.errors import explain, refusal
from mlflowcheck.explain.support import answer_of, is_unsupported, not_in_version, older_than, said, unsupported

pytestmark = pytest.mark.unit

FASTTRACKML = Implementation(product="FastTrackML", version="0.6.0")
MLFLOW_314 = Implementation(version="3.1.4")
NOT_FOUND = '{"message":"Not found","error_code":"ENDPOINT_NOT_FOUND"}'
JSON = {"content-type": "application/json"}


def test_endpoint_not_found_501_405_and_an_html_404_of_an_api_path_say_the_endpoint_is_missing():
    assert is_unsupported(Answer("POST /api/2.0/mlflow/runs/log-inputs", 404, JSON, NOT_FOUND))
    assert is_unsupported(Answer("GET /api/3.0/mlflow/server-info", 404, {"content-type": "text/plain"}, "Cannot GET"))
    assert is_unsupported(Answer("GET /api/2.0/mlflow/x", 404, {"content-type": "text/html"}, "<title>404</title>"))
    assert is_unsupported(Answer("POST /api/2.0/mlflow/x", 501, {}, ""))
    assert is_unsupported(Answer("POST /ajax-api/2.0/mlflow/x", 405, {}, ""))


def test_a_404_about_data_or_outside_the_api_is_not_a_missing_feature():
    gone = '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run \'x\' not found"}'
    assert not is_unsupported(Answer("GET /api/2.0/mlflow/runs/get", 404, JSON, gone))
    assert not is_unsupported(Answer("GET /x", 404, {"content-type": "text/plain"}, "nope"))
    # A missing artifact is lost data: never reported as an unsupported feature.
    missing = Answer("GET /api/2.0/mlflow-artifacts/artifacts/1/a.txt", 404, {"content-type": "text/html"}, "")
    assert not is_unsupported(missing)
    assert not is_unsupported(Answer("POST /api/2.0/mlflow/runs/create", 500, JSON, '{"message": "boom"}'))


def test_fasttrackmls_artifact_500_that_says_endpoint_not_found_is_a_missing_feature():
    answer = Answer("PUT /api/2.0/mlflow-artifacts/artifacts/a", 500, {}, "ENDPOINT_NOT_FOUND: Not found")
    assert is_unsupported(answer)


def test_the_message_names_the_endpoint_and_the_product_and_the_tip_says_missing_not_broken():
    failure = unsupported(Answer("POST /api/2.0/mlflow/runs/log-inputs", 404, JSON, NOT_FOUND), FASTTRACKML)
    assert isinstance(failure, Unsupported)
    assert failure.endpoint == "POST /api/2.0/mlflow/runs/log-inputs"
    assert failure.message == (
        "FastTrackML 0.6.0 does not implement POST /api/2.0/mlflow/runs/log-inputs. "
        "It answered HTTP 404 ENDPOINT_NOT_FOUND Not found."
    )
    assert failure.tip.startswith("FastTrackML implements only part of MLflow's REST API; this feature is missing")
    assert "look in the server's log" not in str(failure)


def test_mlflows_own_server_without_an_endpoint_is_told_to_upgrade_never_below_3_1_4():
    failure = unsupported(Answer("GET /api/2.0/mlflow/x", 404, {"content-type": "text/html"}, "<p>nf</p>"), MLFLOW_314)
    assert failure.message.startswith("MLflow 3.1.4 does not implement GET /api/2.0/mlflow/x.")
    assert "upgrade it to a recent 3.x; this suite supports 3.1.4 and newer" in failure.tip
    assert "a proxy in front of it does not pass this path on" in failure.tip


def test_a_client_error_endpoint_not_found_is_unsupported_even_when_no_request_was_recorded():
    from mlflow.exceptions import RestException

    failure = explain(RestException({"error_code": "ENDPOINT_NOT_FOUND", "message": "Not found"}))
    assert isinstance(failure, Unsupported)
    assert (
        failure.message == "The server does not implement an endpoint this check needs (the request was not recorded)."
    )


def test_the_recorded_refusal_names_the_endpoint_of_a_client_error():
    from mlflow.exceptions import RestException

    exc = RestException({"error_code": "ENDPOINT_NOT_FOUND", "message": "Not found"})
    refused = Answer("POST /api/2.0/mlflow/logged-models", 404, JSON, NOT_FOUND)
    failure = explain(exc, refused, FASTTRACKML)
    assert failure.message.startswith("FastTrackML 0.6.0 does not implement POST /api/2.0/mlflow/logged-models.")


def test_a_403_without_an_error_code_is_a_permission_never_the_artifact_store(monkeypatch):
    from mlflow.exceptions import RestException

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "svc-b")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "token-b")
    # mlflow-oidc-auth's answer: no MLflow error code, the words a storage error also has.
    exc = RestException({"message": "Permission denied"})
    refused = Answer("POST /api/2.0/mlflow/registered-models/set-tag", 403, JSON, '{"message": "Permission denied"}')
    failure = explain(exc, refused, Implementation(version="3.17.2", auth="oidc-auth"))
    assert failure.message == (
        "The server does not allow the account 'svc-b' to do this: POST /api/2.0/mlflow/registered-models/set-tag "
        "answered HTTP 403 Permission denied, on the registered model (--registered-model), which this account may "
        "not edit."
    )
    assert "artifact store" not in str(failure)
    assert "--artifacts-destination" not in str(failure)
    assert failure.tip.startswith(
        "this is a permission, not a storage problem. An admin grants it: with mlflow-oidc-auth"
    )


def test_a_401_is_authentication_with_the_auth_layers_own_fix():
    answer = Answer("GET /api/2.0/mlflow/experiments/search", 401, {}, "Unauthorized")
    failure = refusal(answer, Implementation(version="", auth="oidc-auth"))
    assert failure.message == (
        "GET /api/2.0/mlflow/experiments/search answered HTTP 401: mlflow-oidc-auth requires authentication and "
        "no credentials were given."
    )
    assert "access token from mlflow-oidc-auth" in failure.tip


def test_said_is_short_for_json_and_for_pages():
    assert said(Answer("GET /x", 404, JSON, NOT_FOUND)) == "HTTP 404 ENDPOINT_NOT_FOUND Not found"
    assert said(Answer("GET /x", 404, {}, "<html><b>gone</b></html>")) == "HTTP 404: 'gone'"
    assert said(Answer("GET /x", 404, {}, "")) == "HTTP 404"


def test_an_answer_keeps_the_request_the_status_and_the_headers_that_tell_who_answered(answer):
    resp = answer(404, NOT_FOUND, ctype="application/json", server="FastTrackML/0.6.0", method="POST")
    resp.headers["x-other"] = "dropped"
    kept = answer_of(resp)
    assert kept == Answer(
        "POST /api/2.0/mlflow/runs/create",
        404,
        {"server": "FastTrackML/0.6.0", "content-type": "application/json"},
        NOT_FOUND,
    )


@pytest.mark.parametrize(
    ("version", "since", "older"),
    [("3.1.4", "3.10", True), ("3.10.0", "3.10", False), ("3.17.2", "3.10", False), ("2.22.5", "3.0", True),
     ("3.10.0rc1", "3.10", False), ("", "3.10", False), ("3.1.4", "", False)],
)  # fmt: skip
def test_older_than_compares_release_numbers_not_strings(version, since, older):
    assert older_than(version, since) is older


def test_not_in_this_version_names_both_versions():
    failure = not_in_version("server_info", "3.10", MLFLOW_314)
    assert failure.message == (
        "not in this version: the server_info check needs MLflow 3.10 or newer, the server runs MLflow 3.1.4."
    )
    assert failure.tip == "upgrade the server to MLflow 3.10 or newer to have it."


def test_not_in_this_version_never_advises_a_server_older_than_3_1_4():
    failure = not_in_version("dataset", "2.4", Implementation(version="2.3.0"))
    assert failure.tip == "upgrade the server to MLflow 3.1.4 or newer to have it."


def test_a_request_that_got_no_answer_is_not_blamed_on_the_refusal_before_it():
    from mlflow.exceptions import MlflowException

    earlier = Answer("GET /api/3.0/mlflow/server-info", 404, {"content-type": "text/html"}, "<p>nf</p>")
    exc = MlflowException("API request to http://h:1/api/2.0/mlflow-artifacts/artifacts/a failed with exception "
                          "HTTPConnectionPool(host='h', port=1): Read timed out.")  # fmt: skip
    failure = explain(exc, earlier, MLFLOW_314)
    assert not isinstance(failure, Unsupported)
    assert "server-info" not in failure.message
