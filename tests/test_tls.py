"""TLS: one set of settings (MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_CLIENT_CERT_PATH) for MLflow's client, the suite's own requests and the browser,
against real mlflow servers serving TLS with certificates of a private CA made here."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pytest

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.target import parse_target
from mlflowcheck.net.http import tls_from_env
from mlflowcheck.probes.layers import handshake
from mlflowcheck.probes.ui import CLIENT_CERT_ERROR
from mlflowcheck.runtime.browser import BROWSER_ARGS, find_browser
from mlflowcheck.runtime.browser_access import browser_tls
from tests.support import run_suite, start_server
from tests.test_broken_deployments import assert_fails

TLS_VARIABLES = ("MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH")


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@dataclass
class Pki:
    ca: Path  # the private CA the servers' and the client's certificates are signed by
    other_ca: Path  # a CA that signed nothing here: the wrong bundle
    server_cert: Path
    server_key: Path
    client_pem: Path  # the client's certificate and key in one file, as MLflow's client takes it
    client_cert_only: Path


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
            "-subj", f"/CN=mlflowcheck {name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert, key


def issue(directory: Path, name: str, ca: tuple[Path, Path], subject: str, extensions: str) -> tuple[Path, Path]:
    cert, key, csr, ext = (directory / f"{name}{suffix}" for suffix in (".pem", ".key", ".csr", ".ext"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
    ext.write_text(extensions)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext)  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca")
    other_ca, _ = make_ca(d, "other-ca")
    server_cert, server_key = issue(d, "server", ca, "/CN=127.0.0.1",
                                    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    client_cert, client_key = issue(d, "client", ca, "/CN=mlflowcheck client", "extendedKeyUsage=clientAuth\n")
    client_pem = d / "client-with-key.pem"
    client_pem.write_text(client_cert.read_text() + client_key.read_text())
    return Pki(ca[0], other_ca, server_cert, server_key, client_pem, client_cert)


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    """An mlflow server serving TLS with a certificate of the private CA."""
    opts = f"--ssl-keyfile {pki.server_key} --ssl-certfile {pki.server_cert}"
    srv = start_server(tmp_path_factory.mktemp("tls"), extra_args=["--uvicorn-opts", opts], scheme="https")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(pki, tmp_path_factory):
    """An mlflow server that also requires a client certificate signed by the private CA
    (uvicorn's --ssl-cert-reqs 2: ssl.CERT_REQUIRED)."""
    opts = f"--ssl-keyfile {pki.server_key} --ssl-certfile {pki.server_cert} --ssl-cert-reqs 2 --ssl-ca-certs {pki.ca}"
    with pytest.MonkeyPatch.context() as env:
        # The readiness poll is one of the suite's own requests: it presents the certificate too.
        env.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(pki.client_pem))
        srv = start_server(tmp_path_factory.mktemp("mtls"), extra_args=["--uvicorn-opts", opts], scheme="https")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser_path():
    path, why = find_browser()
    if path is None:
        pytest.skip(why)
    return path


# --- every check passes, the browser included ------------------------------------------------


def test_a_private_ca_given_in_server_cert_path_passes_every_check_the_browser_included(
    tls_server, pki, browser_path, tmp_path
):
    result = run_suite(
        tmp_path, "--tracking-uri", tls_server.url, env={"MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki.ca)}, ui=True
    )
    result.assert_all_passed()


def test_insecure_tls_passes_every_check_the_browser_included(tls_server, browser_path, tmp_path):
    env = {"MLFLOW_TRACKING_INSECURE_TLS": "true"}
    result = run_suite(tmp_path, "--tracking-uri", tls_server.url, env=env, ui=True)
    result.assert_all_passed()


# When the run page opens more than 5 s after the experiment page (uvicorn's idle keep-alive timeout), a style
# sheet requested through Playwright's client-certificate proxy fails with ERR_TOO_MANY_RETRIES and MLflow shows
# "Something went wrong": the browser check reloads the page then (UserPages.reload_after_stale_connection).
def test_a_server_requiring_a_client_certificate_passes_every_check_the_browser_included(
    mtls_server, pki, browser_path, tmp_path
):
    env = {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki.ca), "MLFLOW_TRACKING_CLIENT_CERT_PATH": str(pki.client_pem)}
    result = run_suite(tmp_path, "--tracking-uri", mtls_server.url, env=env, ui=True)
    result.assert_all_passed()


# --- what the settings reject, everything rejects ---------------------------------------------


def test_a_certificate_not_signed_by_the_given_ca_fails_at_the_network_with_a_tls_tip_and_nothing_passes_after(
    tls_server, pki, browser_path, tmp_path
):
    result = run_suite(
        tmp_path, "--tracking-uri", tls_server.url, env={"MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki.other_ca)}, ui=True
    )
    expected = ("TLS certificate of 127.0.0.1", "is not trusted", f"MLFLOW_TRACKING_SERVER_CERT_PATH={pki.other_ca}")
    assert_fails(result, "network", *expected, code=2)
    assert "the CA that signed the server's certificate" in result.check("network")["message"]
    passed = [name for name, status in result.statuses().items() if status == "passed"]
    assert passed == ["uri"], result.output


def test_without_ca_the_private_certificate_is_refused_with_the_variables_to_set(tls_server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", tls_server.url)
    assert_fails(result, "network", "is not trusted", "no MLFLOW_TRACKING_SERVER_CERT_PATH is set", code=2)
    message = result.check("network")["message"]
    assert "set MLFLOW_TRACKING_SERVER_CERT_PATH" in message
    assert "MLFLOW_TRACKING_INSECURE_TLS=true" in message


def test_a_server_requiring_a_client_certificate_without_one_is_told_to_set_client_cert_path(
    mtls_server, pki, tmp_path
):
    env = {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki.ca)}
    result = run_suite(tmp_path, "--tracking-uri", mtls_server.url, env=env)
    assert_fails(result, "network", "requires a TLS client certificate and none was given", code=2)
    assert "MLFLOW_TRACKING_CLIENT_CERT_PATH" in result.check("network")["message"]


def test_a_client_certificate_without_its_key_is_refused_before_any_request(mtls_server, pki, tmp_path):
    env = {
        "MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki.ca),
        "MLFLOW_TRACKING_CLIENT_CERT_PATH": str(pki.client_cert_only),
    }
    result = run_suite(tmp_path, "--tracking-uri", mtls_server.url, env=env)
    assert_fails(result, "network", "the file holds no private key", "cat client.crt client.key", code=2)


def open_in_browser(browser_path: str, url: str) -> tuple[str, str]:
    """Open ``url`` in Chromium as the browser check does (its flags and browser_tls's options):
    returns the page's title and text, or ('', the error) when the browser refuses."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    tls = browser_tls(parse_target(url))
    with patch.dict(os.environ, tls.driver_env), sync_playwright() as pw:  # the driver reads it as it starts
        browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS + tls.args, timeout=20_000)
        try:
            page = browser.new_context(**tls.context_options).new_page()
            try:
                page.goto(url + "/", wait_until="domcontentloaded", timeout=20_000)
            except PlaywrightError as exc:
                return "", str(exc)
            return page.title(), page.evaluate("document.body ? document.body.innerText : ''")
        finally:
            browser.close()


def test_the_browser_refuses_a_certificate_the_given_ca_did_not_sign_and_opens_it_with_the_right_ca(
    tls_server, pki, browser_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki.other_ca))
    title, error = open_in_browser(browser_path, tls_server.url)
    assert title == ""
    assert "ERR_CERT_AUTHORITY_INVALID" in error
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki.ca))
    assert open_in_browser(browser_path, tls_server.url)[0] == "MLflow"


def test_with_a_client_certificate_the_browser_refuses_a_server_of_another_ca_and_opens_it_with_the_right_ca(
    mtls_server, pki, browser_path, monkeypatch
):
    # Playwright's own TLS connection (Node's) verifies the server here, not Chromium's.
    monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(pki.client_pem))
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki.other_ca))
    title, text = open_in_browser(browser_path, mtls_server.url)
    assert title != "MLflow"
    assert text.startswith(CLIENT_CERT_ERROR), text
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki.ca))
    assert open_in_browser(browser_path, mtls_server.url)[0] == "MLflow"


# --- the settings, read as MLflow's client reads them (pure logic) ---------------------------


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [
        ({}, {}),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "true"}, {"verify": False}),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "1"}, {"verify": False}),  # MLflow's booleans take "1" too
        ({"MLFLOW_TRACKING_INSECURE_TLS": "TRUE"}, {"verify": False}),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "false"}, {}),
        ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}, {"verify": "/ca.pem"}),
        ({"MLFLOW_TRACKING_CLIENT_CERT_PATH": "/c.pem"}, {"cert": "/c.pem"}),
        (
            {"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem", "MLFLOW_TRACKING_CLIENT_CERT_PATH": "/c.pem"},
            {"verify": "/ca.pem", "cert": "/c.pem"},
        ),
    ],
)
def test_the_tls_environment_becomes_the_requests_arguments_mlflows_client_uses(env, kwargs, monkeypatch):
    for name in TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tls_from_env() == kwargs


def test_insecure_tls_with_a_ca_bundle_is_refused_as_mlflows_client_refuses_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem")
    with pytest.raises(CheckFailed, match="only one of these environment variables may be set") as info:
        handshake(parse_target("https://127.0.0.1:1"))
    assert info.value.fatal
    assert "unset MLFLOW_TRACKING_INSECURE_TLS" in info.value.tip
