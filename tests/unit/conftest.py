"""The unit layer's fixtures: every test starts from an environment without credentials or TLS
settings (a developer's own MLFLOW_TRACKING_* variables must not change a message), and
``answer`` builds a real requests.Response by hand."""

from __future__ import annotations

import pytest
import requests

from mlflowcheck.core import secrets
from mlflowcheck.core.target import Target, parse_target

CLIENT_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def clean_client_environment(monkeypatch):
    for name in CLIENT_VARIABLES:
        # Set, then deleted: so that monkeypatch restores the variable at the end even when the
        # code under test set it itself (secrets.use_credentials writes os.environ).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # The origin credentials were given for is process-wide (secrets.use_credentials sets it).
    monkeypatch.setattr(secrets, "_credential_origin", None)


def http_answer(
    status: int,
    body: str = "",
    *,
    ctype: str | None = "text/html",
    server: str = "",
    url: str = "http://127.0.0.1:5000/api/2.0/mlflow/runs/create",
    method: str = "POST",
) -> requests.Response:
    """A real requests.Response, as a server (or a proxy) would have sent it to ``method url``."""
    resp = requests.Response()
    resp.status_code, resp._content, resp.encoding = status, body.encode(), "utf-8"
    if ctype:
        resp.headers["content-type"] = ctype
    if server:
        resp.headers["server"] = server
    resp.url = url
    resp.request = requests.Request(method, url).prepare()
    return resp


@pytest.fixture
def answer():
    """``answer(status, body, ctype=, server=, url=, method=)``: a hand-built requests.Response."""
    return http_answer


@pytest.fixture
def canned(httpserver_ipv4):
    """pytest-httpserver's IPv4 server (its default host "localhost" may resolve to ::1 first)."""
    return httpserver_ipv4


@pytest.fixture
def target(canned) -> Target:
    """The canned server as a tracking server's address."""
    return parse_target(canned.url_for("").rstrip("/"))
