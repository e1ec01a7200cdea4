"""The browser sends the credentials only to the tracking URI's origin: a page of the web app (or
of a proxy in front of it) that makes the browser ask another origin, directly or by a redirect,
gives that origin neither the password nor the token. Real servers, a real proxy, a real
listener recording every byte it gets, and the suite's own browser check."""

from __future__ import annotations

import base64

import pytest
import requests

from mlflowcheck.runtime.browser import find_browser
from tests.faultproxy import Fault, FaultProxy
from tests.listener import RecordingListener
from tests.support import ADMIN_PASSWORD, run_suite

TOKEN = "tok-Cn4ry-5e1f0a77"


@pytest.fixture(scope="module")
def browser_available():
    path, why = find_browser()
    if path is None:
        pytest.skip(why)


def run_with_a_page_naming_another_origin(
    server, tmp_path, env: dict, other: RecordingListener, sign_in: RecordingListener, auth=None
):
    """The whole suite with the browser, through a proxy whose web-app page holds an image at
    ``other`` and one at the proxy that redirects to ``sign_in``."""
    other_origin = f"http://127.0.0.1:{other.port}"
    sign_in_origin = f"http://127.0.0.1:{sign_in.port}"
    html = requests.get(server.url + "/", auth=auth, timeout=30).text
    assert "</body>" in html
    # Hidden, not to change the layout the browser check clicks in (the browser loads them all the same).
    images = f'<img hidden src="{other_origin}/logo.png"><img hidden src="/sign-in/logo.png">'
    html = html.replace("</body>", f"{images}</body>", 1)
    faults = [
        Fault("GET", r"^/$", "replace:", payload=html.encode()),
        Fault("GET", r"^/sign-in/logo\.png$", f"redirect:{sign_in_origin}/sso/logo.png"),
    ]
    with FaultProxy(server.url, faults) as proxy:
        result = run_suite(tmp_path, "--tracking-uri", proxy.url, "--ui", env=env, ui=True)
    return result, proxy


def assert_nothing_reached(other: RecordingListener, sign_in: RecordingListener, *secrets: str) -> None:
    for listener, request in ((other, "GET /logo.png "), (sign_in, "GET /sso/logo.png ")):
        seen = listener.requests_seen()
        assert request in seen, seen  # the browser did ask the other origin (directly, or redirected)
        assert "authorization" not in seen.lower(), seen
        for secret in secrets:
            assert secret not in seen


def browser_api_calls(proxy: FaultProxy) -> list[tuple[str, str | None]]:
    """The path and Authorization header of the web app's API calls (the browser's: MLflow's
    client calls /api/), but for the telemetry Web Worker's: a worker's requests do not get the
    page's extra headers, and its telemetry is nothing the check needs."""
    calls = [
        (path, headers.get("Authorization"))
        for _, path, headers in proxy.requests
        if path.startswith("/ajax-api/") and "/ui-telemetry" not in path
    ]
    assert calls, "the browser made no API call"
    return calls


def test_the_browser_gives_the_password_to_the_tracking_servers_origin_only(auth_server, browser_available, tmp_path):
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    with RecordingListener(challenge=True) as other, RecordingListener() as sign_in:
        result, proxy = run_with_a_page_naming_another_origin(
            auth_server, tmp_path, env, other, sign_in, auth=("admin", ADMIN_PASSWORD)
        )
    result.assert_all_passed()
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    assert_nothing_reached(other, sign_in, ADMIN_PASSWORD, basic)
    calls = browser_api_calls(proxy)
    assert all(header == f"Basic {basic}" for _, header in calls), calls


def test_the_browser_gives_the_token_to_the_tracking_servers_origin_only(server, browser_available, tmp_path):
    with RecordingListener(challenge=True) as other, RecordingListener() as sign_in:
        env = {"MLFLOW_TRACKING_TOKEN": TOKEN}
        result, proxy = run_with_a_page_naming_another_origin(server, tmp_path, env, other, sign_in)
    result.assert_all_passed()
    assert_nothing_reached(other, sign_in, TOKEN)
    calls = browser_api_calls(proxy)
    assert all(header == f"Bearer {TOKEN}" for _, header in calls), calls
