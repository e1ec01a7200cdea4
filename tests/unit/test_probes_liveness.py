"""net.liveness: after a lost connection, is the server up, down or back; which versions answer;
which failures are the connection itself."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Response

from mlflowcheck.core.target import parse_target
from mlflowcheck.net.http import ResponseDeadline, http
from mlflowcheck.net.liveness import connection_lost, server_fate, versions_seen
from mlflowcheck.runtime.server import free_port


@pytest.mark.parametrize("status", [200, 401])
def test_a_server_that_answers_at_once_is_up(canned, target, status):
    # A protected server answers 401 to an anonymous GET /version: it is there all the same.
    canned.expect_request("/version").respond_with_data("3.17.2" if status == 200 else "Unauthorized", status=status)
    started = time.monotonic()
    assert server_fate(target) == "up"
    assert time.monotonic() - started < 1.0


def test_a_server_that_never_answers_within_the_wait_is_down():
    started = time.monotonic()
    assert server_fate(parse_target(f"http://127.0.0.1:{free_port()}"), wait=1.0) == "down"
    assert 1.0 <= time.monotonic() - started < 2.5


def test_a_server_that_comes_up_again_within_the_wait_is_back():
    port = free_port()
    restarted = HTTPServer(host="127.0.0.1", port=port)
    restarted.expect_request("/version").respond_with_data("3.17.2")
    starter = threading.Timer(0.7, restarted.start)  # the restart: nothing listens until then
    starter.start()
    try:
        started = time.monotonic()
        assert server_fate(parse_target(f"http://127.0.0.1:{port}"), wait=4.0) == "back"
        assert time.monotonic() - started < 3.0
    finally:
        starter.join(5)
        if restarted.is_running():
            restarted.stop()
    assert [request.path for request, _ in restarted.log] == ["/version"]


def test_a_server_that_answers_with_an_error_and_then_the_version_is_back(canned, target):
    # A proxy's 502 while the server behind it restarts is no answer from the server.
    answers = iter([Response("Bad Gateway", status=502), Response("3.17.2", status=200)])
    canned.expect_request("/version").respond_with_handler(lambda _request: next(answers))
    assert server_fate(target, wait=2.0) == "back"


def test_versions_seen_lists_each_version_the_replicas_answer_with_once(canned, target):
    versions = itertools.cycle(["3.17.2", "3.16.0"])
    canned.expect_request("/version").respond_with_handler(lambda _request: Response(next(versions)))
    assert versions_seen(target) == ["3.16.0", "3.17.2"]
    assert len(canned.log) == 4


def test_versions_seen_leaves_out_answers_that_are_not_a_version(canned, target):
    answers = itertools.cycle([Response("3.17.2"), Response("<html>Bad Gateway</html>", status=502)])
    canned.expect_request("/version").respond_with_handler(lambda _request: next(answers))
    assert versions_seen(target) == ["3.17.2"]


def test_versions_seen_is_empty_when_nothing_answers():
    assert versions_seen(parse_target(f"http://127.0.0.1:{free_port()}"), tries=2) == []


def test_a_refused_connection_is_a_lost_connection():
    with pytest.raises(requests.ConnectionError) as info:
        http("GET", f"http://127.0.0.1:{free_port()}/version")
    assert connection_lost(info.value)


def test_an_error_answer_and_a_deadline_are_not_a_lost_connection(canned, target):
    canned.expect_request("/version").respond_with_data("Internal Server Error", status=500)
    with pytest.raises(requests.HTTPError) as info:
        http("GET", f"{target.url}/version").raise_for_status()
    assert not connection_lost(info.value)
    assert not connection_lost(ResponseDeadline("no complete answer within 1s"))


@pytest.mark.parametrize(
    "said",
    [
        "API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/get failed with exception HTTPConnectionPool("
        "host='127.0.0.1', port=5000): Max retries exceeded with url: /api/2.0/mlflow/runs/get",
        "page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:5000/",
        "The following failures occurred while downloading one or more artifacts from http://127.0.0.1:5000/api/2.0/"
        "mlflow-artifacts/artifacts/1/models/m-7da0/artifacts: ##### File model.skops ##### API request to http://"
        "127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/models/m-7da0/artifacts/model.skops failed with "
        "exception HTTPConnectionPool(h…",
    ],
    ids=["MLflow's client", "the browser", "the model worker's shortened message"],
)
def test_a_lost_connection_is_recognised_in_the_words_of_mlflows_client_and_the_browser(said):
    assert connection_lost(RuntimeError(said))
