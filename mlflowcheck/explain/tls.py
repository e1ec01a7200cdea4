"""TLS failures in words: a file that cannot be used, a certificate not trusted, a client
certificate missing or refused, each with the variable to set."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from urllib3.util.ssl_ import create_urllib3_context

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.target import Target
from mlflowcheck.explain.text import first_lines
from mlflowcheck.net.tls import TlsSettings, _no_passphrase

TLS_ALERT = re.compile(r"(?:SSLV3|TLSV1\d*)_ALERT_([A-Z_]+)|alert ([a-z ]+)", re.IGNORECASE)


#: TLS alerts of a server that wants a client certificate and got none (or one it does not accept).
CLIENT_CERT_ALERTS = ("certificate required", "handshake failure", "bad certificate", "unknown ca",
                      "certificate unknown", "access denied", "certificate expired")  # fmt: skip


def unusable_tls_file(settings: TlsSettings, exc: BaseException) -> CheckFailed:
    why = first_lines(getattr(exc, "strerror", None) or str(exc), 200)
    if settings.ca_bundle and not os.path.exists(settings.ca_bundle):
        return CheckFailed(
            f"MLFLOW_TRACKING_SERVER_CERT_PATH={settings.ca_bundle} does not exist.",
            "set it to the PEM file of the CA (or CA bundle) that signed the server's certificate.",
            fatal=True,
        )
    if settings.client_cert:
        try:
            create_urllib3_context().load_cert_chain(settings.client_cert, password=_no_passphrase)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                if "PRIVATE KEY-----" not in Path(settings.client_cert).read_text(errors="replace"):
                    why = "the file holds no private key"
            return CheckFailed(
                f"The client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH={settings.client_cert} cannot be used: "
                f"{why}. MLflow's client passes this one file to requests as cert=, so it must hold the "
                "certificate and its private key, unencrypted.",
                "make one PEM file of both: `cat client.crt client.key > client.pem` (decrypt an encrypted key "
                "first: `openssl pkey -in client.key -out client-plain.key`), and point the variable at it.",
                fatal=True,
            )
    bundle = next(iter(settings.ca_locations().values()))
    named = f"MLFLOW_TRACKING_SERVER_CERT_PATH={bundle}" if settings.ca_bundle else f"{bundle} (requests' default)"
    return CheckFailed(
        f"The CA bundle {named} cannot be read as certificates: {why}.",
        "set MLFLOW_TRACKING_SERVER_CERT_PATH to a PEM file (-----BEGIN CERTIFICATE-----) of the CA that signed "
        "the server's certificate.",
        fatal=True,
    )


def certificate_rejected(target: Target, settings: TlsSettings, why: str) -> CheckFailed:
    where = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    if "mismatch" in why or "doesn't match" in why or "not valid for" in why:
        return CheckFailed(
            f"The TLS certificate of {where} is not issued to {target.host!r}: {why}.",
            f"use the host name the certificate names in --tracking-uri, or reissue the certificate with "
            f"{target.host} in its subjectAltName.",
            fatal=True,
        )
    trusted = (
        f"the CA bundle MLFLOW_TRACKING_SERVER_CERT_PATH={settings.ca_bundle}"
        if settings.ca_bundle
        else "the CAs this client trusts (no MLFLOW_TRACKING_SERVER_CERT_PATH is set)"
    )
    tip = (
        "set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA that signed the server's certificate (`openssl s_client "
        f"-connect {where} -showcerts` shows who signed it)"
    )
    if "expired" in why or "not yet valid" in why:
        tip = "renew the server's certificate (or fix this machine's clock)"
    elif not settings.ca_bundle:
        tip += ", or, for a test server only, MLFLOW_TRACKING_INSECURE_TLS=true"
    return CheckFailed(
        f"The TLS certificate of {where} is not trusted: {why}. It was checked against {trusted}, as MLflow's "
        "client checks it, so the client, this suite and its browser refuse the server.",
        f"{tip}.",
        fatal=True,
    )


def client_certificate_refused(target: Target, settings: TlsSettings, said: str) -> CheckFailed:
    where = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    if not settings.client_cert:
        return CheckFailed(
            f"The server at {where} requires a TLS client certificate and none was given ({said}).",
            "set MLFLOW_TRACKING_CLIENT_CERT_PATH to one PEM file holding your client certificate and its "
            "private key (`cat client.crt client.key > client.pem`).",
            fatal=True,
        )
    return CheckFailed(
        f"The server at {where} refused the client certificate MLFLOW_TRACKING_CLIENT_CERT_PATH="
        f"{settings.client_cert} ({said}).",
        "use a certificate signed by a CA the server accepts (uvicorn's --ssl-ca-certs, nginx's "
        "ssl_client_certificate), and not expired.",
        fatal=True,
    )
