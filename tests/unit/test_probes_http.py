"""net.http, the suite's own requests: a deadline for the whole answer, a size cap, and the
user's credentials sent to the tracking URI's origin only."""

from __future__ import annotations

import base64
import threading
import time

import pytest
import requests

from mlflowcheck.core import secrets
from mlflowcheck.core.secrets import Credentials
from mlflowcheck.net import http as net_http
from mlflowcheck.net.http import ResponseDeadline, ResponseTooLarge, http
from tests.listener import RecordingListener, StuckServer


@pytest.fixture
def canned(httpserver_ipv4):
    # The IPv4 server of pytest-httpserver: its default host "localhost" may resolve to ::1 first.
    httpserver_ipv4.expect_request("/version").respond_with_data("3.17.2")
    return httpserver_ipv4


@pytest.fixture
def url(canned) -> str:
    return canned.url_for("").rstrip("/")


@pytest.fixture
def elsewhere():
    """Another origin on the same host (another port): it must never see the credentials."""
    with RecordingListener() as listener:
        yield listener


def recorded(listener: RecordingListener, count: int = 1) -> str:
    """What the listener received, once it has recorded ``count`` requests (it records after answering)."""
    end = time.monotonic() + 5
    while len(listener.received) < count and time.monotonic() < end:
        time.sleep(0.01)
    return listener.requests_seen()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sent_authorization(canned) -> list[str | None]:
    return [request.headers.get("Authorization") for request, _ in canned.log]


def request_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mlflowcheck-http" and t.is_alive()]


@pytest.mark.parametrize("drip", [False, True], ids=["silent", "one byte a second"])
def test_a_server_that_does_not_finish_its_answer_gets_the_deadline_and_nothing_of_the_request_outlives_it(drip):
    # Each read of a dripping answer gets a byte within requests' read timeout: only the whole-answer deadline ends it.
    with StuckServer(drip=drip) as stuck:
        started = time.monotonic()
        with pytest.raises(ResponseDeadline, match=r"^no complete answer within 1s$"):
            http("GET", f"http://127.0.0.1:{stuck.port}/version", deadline=1.0)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0
    assert request_threads() == []


def test_a_response_deadline_is_a_requests_timeout_so_callers_that_catch_timeouts_catch_it():
    assert issubclass(ResponseDeadline, requests.Timeout)


def test_an_answer_larger_than_the_cap_is_refused(canned, url, monkeypatch):
    monkeypatch.setattr(net_http, "MAX_RESPONSE_BYTES", 2**20)
    canned.expect_request("/big").respond_with_data(b"x" * (2**20 + 1), content_type="application/octet-stream")
    with pytest.raises(ResponseTooLarge, match=r"^the answer is larger than 1 MiB$"):
        http("GET", f"{url}/big")


def test_an_answer_exactly_at_the_cap_is_read_whole(canned, url, monkeypatch):
    monkeypatch.setattr(net_http, "MAX_RESPONSE_BYTES", 2**20)
    canned.expect_request("/big").respond_with_data(b"x" * 2**20, content_type="application/octet-stream")
    resp = http("GET", f"{url}/big")
    assert resp.content == b"x" * 2**20


def test_the_credentials_go_to_the_tracking_uris_origin_and_not_to_another_port(canned, url, elsewhere, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    secrets.use_credentials(None, url)
    assert http("GET", f"{url}/version").text == "3.17.2"
    assert http("GET", f"http://127.0.0.1:{elsewhere.port}/version").text == "3.17.2"
    assert sent_authorization(canned) == [basic("alice", "alices-password")]
    seen = recorded(elsewhere)
    assert seen.startswith("GET /version HTTP/1.1")
    assert "authorization" not in seen.lower()


def test_credentials_from_the_tracking_uri_win_over_the_environment_and_go_to_its_origin(canned, url, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")  # restored after: use_credentials writes it
    secrets.use_credentials(Credentials("bob", "bobs-password"), url)
    http("GET", f"{url}/version")
    assert sent_authorization(canned) == [basic("bob", "bobs-password")]


def test_a_bearer_token_goes_to_the_tracking_uris_origin_and_not_to_another_port(canned, url, elsewhere, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "the-token")
    secrets.use_credentials(None, url)
    http("GET", f"{url}/version")
    http("GET", f"http://127.0.0.1:{elsewhere.port}/version")
    assert sent_authorization(canned) == ["Bearer the-token"]
    assert "the-token" not in recorded(elsewhere)


def test_a_callers_own_header_goes_with_the_bearer_token_and_not_instead_of_it(canned, url, elsewhere, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "the-token")
    secrets.use_credentials(None, url)
    http("GET", f"{url}/version", headers={"Range": "bytes=0-9"})
    http("GET", f"http://127.0.0.1:{elsewhere.port}/version", headers={"Range": "bytes=0-9"})
    request, _ = canned.log[0]
    assert (request.headers.get("Authorization"), request.headers.get("Range")) == ("Bearer the-token", "bytes=0-9")
    assert "the-token" not in recorded(elsewhere)


def test_no_credentials_are_sent_before_an_origin_is_bound(canned, url, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    http("GET", f"{url}/version")
    assert sent_authorization(canned) == [None]


def test_a_request_to_the_origin_with_other_tls_settings_than_the_users_is_anonymous(canned, url, monkeypatch):
    # The scheme probe asks with verification off: such a request is not the one the user gave credentials for.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    secrets.use_credentials(None, url)
    http("GET", f"{url}/version", verify=False)
    assert sent_authorization(canned) == [None]


def test_a_netrc_entry_for_another_origin_is_not_sent_there(elsewhere, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login eve password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    other = f"http://127.0.0.1:{elsewhere.port}/version"
    # requests alone would send it: the entry is read in this environment.
    requests.get(other, timeout=5).close()
    assert "authorization: basic" in recorded(elsewhere, 1).lower()
    http("GET", other)
    recorded(elsewhere, 2)
    assert elsewhere.received[1].startswith(b"GET /version HTTP/1.1")
    assert b"authorization" not in elsewhere.received[1].lower()
