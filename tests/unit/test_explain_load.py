"""The load probe's errors by kind, and what they mean (explain.load)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.utils.rest_utils import verify_rest_response

from mlflowcheck.explain.load import error_kind, explain_errors


def client_error(resp: requests.Response) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        verify_rest_response(resp, "/api/2.0/mlflow/runs/log-batch")
    return info.value


# --- kinds ---------------------------------------------------------------------------------------


def test_a_refused_connection_is_its_own_kind():
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(requests.ConnectionError) as info:
            requests.post(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/log-batch", timeout=5)
    assert error_kind(info.value) == "connection refused"


def test_a_connection_reset_by_the_server_is_its_own_kind():
    exc = requests.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")
    assert error_kind(exc) == "connection reset"
    assert (
        error_kind(requests.ConnectionError("RemoteDisconnected('Remote end closed connection')")) == "connection reset"
    )


def test_an_http_status_the_client_names_is_the_kind(answer):
    assert error_kind(client_error(answer(429, "slow down", ctype="text/plain"))) == "HTTP 429"
    assert error_kind(client_error(answer(504, "<html>gateway</html>"))) == "HTTP 504"


def test_sqlites_lock_is_named_whatever_the_status(answer):
    body = '{"error_code": "INTERNAL_ERROR", "message": "(sqlite3.OperationalError) database is locked"}'
    assert error_kind(client_error(answer(500, body, ctype="application/json"))) == "database is locked"


def test_mlflows_error_code_is_the_kind_unless_it_is_the_catch_all_internal_error():
    assert error_kind(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"})) == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert error_kind(RestException({"error_code": "INTERNAL_ERROR", "message": "boom"})) == "RestException"


def test_any_other_error_is_its_type():
    assert error_kind(MlflowException("boom")) == "MlflowException"
    assert error_kind(requests.Timeout("read timeout")) == "Timeout"
    assert error_kind(ValueError("x")) == "ValueError"


# --- what they mean ------------------------------------------------------------------------------


def test_sqlite_locks_mean_one_writer_at_a_time_by_kind_or_by_the_errors_words():
    for errors, said in ((Counter({"database is locked": 3}), []), (Counter({"HTTP 500": 3}), ["database is locked"])):
        assert explain_errors(errors, said) == (
            "SQLite lets one process write at a time: concurrent clients (or another process holding the database) "
            "wait for its lock and then fail. Move the tracking store to PostgreSQL or MySQL for a team, or run "
            "fewer concurrent writers."
        )


@pytest.mark.parametrize(
    "said",
    [
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached",
        "FATAL: sorry, too many connections for role",
        "remaining connection slots are reserved for non-replication superuser connections",
        "(1040, 'Too many connections')",
    ],
)
def test_an_exhausted_connection_pool_means_raising_the_pool_within_the_databases_limit(said):
    assert explain_errors(Counter({"HTTP 500": 1}), [said]) == (
        "the server ran out of database connections: raise its pool (MLFLOW_SQLALCHEMYSTORE_POOL_SIZE and "
        "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW) within the database's max_connections, or run fewer workers."
    )


def test_http_429_is_a_rate_limit_in_front_of_the_server():
    assert explain_errors(Counter({"HTTP 429": 2}), []) == (
        "a proxy or gateway in front of the server rate-limits clients (HTTP 429): raise its limit for MLflow."
    )


@pytest.mark.parametrize("kind", ["HTTP 502", "HTTP 504"])
def test_a_gateway_error_is_the_proxys_timeout(kind):
    assert explain_errors(Counter({kind: 1}), []) == (
        "the reverse proxy in front of the server could not get answers in time (502/504): raise its "
        "proxy_read_timeout and look at the server's load."
    )


@pytest.mark.parametrize("kind", ["connection reset", "connection refused"])
def test_dropped_connections_mean_more_workers(kind):
    assert explain_errors(Counter({kind: 4}), []) == (
        "the server dropped or refused connections under load: it ran out of workers or connections; raise "
        "`mlflow server --workers` (and the uvicorn/gunicorn backlog), or look at its log."
    )


def test_the_database_comes_before_the_proxy_and_the_proxy_before_the_connections():
    errors = Counter({"HTTP 502": 1, "connection reset": 1, "HTTP 429": 1})
    assert explain_errors(errors, ["database is locked"]).startswith("SQLite lets one process write at a time")
    assert explain_errors(errors, []).startswith("a proxy or gateway in front of the server rate-limits")
    del errors["HTTP 429"]
    assert explain_errors(errors, []).startswith("the reverse proxy in front of the server could not get answers")


def test_errors_nobody_knows_send_the_user_to_the_servers_log():
    assert explain_errors(Counter({"ValueError": 1}), ["odd"]) == "look at the server's log for the failed requests."
