"""TLS failures in words (explain.tls): a file that cannot be used, a certificate not trusted, a
client certificate missing or refused. The file errors are the real ones: net.tls.tls_context
loads the hand-made files the way the suite does, and its exception is explained."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlflowcheck.core.target import parse_target
from mlflowcheck.explain.tls import certificate_rejected, client_certificate_refused, unusable_tls_file
from mlflowcheck.net.tls import TlsSettings, tls_context

TARGET = parse_target("https://mlflow.example:8443")
CLIENT_CERT_TIP = (
    "make one PEM file of both: `cat client.crt client.key > client.pem` (decrypt an encrypted key first: "
    "`openssl pkey -in client.key -out client-plain.key`), and point the variable at it."
)
CA_TIP = (
    "set MLFLOW_TRACKING_SERVER_CERT_PATH to a PEM file (-----BEGIN CERTIFICATE-----) of the CA that signed the "
    "server's certificate."
)


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A self-signed certificate and its key, as PEM text: (certificate, key, key encrypted)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    plain = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), plain.decode(), encrypted.decode()


def failure_of(settings: TlsSettings):
    """What the suite says when it cannot make its TLS context with these settings."""
    with pytest.raises((OSError, ValueError)) as info:
        tls_context(settings)
    return unusable_tls_file(settings, info.value)


# --- files that cannot be used -----------------------------------------------------------------


def test_a_ca_bundle_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "nowhere.pem"
    failure = failure_of(TlsSettings(ca_bundle=str(missing)))
    assert failure.fatal
    assert failure.message == f"MLFLOW_TRACKING_SERVER_CERT_PATH={missing} does not exist."
    assert failure.tip == "set it to the PEM file of the CA (or CA bundle) that signed the server's certificate."


def test_a_ca_bundle_that_holds_no_certificate_is_named_with_openssls_reason(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    failure = failure_of(TlsSettings(ca_bundle=str(garbage)))
    assert failure.fatal
    assert failure.message.startswith(
        f"The CA bundle MLFLOW_TRACKING_SERVER_CERT_PATH={garbage} cannot be read as certificates: "
    )
    assert "no certificate or crl found" in failure.message
    assert failure.tip == CA_TIP


def test_requests_default_bundle_is_named_as_such_when_no_variable_is_set(monkeypatch, tmp_path):
    garbage = tmp_path / "default.pem"
    garbage.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(garbage))
    failure = failure_of(TlsSettings())
    assert failure.message.startswith(f"The CA bundle {garbage} (requests' default) cannot be read as certificates: ")
    assert failure.tip == CA_TIP


def test_a_client_certificate_without_its_key_says_the_file_holds_no_private_key(tmp_path, pem):
    cert, _, _ = pem
    only_cert = tmp_path / "client.crt"
    only_cert.write_text(cert)
    failure = failure_of(TlsSettings(client_cert=str(only_cert)))
    assert failure.fatal
    assert failure.message == (
        f"The client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH={only_cert} cannot be used: the file holds no "
        "private key. MLflow's client passes this one file to requests as cert=, so it must hold the certificate "
        "and its private key, unencrypted."
    )
    assert failure.tip == CLIENT_CERT_TIP


def test_a_client_certificate_with_an_encrypted_key_says_so_without_asking_for_a_pass_phrase(tmp_path, pem):
    cert, _, encrypted = pem
    combined = tmp_path / "client.pem"
    combined.write_text(cert + encrypted)
    failure = failure_of(TlsSettings(client_cert=str(combined)))
    assert failure.message == (
        f"The client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH={combined} cannot be used: the private key is "
        "encrypted. MLflow's client passes this one file to requests as cert=, so it must hold the certificate "
        "and its private key, unencrypted."
    )
    assert failure.tip == CLIENT_CERT_TIP


def test_a_missing_client_certificate_is_named_with_the_systems_reason(tmp_path):
    missing = tmp_path / "client.pem"
    failure = failure_of(TlsSettings(client_cert=str(missing)))
    assert failure.message.startswith(
        f"The client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH={missing} cannot be used: No such file or directory."
    )
    assert failure.tip == CLIENT_CERT_TIP


def test_a_good_client_certificate_beside_a_bad_ca_bundle_blames_the_bundle(tmp_path, pem):
    cert, key, _ = pem
    combined = tmp_path / "client.pem"
    combined.write_text(cert + key)
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    failure = failure_of(TlsSettings(ca_bundle=str(garbage), client_cert=str(combined)))
    assert failure.message.startswith(f"The CA bundle MLFLOW_TRACKING_SERVER_CERT_PATH={garbage} cannot be read")
    assert failure.tip == CA_TIP


def test_a_good_client_certificate_and_bundle_make_a_context(tmp_path, pem):
    cert, key, _ = pem
    combined = tmp_path / "client.pem"
    combined.write_text(cert + key)
    (tmp_path / "ca.pem").write_text(cert)
    assert tls_context(TlsSettings(ca_bundle=str(tmp_path / "ca.pem"), client_cert=str(combined))).check_hostname


# --- a certificate the client does not trust ---------------------------------------------------


def test_a_certificate_for_another_name_names_the_host_and_the_subject_alt_name_fix():
    why = "Hostname mismatch, certificate is not valid for 'mlflow.example'. (_ssl.c:1006)"
    for settings in (TlsSettings(), TlsSettings(ca_bundle="/etc/ca.pem")):
        failure = certificate_rejected(TARGET, settings, why)
        assert failure.fatal
        assert (
            failure.message == f"The TLS certificate of mlflow.example:8443 is not issued to 'mlflow.example': {why}."
        )
        assert failure.tip == (
            "use the host name the certificate names in --tracking-uri, or reissue the certificate with "
            "mlflow.example in its subjectAltName."
        )


def test_an_expired_certificate_is_to_be_renewed():
    failure = certificate_rejected(TARGET, TlsSettings(ca_bundle="/etc/ca.pem"), "certificate has expired")
    assert failure.message == (
        "The TLS certificate of mlflow.example:8443 is not trusted: certificate has expired. It was checked against "
        "the CA bundle MLFLOW_TRACKING_SERVER_CERT_PATH=/etc/ca.pem, as MLflow's client checks it, so the client, "
        "this suite and its browser refuse the server."
    )
    assert failure.tip == "renew the server's certificate (or fix this machine's clock)."


def test_an_untrusted_certificate_without_a_bundle_offers_the_ca_and_for_tests_insecure_tls():
    failure = certificate_rejected(TARGET, TlsSettings(), "self-signed certificate")
    assert failure.message == (
        "The TLS certificate of mlflow.example:8443 is not trusted: self-signed certificate. It was checked against "
        "the CAs this client trusts (no MLFLOW_TRACKING_SERVER_CERT_PATH is set), as MLflow's client checks it, so "
        "the client, this suite and its browser refuse the server."
    )
    assert failure.tip == (
        "set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA that signed the server's certificate (`openssl s_client "
        "-connect mlflow.example:8443 -showcerts` shows who signed it), or, for a test server only, "
        "MLFLOW_TRACKING_INSECURE_TLS=true."
    )


def test_an_untrusted_certificate_with_a_bundle_asks_for_the_right_ca_only():
    failure = certificate_rejected(TARGET, TlsSettings(ca_bundle="/etc/ca.pem"), "unable to get local issuer")
    assert failure.tip == (
        "set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA that signed the server's certificate (`openssl s_client "
        "-connect mlflow.example:8443 -showcerts` shows who signed it)."
    )


def test_an_ipv6_servers_address_is_bracketed_in_the_message_and_the_openssl_command():
    failure = certificate_rejected(parse_target("https://[::1]:8443"), TlsSettings(), "self-signed certificate")
    assert failure.message.startswith("The TLS certificate of [::1]:8443 is not trusted")
    assert "`openssl s_client -connect [::1]:8443 -showcerts`" in failure.tip


# --- client certificates -----------------------------------------------------------------------


def test_a_server_that_wants_a_client_certificate_and_got_none_says_which_variable_to_set():
    failure = client_certificate_refused(TARGET, TlsSettings(), "TLSV13_ALERT_CERTIFICATE_REQUIRED")
    assert failure.fatal
    assert failure.message == (
        "The server at mlflow.example:8443 requires a TLS client certificate and none was given "
        "(TLSV13_ALERT_CERTIFICATE_REQUIRED)."
    )
    assert failure.tip == (
        "set MLFLOW_TRACKING_CLIENT_CERT_PATH to one PEM file holding your client certificate and its private key "
        "(`cat client.crt client.key > client.pem`)."
    )


def test_a_server_that_refused_the_client_certificate_names_the_file_and_the_ca_options():
    failure = client_certificate_refused(TARGET, TlsSettings(client_cert="/c.pem"), "alert unknown ca")
    assert failure.message == (
        "The server at mlflow.example:8443 refused the client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH=/c.pem "
        "(alert unknown ca)."
    )
    assert failure.tip == (
        "use a certificate signed by a CA the server accepts (uvicorn's --ssl-ca-certs, nginx's "
        "ssl_client_certificate), and not expired."
    )
