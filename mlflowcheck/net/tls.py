"""TLS as MLflow's client does it: the settings read from the environment once, the SSL
context they make, and one handshake with the server that reports what it saw."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
from dataclasses import dataclass

import requests
import requests.adapters
from urllib3.util.ssl_ import create_urllib3_context

from mlflowcheck.core.target import Target
from mlflowcheck.net.limits import CONNECT_TIMEOUT

TRUE_WORDS = ("true", "1")  # what MLflow's boolean environment variables accept, in any case


@dataclass(frozen=True)
class TlsSettings:
    """What the user gave MLflow's client for TLS, read the way MLflow 3.17 reads it
    (mlflow/utils/credentials.py, MlflowHostCreds in mlflow/utils/rest_utils.py): the one
    reading of the environment behind the suite's own requests, its TLS probe and the browser.
    The model worker and the load probe use MLflow's client, which reads the same variables."""

    insecure: bool = False  # MLFLOW_TRACKING_INSECURE_TLS: requests' verify=False
    ca_bundle: str | None = None  # MLFLOW_TRACKING_SERVER_CERT_PATH: requests' verify=<bundle>
    #: MLFLOW_TRACKING_CLIENT_CERT_PATH: requests' cert=<one path>, so one PEM file holding the
    #: certificate and its unencrypted private key (MLflow has no variable for a separate key).
    client_cert: str | None = None

    @property
    def verifies(self) -> bool:
        return not self.insecure or self.ca_bundle is not None

    def requests_kwargs(self) -> dict:
        kwargs: dict = {}
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle  # with insecure too (MLflow refuses both: handshake says so)
        elif self.insecure:
            kwargs["verify"] = False
        if self.client_cert:
            kwargs["cert"] = self.client_cert
        return kwargs

    def ca_locations(self) -> dict:
        """The CAs requests trusts here, as ssl.SSLContext.load_verify_locations arguments: the
        bundle given, else REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (requests reads them when
        verify=True, as MLflow's client passes it), else certifi's bundle."""
        bundle = (
            self.ca_bundle
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        return {"capath": bundle} if os.path.isdir(bundle) else {"cafile": bundle}


def tls_settings() -> TlsSettings:
    """The TLS settings in the environment (empty values count as unset)."""
    return TlsSettings(
        insecure=os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in TRUE_WORDS,
        ca_bundle=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None,
        client_cert=os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None,
    )


def _no_passphrase(*_args) -> bytes:
    # Without a callback OpenSSL would ask for an encrypted key's pass phrase on the terminal.
    raise ValueError("the private key is encrypted")


def tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """An SSL context that trusts what requests trusts with these settings, and presents the
    client certificate. Raises OSError/ssl.SSLError/ValueError when a file cannot be used."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if settings.verifies else ssl.CERT_NONE)
    if settings.verifies:
        context.check_hostname = True
        context.load_verify_locations(**settings.ca_locations())
    else:
        context.check_hostname = False
    if settings.client_cert:
        context.load_cert_chain(settings.client_cert, password=_no_passphrase)
    return context


@dataclass
class Handshake:
    """What the suite's TLS handshake with the server saw."""

    certificate: bytes  # the server's (DER), verified when the settings verify
    asked_for_client_certificate: bool = False  # the server sent a CertificateRequest
    closed_unanswered: bool = False  # then closed the connection without answering a request


def server_certificate(target: Target, settings: TlsSettings, timeout: float = CONNECT_TIMEOUT) -> Handshake:
    """The TLS handshake with the server as the client makes it, then one HEAD request: a
    TLS 1.3 server that wants a client certificate refuses it only after the handshake, with
    an alert on the first read, or (asyncio's TLS, so uvicorn's) by closing the connection.
    Raises ssl.SSLError (and SSLCertVerificationError) or OSError."""
    context = tls_context(settings)
    seen = Handshake(b"")

    def message(_conn, direction, _version, _content_type, msg_type, _data) -> None:
        if direction == "read" and msg_type == ssl._TLSMessageType.CERTIFICATE_REQUEST:
            seen.asked_for_client_certificate = True

    # CPython's hook on OpenSSL's message callback (3.8+, private); without it only the alert tells.
    with contextlib.suppress(AttributeError):
        context._msg_callback = message
    deadline = time.monotonic() + timeout
    with (
        socket.create_connection((target.host, target.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=target.host) as tls,
    ):
        seen.certificate = tls.getpeercert(binary_form=True)
        host = f"[{target.host}]" if ":" in target.host else target.host
        try:
            tls.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}:{target.port}\r\nConnection: close\r\n\r\n".encode())
            tls.settimeout(max(0.1, deadline - time.monotonic()))
            seen.closed_unanswered = not tls.recv(1)
        except TimeoutError:
            pass  # a slow answer is the server check's business
        except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            seen.closed_unanswered = True  # the alert, if one was sent, was lost in the reset
    return seen
