"""What kind of deployment answered (explain.deployment): a reverse proxy's own page, a sign-in
gateway, client and server versions that cannot work together."""

from __future__ import annotations

import pytest

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import Answer
from mlflowcheck.explain.deployment import (
    auth_layer,
    describe_server_info,
    implementation,
    reverse_proxy,
    sign_in_page,
    version_skew,
)

NGINX_404 = "<html><center><h1>404 Not Found</h1></center><hr><center>nginx/1.22.1</center>"


@pytest.mark.parametrize(
    ("status", "body", "server", "ctype", "proxy"),
    [
        (404, NGINX_404, "nginx", "text/html", "nginx"),
        (404, "<address>Apache/2.4.62 (Debian) Server at 127.0.0.1 Port 80</address>", "", "text/html", "Apache"),
        (404, "404 page not found\n", "", "text/plain", "Traefik"),
        (503, "no healthy upstream", "envoy", "text/plain", "Envoy"),
        (404, "", "Caddy", "text/html", "Caddy"),
        # A page of the app behind the proxy, relayed with the proxy's Server header: not the proxy's own.
        (404, "<html><body><h1>Grafana</h1><p>Page not found</p></body></html>", "nginx", "text/html", ""),
        (404, '{"detail": "Not Found"}', "uvicorn", "application/json", ""),
    ],
)
def test_a_reverse_proxys_own_page_is_told_from_the_app_behind_it(answer, status, body, server, ctype, proxy):
    assert reverse_proxy(answer(status, body, server=server, ctype=ctype)) == proxy


@pytest.mark.parametrize(
    ("body", "server", "proxy"),
    [
        ("x", "openresty", "openresty"),
        ("Bad gateway", "awselb/2.0", "awselb"),
        ("upstream connect error or disconnect/reset before headers", "", "Envoy"),
    ],
)
def test_a_short_answer_with_a_proxys_server_header_is_the_proxys(answer, body, server, proxy):
    assert reverse_proxy(answer(502, body, server=server, ctype="text/plain")) == proxy


def test_a_long_plain_answer_behind_a_proxy_header_is_the_apps(answer):
    # Forty characters or more: an app's message, relayed.
    assert reverse_proxy(answer(500, "x" * 40, server="nginx", ctype="text/plain")) == ""


# --- sign-in gateways --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "seen"),
    [
        (200, "<html><title>Sign in - Okta</title><input type=password>", "titled 'Sign in - Okta'"),
        (401, "<html><title> Log In </title>", "titled 'Log In'"),
        (200, "<TITLE>A\n  B</TITLE>SSO", "titled 'A B'"),
        (403, "<form>single sign-on</form>", "a login form"),
        (200, "<form><input type='password'></form>", "a login form"),
    ],
)
def test_an_html_login_page_is_named_by_its_title(answer, status, body, seen):
    assert sign_in_page(answer(status, body)) == seen


@pytest.mark.parametrize(
    ("status", "body", "ctype"),
    [
        (200, "<html>welcome</html>", "text/html"),  # no login words
        (500, "<title>x</title> sign in", "text/html"),  # an error, not a gateway's page
        (302, "<title>x</title> sign in", "text/html"),
        (200, "sign in", "text/plain"),  # not HTML
        (200, '{"message": "please log in"}', "application/json"),
    ],
)
def test_other_answers_are_not_a_sign_in_page(answer, status, body, ctype):
    assert sign_in_page(answer(status, body, ctype=ctype)) == ""


# --- versions ----------------------------------------------------------------------------------


def test_the_same_major_and_minor_version_is_no_skew_whatever_the_patch():
    assert version_skew("3.17.2", "3.17.2") == ""
    assert version_skew("3.17.2", "3.17.0") == ""


def test_another_minor_version_is_a_note_of_minor_skew():
    assert version_skew("3.17.2", "3.16.0") == "minor skew: server 3.16.0, client 3.17.2"
    assert version_skew("3.17.2", "3") == "minor skew: server 3, client 3.17.2"


def test_a_server_that_hides_its_version_is_a_note_not_a_failure():
    assert version_skew("3.17.2", "") == "server version not visible before authentication"


def test_an_older_major_version_fails_with_the_upgrade_and_never_a_pin_to_an_older_client():
    with pytest.raises(CheckFailed) as info:
        version_skew("3.17.2", "2.22.1")
    assert not info.value.fatal
    assert info.value.message == (
        "The server runs MLflow 2.22.1 and this client MLflow 3.17.2: a 2.x server lacks APIs a 3.x client uses "
        "(logged models, model artifacts); the checks that need them are reported as unsupported."
    )
    assert info.value.tip == (
        "upgrade the server to MLflow 3.x, 3.1.4 or newer (pip install -U 'mlflow==3.17.2' in the server's "
        "environment, then `mlflow db upgrade <backend-store-uri>` after a backup, and restart it)."
    )
    assert "pin" not in info.value.tip


def test_a_newer_major_server_asks_for_a_newer_client():
    with pytest.raises(CheckFailed) as info:
        version_skew("3.17.2", "4.0.1")
    assert info.value.tip == "upgrade this suite's MLflow client (pip install -U mlflow) to 4.x, then run again."


# --- which server answers --------------------------------------------------------------------


def version_answer(server: str = "uvicorn") -> Answer:
    return Answer("GET /version", 200, {"server": server} if server else {}, "3.17.2")


def test_fasttrackml_is_told_by_its_server_header():
    found = implementation("0.6.0", version_answer("FastTrackML/0.6.0"), None, None)
    assert (found.product, found.version, found.is_mlflow) == ("FastTrackML", "0.6.0", False)
    assert found.evidence == "Server: FastTrackML/0.6.0"
    assert found.describe() == "FastTrackML 0.6.0, not MLflow's own server (it speaks MLflow's REST API)"
    assert found.ui_path == "/mlflow/"


def test_mlflows_own_server_is_told_by_server_info_or_its_version():
    info = {"store_type": "SqlStore"}
    assert implementation("3.17.2", version_answer(), info, None).evidence == "GET /api/3.0/mlflow/server-info"
    found = implementation("3.1.4", version_answer(), None, None)
    assert (found.product, found.is_mlflow, found.evidence) == ("MLflow", True, "GET /version: 3.1.4")
    assert found.describe() == "MLflow 3.1.4"


def test_a_0_x_version_behind_an_unknown_server_header_is_another_product():
    found = implementation("0.9.1", version_answer("Acme-Tracker/0.9.1"), None, None)
    assert (found.product, found.is_mlflow) == ("Acme-Tracker", False)
    anonymous_product = implementation("0.2.0", version_answer("uvicorn"), None, None)
    assert anonymous_product.product == "an MLflow-compatible server"


def test_the_proxy_in_front_is_named_by_its_server_header():
    found = implementation("3.17.2", version_answer("nginx/1.22.1"), None, None)
    assert found.proxy == "nginx"
    assert found.is_mlflow
    assert found.describe() == "MLflow 3.17.2, via nginx"


@pytest.mark.parametrize(
    ("refused", "layer"),
    [
        (
            Answer("GET /api", 401, {"www-authenticate": 'Basic realm="mlflow"'}, "You are not authenticated."),
            "basic-auth",
        ),
        (Answer("GET /api", 401, {}, '{"message": "Authentication required", "login": "/oidc/login"}'), "oidc-auth"),
        (Answer("GET /api", 302, {"location": "https://sso.example/login"}, ""), "a gateway"),
        (Answer("GET /api", 401, {"www-authenticate": 'Basic realm="Restricted"'}, "<html>"), "a proxy's basic auth"),
        (Answer("GET /api", 200, {}, "{}"), ""),
        (None, ""),
    ],
)
def test_the_auth_layer_is_told_by_how_an_anonymous_call_is_refused(refused, layer):
    assert auth_layer(refused) == layer


def test_server_info_is_described_on_one_line():
    info = {
        "store_type": "SqlStore", "workspaces_enabled": False, "trace_archival_enabled": True,
        "multipart_uploads_enabled": False, "features_enabled": {"gateway": True},
    }  # fmt: skip
    assert describe_server_info(info) == (
        "store SqlStore; workspaces off; trace archival on; multipart uploads off; features: gateway on"
    )
    assert describe_server_info({}) == "answered, with no fields this suite knows"
