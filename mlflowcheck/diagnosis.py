"""Diagnosis: what is wrong with a deployment, in which layer, and what to do about it.

The first checks of the suite walk down the layers a deployment has, in order (URI,
network, is it MLflow, versions, access); the later checks (tracking store, artifact store,
models) raise :class:`CheckFailed` through :func:`explain` when the server refuses them.
Every message names the cause and ends with what to do ("Tip: ...").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
from urllib3.util.ssl_ import create_urllib3_context

from mlflowcheck.dberrors import explain_database_error
from mlflowcheck.secrets import Credentials, credentials_allowed, env_credentials, split_credentials

DEFAULT_TRACKING_URI = "http://127.0.0.1:3111"
SEED_SERVER_COMMAND = (
    "mlflow server --host 127.0.0.1 --port 3111 --backend-store-uri sqlite:///my.db "
    "--artifacts-destination ./mlartifacts"
)
#: The first contact has a short deadline and no retries: MLflow's own client retries a
#: dead port for minutes before it gives up.
CONNECT_TIMEOUT = 3.0
#: Longer than MLflow's SQLite store waits for a lock (busy_timeout 20 s) before it answers
#: "database is locked": the suite waits to hear the server's own reason, not a bare time-out.
READ_TIMEOUT = 25.0
#: A whole answer to one of the suite's own requests (probes, the UI's files), and its size.
RESPONSE_DEADLINE = 30.0
MAX_RESPONSE_BYTES = 64 * 2**20


class CheckFailed(Exception):
    """A check found the deployment broken.

    ``fatal`` means the suite could not run at all (exit code 2): there is no MLflow server
    to test at the target.
    """

    def __init__(self, message: str, tip: str | None = None, *, fatal: bool = False):
        super().__init__(message)
        self.message = message
        self.tip = tip
        self.fatal = fatal

    def __str__(self) -> str:
        return f"{self.message}\nTip: {self.tip}" if self.tip else self.message


@dataclass(frozen=True)
class Target:
    """A parsed tracking server address."""

    url: str  # scheme://host:port[/prefix], no trailing slash, no fragment, no user info
    host: str
    port: int
    note: str = ""
    credentials: Credentials | None = field(default=None, repr=False, compare=False)  # from the URI's user info

    def ui_link(self, fragment: str = "") -> str:
        return f"{self.url}/#{fragment}" if fragment else f"{self.url}/"


#: ``host:port`` with no scheme (``127.0.0.1:5000``, ``localhost:5000/mlflow``, ``[::1]:5000``).
SCHEMELESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})(/\S*)?$")


def parse_target(uri: str) -> Target:
    """Layer 1, the URI itself: scheme, host, port, path. Any string gets a Target or a
    CheckFailed; the user info (credentials) is taken out first and never shown."""
    shown, credentials = split_credentials((uri or "").strip())
    if SCHEMELESS.match(shown):
        raise CheckFailed(
            f"The tracking URI {shown!r} has no scheme.",
            f"did you mean http://{shown} ? Pass --tracking-uri http://{shown} (or https:// for a TLS server).",
            fatal=True,
        )
    try:
        parts = urlsplit(shown)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:  # an invalid port, or a bracketed host that is not an IPv6 address
        raise CheckFailed(
            f"The tracking URI {shown!r} cannot be parsed: {exc}.",
            "use an address like http://127.0.0.1:3111 (a port is 1-65535; an IPv6 host is written [::1]).",
            fatal=True,
        ) from None
    if parts.scheme not in ("http", "https"):
        if parts.scheme in ("sqlite", "postgresql", "mysql", "file", "") or "+" in parts.scheme:
            raise CheckFailed(
                f"{shown!r} is not the address of a tracking server: this suite tests a running "
                "`mlflow server` over HTTP.",
                "pass the server's address, e.g. --tracking-uri http://127.0.0.1:3111; a "
                "database or directory URI belongs to the server's --backend-store-uri.",
                fatal=True,
            )
        raise CheckFailed(
            f"The tracking URI {shown!r} has the scheme {parts.scheme!r}; an MLflow server is "
            "reached over http or https.",
            "use an address like http://127.0.0.1:3111.",
            fatal=True,
        )
    if not host or not re.fullmatch(r"[\w.:%-]+", host):
        raise CheckFailed(
            f"The tracking URI {shown!r} has no valid host.",
            "use an address like http://127.0.0.1:3111.",
            fatal=True,
        )
    if port == 0:
        raise CheckFailed(
            f"The tracking URI {shown!r} has port 0.", "use the port the server listens on (1-65535).", fatal=True
        )
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path.rstrip("/")
    if any(c.isspace() for c in path):
        raise CheckFailed(
            f"The tracking URI {shown!r} has white space in its path.",
            "use the server's root address, e.g. http://127.0.0.1:3111.",
            fatal=True,
        )
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port is not None else ""
    note = ""
    if parts.fragment or parts.query:
        # A UI address (http://host:port/#/experiments/1) pasted in: the server is its root.
        note = f"UI address given; testing the server at {urlunsplit((parts.scheme, netloc, path, '', ''))}"
    if re.search(r"/(api|ajax-api)/\d", path) or path.endswith(("/health", "/version")):
        raise CheckFailed(
            f"The tracking URI {shown!r} points at an API path ({path}), not at the server's root.",
            f"use {parts.scheme}://{netloc} as the tracking URI.",
            fatal=True,
        )
    url = urlunsplit((parts.scheme, netloc, path, "", ""))
    return Target(url=url, host=host, port=port, note=note, credentials=credentials)


def check_network(target: Target, timeout: float = CONNECT_TIMEOUT) -> None:
    """Layer 2: something accepts connections at host:port within a short deadline; over
    https, the client's TLS settings can be used and trust the server's certificate (check_tls)."""
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except socket.gaierror:
        raise CheckFailed(
            f"The host {target.host!r} of {target.url} cannot be resolved.",
            "check the spelling of the tracking URI's host.",
            fatal=True,
        ) from None
    except TimeoutError:
        cause = f"no answer within {timeout:.0f}s (a firewall, or the wrong host?)"
    except OSError as exc:
        cause = exc.strerror or str(exc)
    else:
        check_tls(target, timeout)
        return
    tip = (
        f"start the seed's server in the project directory: `{SEED_SERVER_COMMAND}`, or run "
        "this suite with --start-server to let it start one."
        if target.url == DEFAULT_TRACKING_URI
        else f"start the server (mlflow server --host {target.host} --port {target.port} ...), "
        "check the address, or add --start-server to let this suite start one there."
    )
    raise CheckFailed(f"Nothing is listening at {target.host}:{target.port} ({cause}).", tip, fatal=True)


def auth_from_env() -> dict:
    """Credentials the MLflow client would use, as requests arguments (never printed)."""
    creds = env_credentials()
    if isinstance(creds, Credentials):
        return {"auth": (creds.username, creds.password)}
    if creds:
        return {"headers": {"Authorization": f"Bearer {creds}"}}
    return {}


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
            kwargs["verify"] = self.ca_bundle  # with insecure too (MLflow refuses both: check_tls says so)
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


def tls_from_env() -> dict:
    """TLS as MLflow's client does it, as requests arguments (verify=, cert=), so that the
    suite's own requests see what the client sees."""
    return tls_settings().requests_kwargs()


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


TLS_ALERT = re.compile(r"(?:SSLV3|TLSV1\d*)_ALERT_([A-Z_]+)|alert ([a-z ]+)", re.IGNORECASE)
#: TLS alerts of a server that wants a client certificate and got none (or one it does not accept).
CLIENT_CERT_ALERTS = ("certificate required", "handshake failure", "bad certificate", "unknown ca",
                      "certificate unknown", "access denied", "certificate expired")  # fmt: skip


def check_tls(target: Target, timeout: float = CONNECT_TIMEOUT) -> None:
    """Layer 2 over https: the TLS settings can be used, and the handshake with them succeeds.

    A certificate the settings reject, or a client certificate missing or refused, fails here
    with what to change. Other TLS failures (a plain-HTTP server at an https:// address) and
    silences are left to the server check, which tells them apart.
    """
    settings = tls_settings()
    if settings.insecure and settings.ca_bundle:
        raise CheckFailed(
            "Both MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are set: MLflow's client "
            'refuses to run with both ("only one of these environment variables may be set").',
            "unset MLFLOW_TRACKING_INSECURE_TLS to verify the server against the CA bundle (or unset "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to turn verification off, for tests only).",
            fatal=True,
        )
    if not target.url.startswith("https:"):
        return
    try:
        tls_context(settings)
    except (OSError, ValueError) as exc:
        raise unusable_tls_file(settings, exc) from None
    try:
        seen = server_certificate(target, settings, timeout)
    except ssl.SSLCertVerificationError as exc:
        raise certificate_rejected(target, settings, exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:
        found = TLS_ALERT.search(str(exc))
        alert = (found.group(1) or found.group(2)).replace("_", " ").lower().strip() if found else ""
        if alert in CLIENT_CERT_ALERTS:
            raise client_certificate_refused(target, settings, f"TLS alert: {alert}") from None
        return  # another TLS failure (a plain-HTTP server?): the server check tells which
    except OSError:
        return  # reset, timed out: the server check tells a plain-HTTP or silent server apart
    if seen.asked_for_client_certificate and seen.closed_unanswered:
        raise client_certificate_refused(
            target, settings, "it asked for one in the handshake, then closed the connection"
        )


def unusable_tls_file(settings: TlsSettings, exc: BaseException) -> CheckFailed:
    why = first_line(getattr(exc, "strerror", None) or str(exc), 200)
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
    where = f"{target.host}:{target.port}"
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
    where = f"{target.host}:{target.port}"
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


def anonymous() -> dict:
    """Request arguments that send no credentials (and none from ~/.netrc)."""
    return {"auth": lambda r: r, "headers": {}}


class ResponseDeadline(requests.Timeout):
    """No complete answer within the deadline (a silent server, or one that drips its answer)."""


class ResponseTooLarge(requests.RequestException):
    """The answer is larger than the suite reads."""


def http(method: str, url: str, *, deadline: float = RESPONSE_DEADLINE, **kwargs) -> requests.Response:
    """One of the suite's own requests: a whole-answer deadline and a size cap.

    requests' timeouts apply to each read, so a server that drips one byte a second would never
    time out. The request runs in a thread; at the deadline its sockets are shut down, which ends
    any read it is blocked in, and the thread is gone before this returns: nothing of a request
    given up on (a thread, an open connection) outlives the call.
    """
    kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
    tls = tls_from_env()
    for key, value in tls.items():
        kwargs.setdefault(key, value)
    # Credentials go only where the user sent them: the tracking URI's origin, over the TLS
    # settings the user gave. Any other request (another scheme, a probe with verification
    # off) is anonymous, ~/.netrc included.
    same_tls = all(kwargs.get(key) == tls.get(key) for key in ("verify", "cert"))
    for key, value in (auth_from_env() if same_tls and credentials_allowed(url) else anonymous()).items():
        kwargs.setdefault(key, value)
    box: dict = {}
    sockets: list[socket.socket] = []

    def fetch() -> None:
        _watched.sockets = sockets
        try:
            box["response"] = _read_capped(method, url, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=fetch, name="mlflowcheck-http", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        for sock in list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        worker.join(5.0)  # the read it was blocked in has ended; the response is being closed
        raise ResponseDeadline(f"no complete answer within {deadline:g}s")
    if "error" in box:
        raise box["error"]
    return box["response"]


#: The sockets the current thread's request opened (set per request thread by http()).
_watched = threading.local()


class _WatchedConnection:
    """A urllib3 connection that hands its socket to http(), so the deadline can end it."""

    def connect(self) -> None:
        super().connect()
        getattr(_watched, "sockets", []).append(self.sock)


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = type("WatchedHTTPConnection", (_WatchedConnection, urllib3.connection.HTTPConnection), {})


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = type("WatchedHTTPSConnection", (_WatchedConnection, urllib3.connection.HTTPSConnection), {})


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        return manager


def _read_capped(method: str, url: str, **kwargs) -> requests.Response:
    with requests.Session() as session:
        adapter = _WatchedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with warnings.catch_warnings():
            # verify=False was asked for (MLFLOW_TRACKING_INSECURE_TLS); no warning per request.
            warnings.simplefilter("ignore", category=urllib3.exceptions.InsecureRequestWarning)
            resp = session.request(method, url, allow_redirects=False, stream=True, **kwargs)
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ResponseTooLarge(f"the answer is larger than {MAX_RESPONSE_BYTES // 2**20} MiB")
                chunks.append(chunk)
        finally:
            resp.close()
    resp._content = b"".join(chunks)  # requests' own cache of the body: .text and .json() use it
    return resp


VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?([.\w+-]*)$")


def mlflow_version(resp: requests.Response) -> str:
    """The version an answer to GET /version names, or '' when it is not MLflow's answer."""
    text = resp.text.strip()
    return text if resp.status_code == 200 and VERSION_RE.match(text) else ""


def check_is_mlflow(target: Target) -> str:
    """Layer 3: what answers is an MLflow server. Returns the server's version string.

    ``/health`` answering 200 proves little (a login page or another web app answers 200 on
    every path), so look at ``/version`` and at a real API call's JSON.
    """
    try:
        resp = http("GET", f"{target.url}/version")
    except requests.Timeout:
        raise CheckFailed(
            f"{target.url} accepted the connection but did not answer GET /version completely within "
            f"{RESPONSE_DEADLINE:g}s (it sent nothing, or too slowly).",
            "the server may be starting, overloaded or hung, or something else holds the port; look at its "
            "log, then run again.",
            fatal=True,
        ) from None
    except requests.RequestException as exc:
        raise scheme_problem(target) or CheckFailed(
            f"{target.url} accepted the connection but the HTTP request failed: {first_line(str(exc), 200)}.",
            "check the tracking URI's scheme and port, and any proxy in between.",
            fatal=True,
        ) from None
    if resp.status_code == 400 and "HTTPS" in resp.text and target.url.startswith("http:"):
        raise scheme_problem(target) or CheckFailed(f"GET /version answered {describe_response(resp)}.", fatal=True)
    gateway = sign_in_page(resp)
    if gateway:
        raise CheckFailed(
            f"{target.url} answered GET /version with an HTML page ({gateway}), not MLflow: a proxy or "
            "single sign-on gateway in front of the server answers with its own page.",
            "MLflow's client (and this suite) cannot log in through a web form: let the API paths (/api/, "
            "/ajax-api/, /version, /mlflow-artifacts/) through to MLflow with credentials a client can send "
            "(basic auth, or a bearer token in MLFLOW_TRACKING_TOKEN).",
            fatal=True,
        )
    if resp.status_code in (401, 403):
        return ""  # protected: the access layer says what to do
    version = mlflow_version(resp)
    if not version:
        found = where_mlflow_answers(target)
        if found:
            raise CheckFailed(
                f"MLflow does not answer at {target.url} (GET /version answered HTTP {resp.status_code}), "
                f"but it does at {found}: the server, or the proxy in front of it, serves it under "
                f"{urlsplit(found).path or 'the root'}.",
                f"use --tracking-uri {found}",
                fatal=True,
            )
        seen = describe_response(resp)
        proxy = reverse_proxy(resp)
        if proxy:
            raise CheckFailed(
                f"A reverse proxy ({proxy}) answers at {target.url}, with its own page for GET /version ({seen}): "
                "MLflow is probably mounted under a path on it that the tracking URI lacks.",
                "find that path in the proxy's configuration (nginx: the `location` block that proxies to MLflow; "
                "Apache: ProxyPass; Caddy: handle_path; Traefik: the router's PathPrefix) and in the server's "
                "--static-prefix, then add it to the URI, e.g. --tracking-uri "
                f"{urlsplit(target.url).scheme}://{urlsplit(target.url).netloc}/mlflow-prefix.",
                fatal=True,
            )
        raise CheckFailed(
            f"{target.url} is not an MLflow server: GET /version answered {seen}.",
            "check the port: another service is listening there. Point --tracking-uri at "
            "the MLflow server (the port given to `mlflow server --port`).",
            fatal=True,
        )
    return version


#: Reverse proxies by the Server header they send, and by the error pages they write when they
#: send none (Traefik's "404 page not found", Envoy's "no healthy upstream").
PROXY_SERVERS = re.compile(r"\b(nginx|openresty|Apache|Caddy|Traefik|envoy|HAProxy|Kong|awselb)\b", re.IGNORECASE)
PROXY_PAGES = {
    "nginx": re.compile(r"<center>nginx(/[\d.]+)?</center>"),
    "Apache": re.compile(r"<address>Apache(/[\d.]+)?.* Server at ", re.DOTALL),
    "Traefik": re.compile(r"^404 page not found\s*$"),
    "Envoy": re.compile(r"^(no healthy upstream|upstream connect error)"),
}


def reverse_proxy(resp: requests.Response) -> str:
    """The reverse proxy that wrote an answer itself, else ''. By its error page; or by its
    Server header with an empty or one-line body (Caddy's 404 has no body). A page of an app
    behind the proxy carries the proxy's Server header too, so the header alone is not enough."""
    page = next((name for name, page in PROXY_PAGES.items() if page.search(resp.text)), "")
    if page:
        return page
    named = PROXY_SERVERS.search(resp.headers.get("server", ""))
    return named.group(1) if named and len(resp.text.strip()) < 40 and "<" not in resp.text else ""


def sign_in_page(resp: requests.Response) -> str:
    """'a page titled ...' when an answer is an HTML login page (a gateway's), else ''."""
    if "html" not in resp.headers.get("content-type", "") or resp.status_code not in (200, 401, 403):
        return ""
    text = resp.text
    if not re.search(r'type=["\']?password|sign[ -]?in|log[ -]?in|single sign-on|\bSSO\b', text, re.IGNORECASE):
        return ""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return f"titled {html_text(title.group(1))!r}" if title else "a login form"


#: Path prefixes MLflow is commonly mounted under behind a proxy (also --static-prefix).
COMMON_PREFIXES = ("/mlflow",)


def where_mlflow_answers(target: Target) -> str | None:
    """Where MLflow does answer when it does not at the target: the bare host (a prefix too
    many), a common prefix (one too few), or the prefix the root page's scripts name."""
    parts = urlsplit(target.url)
    root = f"{parts.scheme}://{parts.netloc}"
    candidates = [root] if parts.path else []
    candidates += [root + prefix for prefix in COMMON_PREFIXES if parts.path != prefix]
    try:
        page = http("GET", root + "/", deadline=RESPONSE_DEADLINE / 2)
        named = re.search(r'(?:src|href)="(/[^"]*?)/static-files/', page.text)
        if named and named.group(1) != parts.path:
            candidates.insert(0, root + named.group(1))
    except requests.RequestException:
        pass
    for candidate in candidates:
        try:
            resp = http("GET", f"{candidate}/version", deadline=RESPONSE_DEADLINE / 2)
        except requests.RequestException:
            continue
        if mlflow_version(resp):
            return candidate
    return None


#: How a request fails when nothing answers at the address any more (requests, urllib3, MLflow's
#: client, the browser).
CONNECTION_LOST = re.compile(
    r"Connection refused|Failed to establish a new connection|RemoteDisconnected|Connection aborted|"
    r"connection reset|reset by peer|Max retries exceeded|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|"
    r"ERR_CONNECTION_RESET",
    re.IGNORECASE,
)


def connection_lost(exc: BaseException, text: str = "") -> bool:
    """Whether a failure is the connection itself: the server is gone (or restarting)."""
    return isinstance(exc, requests.ConnectionError) or bool(CONNECTION_LOST.search(f"{exc} {text}"))


def ask_version(target: Target) -> requests.Response:
    """GET /version with short deadlines: does the server still answer? Raises on a lost connection."""
    return http("GET", f"{target.url}/version", timeout=(1.0, 2.0), deadline=3.0)


def server_fate(target: Target, wait: float = 2.0) -> str:
    """After a lost connection: "up" (it answers at once: it never went away), "back" (it did not
    answer, then did within ``wait`` seconds: restarted), or "down"."""
    end = time.monotonic() + wait
    first = True
    while True:
        try:
            resp = ask_version(target)
            if resp.status_code in (200, 401, 403):
                return "up" if first else "back"
        except requests.RequestException:
            pass
        first = False
        if time.monotonic() >= end:
            return "down"
        time.sleep(0.5)


def versions_seen(target: Target, tries: int = 4) -> list[str]:
    """The MLflow versions that answer GET /version over a few requests: behind a load
    balancer each may reach another replica, and replicas of different versions show here."""
    seen = set()
    for _ in range(tries):
        try:
            resp = http("GET", f"{target.url}/version")
        except requests.RequestException:
            continue
        version = mlflow_version(resp)
        if version:
            seen.add(version)
    return sorted(seen)


def replicas_disagree(target: Target, path: str, what: str, tries: int = 6) -> CheckFailed | None:
    """Something just created is not found: ask again a few times. Found by some requests and
    not by others means the replicas behind the address keep different tracking stores."""
    statuses = []
    for _ in range(tries):
        try:
            statuses.append(http("GET", target.url + path).status_code)
        except requests.RequestException:
            statuses.append(0)
    if 200 in statuses and any(s in (400, 404) for s in statuses):
        return CheckFailed(
            f"The replicas behind {target.url} do not share one tracking store: {what}, created a moment ago, "
            f"is found by some requests and not by others ({tries} GETs answered HTTP "
            f"{', '.join(map(str, statuses))}).",
            "point every replica's --backend-store-uri at the same database (and the same "
            "--artifacts-destination); replicas with their own SQLite files behind a load balancer lose runs "
            "at random.",
        )
    return None


def scheme_problem(target: Target) -> CheckFailed | None:
    """The request failed: does the server answer with the other scheme? Then say which works.

    An https:// address of a plain-HTTP server fails the TLS handshake; an http:// address of
    a TLS server gets its connection reset (or a proxy's 400 "plain HTTP request was sent to
    HTTPS port"). The probe over the other scheme does not verify certificates: it only asks
    which scheme the server speaks.
    """
    scheme, rest = target.url.split("://", 1)
    other = "http" if scheme == "https" else "https"
    try:
        resp = http("GET", f"{other}://{rest}/version", verify=False, deadline=RESPONSE_DEADLINE / 2)
    except requests.RequestException:
        return None
    if resp.status_code not in (200, 401, 403):
        return None
    if other == "http":
        return CheckFailed(
            f"{target.url} speaks plain HTTP, not HTTPS: the TLS handshake failed, and http://{rest} answers.",
            f"use --tracking-uri http://{rest} (or put a TLS-terminating proxy in front of the server).",
            fatal=True,
        )
    return CheckFailed(
        f"{target.url} speaks HTTPS, not plain HTTP: the plain request was refused, and https://{rest} answers.",
        f"use --tracking-uri https://{rest}; if its certificate is not signed by a CA this machine trusts, "
        "set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle (or MLFLOW_TRACKING_INSECURE_TLS=true).",
        fatal=True,
    )


def check_api(target: Target) -> None:
    """Layer 5, access: a real API call answers JSON with our credentials."""
    url = f"{target.url}/api/2.0/mlflow/experiments/search"
    resp = http("GET", url, params={"max_results": 1})
    if resp.status_code == 401:
        have = "the credentials in MLFLOW_TRACKING_USERNAME/PASSWORD were refused"
        if not auth_from_env():
            have = "no credentials were given"
        proxy = answered_by(resp.headers.get("server", ""))
        if auth_from_env() and proxy.startswith("The reverse proxy"):
            have += (
                f". {proxy} may also be dropping the Authorization header on the way: then the server "
                "answers as if no credentials arrived (nginx: look for a `proxy_set_header Authorization` line)"
            )
        raise CheckFailed(
            f"The server requires authentication (HTTP 401) and {have}.",
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "to an account on this server, then run again; if they are right, check the proxy's configuration.",
        )
    if resp.status_code == 403 and "Invalid Host header" in resp.text:
        netloc = urlsplit(target.url).netloc
        raise CheckFailed(
            f"The server's host protection rejects the address this client uses (Host: {netloc}): "
            f"{server_message(resp)}",
            f"add it to the server's allowed hosts (`mlflow server --allowed-hosts '{netloc},...'`), "
            "or reach the server by a name it already allows.",
        )
    if resp.status_code == 403:
        raise permission_denied(f"GET {urlsplit(url).path}", server_message(resp))
    known = known_server_error(server_message(resp)) if resp.status_code >= 400 else None
    if known is not None:  # MLflow's own JSON error: the server answers, its store fails
        raise known
    if resp.status_code != 200 or "json" not in resp.headers.get("content-type", ""):
        raise CheckFailed(
            f"GET {url} answered {describe_response(resp)}, not the JSON an MLflow server sends.",
            "check that the tracking URI is the server's root and no proxy rewrites /api paths.",
            fatal=resp.status_code == 404,
        )


def check_versions(client_version: str, server_version: str) -> str:
    """Layer 4: client and server versions. Returns a note on minor skew."""
    if not server_version:
        return "server version not visible before authentication"
    client = _major_minor(client_version)
    server = _major_minor(server_version)
    if server[0] != client[0]:
        raise CheckFailed(
            f"The server runs MLflow {server_version} and this client MLflow {client_version}: "
            f"a {server[0]}.x server lacks APIs a {client[0]}.x client uses (logged models, "
            "model artifacts).",
            f"upgrade the server to MLflow {client[0]}.x (pip install -U 'mlflow=={client_version}' "
            f"on the server host), or pin the client to mlflow=={server_version}.",
        )
    if server != client:
        return f"minor skew: server {server_version}, client {client_version}"
    return ""


def _major_minor(version: str) -> tuple[int, int]:
    nums = re.findall(r"\d+", version)
    return (int(nums[0]), int(nums[1]) if len(nums) > 1 else 0)


def describe_response(resp: requests.Response) -> str:
    ctype = resp.headers.get("content-type", "no content type").split(";")[0]
    server = resp.headers.get("server")
    body = " ".join(resp.text.split())[:120]
    bits = [f"HTTP {resp.status_code}", ctype]
    if server:
        bits.append(f"server header {server!r}")
    return f"{', '.join(bits)}: {body!r}"


def server_message(resp: requests.Response) -> str:
    """The server's own error text: MLflow's JSON message, else a hint about an HTML page."""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    text = html_text(resp.text)
    if "html" in resp.headers.get("content-type", "") and (not text or "<html" in resp.text.lower()):
        page = f": {first_line(text, 200)}" if text else ""
        return f"HTTP {resp.status_code} with an HTML error page{page} (look in the server's log)"
    return f"HTTP {resp.status_code}: {first_line(text, 400)}" if text else describe_response(resp)


def explain(exc: BaseException) -> CheckFailed:
    """Turn an exception from the MLflow client into a message with a cause and a tip."""
    if isinstance(exc, CheckFailed):
        return exc
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException) and exc.error_code == "PERMISSION_DENIED":
        return permission_denied("the request", first_line(exc.message))
    if isinstance(exc, MlflowException):
        text = exc.message
        if "403" in text and "Permission denied" in text:  # an artifact request, through the client
            return permission_denied("an artifact request", first_line(server_text(text)))
        known = known_server_error(text)
        if known is not None:
            return known
        gateway = proxy_gave_up(status_in(text), text)
        if gateway is not None:
            return gateway
        if isinstance(exc, RestException):
            tip = {
                "UNAUTHENTICATED": "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.",
            }.get(exc.error_code, "look in the server's log for the request that failed.")
            return CheckFailed(f"The server refused the request ({exc.error_code}): {first_line(text)}", tip)
        if "too many" in text and "error responses" in text:
            return CheckFailed(
                f"The server kept answering with errors: {first_line(text)}",
                "the server failed internally; its log says why.",
            )
        if "<html" in text.lower() or "<!doctype" in text.lower():
            return CheckFailed(
                f"The server answered with an HTML error page: {first_line(html_text(text))}",
                "the server (or a proxy in front of it) failed; look in the server's log.",
            )
        return CheckFailed(first_line(text), "look in the server's log for the request that failed.")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return explain_http_error(exc.response)
    if isinstance(exc, requests.Timeout):
        return CheckFailed(f"The server did not answer in time: {exc}", "is it overloaded or hung? Look at its log.")
    if isinstance(exc, requests.ConnectionError):
        return CheckFailed(
            f"The connection to the server failed: {first_line(str(exc))}",
            "the server stopped answering during the run; check that it is still up.",
        )
    return CheckFailed(
        f"{type(exc).__name__}: {first_line(str(exc))}",
        "this is unexpected; run again with --verbose to see the traceback.",
    )


def explain_http_error(resp: requests.Response) -> CheckFailed:
    """A failed request the client made directly (artifact uploads and downloads)."""
    said = server_message(resp)
    if resp.status_code == 403 and "Invalid Host header" not in said:
        return permission_denied(f"{resp.request.method} {urlsplit(resp.url).path}", said)
    known = known_server_error(said)
    if known is not None:
        return known
    request = f"{resp.request.method} {urlsplit(resp.url).path}" if resp.request is not None else resp.url
    if "/mlflow-artifacts/" in resp.url and resp.status_code >= 500:
        store = object_store_error(resp.url.split("/api/2.0/mlflow-artifacts/")[0])
        if store is not None:
            return store
        return CheckFailed(
            f"The server failed to handle an artifact ({request} answered {said}).",
            "the server's artifact store is failing: check that its --artifacts-destination exists, "
            "is writable by the server process and has free space; the server's log names the error.",
        )
    return CheckFailed(f"{request} answered {said}.", "look in the server's log for this request.")


def proxy_gave_up(status: int | None, text: str) -> CheckFailed | None:
    """502/503/504 written by a named reverse proxy: the proxy's side of the story."""
    by = answered_by(text)
    if status not in (502, 503, 504) or not by.startswith("The reverse proxy"):
        return None
    if status == 504:
        return CheckFailed(
            f"{by} gave up waiting for the server (HTTP 504 Gateway Time-out): the server took longer than the "
            "proxy's read timeout. The server itself may still have done the work.",
            "raise the proxy's timeout for MLflow (nginx: `proxy_read_timeout 300s;`, with proxy_send_timeout "
            "to match), then find out why the server was that slow (its log, its database).",
        )
    return CheckFailed(
        f"{by} could not get an answer from the server (HTTP {status}): the server is down, restarting, "
        "overloaded, or closed the connection.",
        "look at the server processes and their log; the proxy's error log names the upstream it tried.",
    )


def status_in(text: str) -> int | None:
    """The HTTP status an MLflow client error names ("failed with error code 413 != 200")."""
    match = re.search(r"error code (\d{3})|HTTP (\d{3})|(\d{3}) (?:error responses|Request Entity)", text)
    return int(next(g for g in match.groups() if g)) if match else None


#: Reverse proxies and gateways recognised in the error pages they write.
PROXIES = ("nginx", "Apache", "envoy", "Traefik", "HAProxy", "cloudflare", "Caddy", "AWS ELB", "Kong")


def answered_by(text: str) -> str:
    """Who wrote an error page: the reverse proxy it names, else 'the server or a proxy in front of it'."""
    for name in PROXIES:
        if re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE):
            return f"The reverse proxy in front of the server ({name})"
    return "The server (or a proxy in front of it)"


def permission_denied(what: str, said: str) -> CheckFailed:
    """HTTP 403 from MLflow's auth app (or a proxy): a permission, never a storage problem."""
    creds = env_credentials()
    who = f"the account {creds.username!r}" if isinstance(creds, Credentials) else "these credentials"
    if creds is None:
        who = "an anonymous client"
    return CheckFailed(
        f"The server does not allow {who} to do this: {what} answered HTTP 403 ({said}).",
        "this is a permission, not a storage problem. An admin grants it: with MLflow's basic-auth app, "
        "EDIT on the registered model (`mlflow.server.get_app_client('basic-auth', tracking_uri=URL)"
        ".create_registered_model_permission(NAME, USER, 'EDIT')`, or POST "
        "/api/2.0/mlflow/registered-models/permissions/create) or on the experiment "
        "(create_experiment_permission); or use --registered-model with a model this account may edit.",
    )


#: What S3-compatible stores say (botocore passes the message on; MLflow's artifact listing
#: quotes it), and the error code each message belongs to.
S3_MESSAGES = {
    "The specified bucket does not exist": "NoSuchBucket",
    "The AWS Access Key Id you provided does not exist": "InvalidAccessKeyId",
    "The request signature we calculated does not match": "SignatureDoesNotMatch",
    "Access Denied": "AccessDenied",
    "Unable to locate credentials": "NoCredentialsError",
    "The provided token has expired": "ExpiredToken",
}


def object_store_error(server: str) -> CheckFailed | None:
    """An artifact upload failed with a bare 500: the server's artifact listing quotes what its
    object store said, so ask it, and name the store's own error code."""
    try:
        resp = http("GET", f"{server}/api/2.0/mlflow-artifacts/artifacts", params={"path": ""})
    except requests.RequestException:
        return None
    said = server_message(resp) if resp.status_code != 200 else ""
    for message, code in S3_MESSAGES.items():
        if message.lower() in said.lower():
            return known_server_error(f"{code}: {said}")
    return known_server_error(said) if said and "Errno" in said else None


def html_text(markup: str) -> str:
    """The words of an HTML page (or of plain text), on one line."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def first_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).strip().splitlines()[:3])
    return line[:limit] + ("…" if len(line) > limit else "")


#: Server-side failures recognised in the server's own error message: (pattern, cause, tip). The
#: database's errors have a table of their own (mlflowcheck.dberrors), tried first.
KNOWN_SERVER_ERRORS = [
    (
        r"NoSuchBucket|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|InvalidBucketName|"
        r"NoCredentialsError|Unable to locate credentials|ExpiredToken",
        "The server's object store refused the artifact request: {match}",
        "the fix is on the server's side (clients need no object-store credentials when artifacts are proxied): "
        "NoSuchBucket, create the bucket named in --artifacts-destination or fix its name; InvalidAccessKeyId, "
        "SignatureDoesNotMatch or no credentials, fix the AWS credentials in the server's environment (and "
        "MLFLOW_S3_ENDPOINT_URL for a non-AWS store); AccessDenied, grant the server's identity "
        "s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket.",
    ),
    (
        r"Permission denied|Errno 13|Read-only file system|Errno 30|Not a directory|Errno 20",
        "The server cannot write to its artifact store",
        "make the server's --artifacts-destination a directory the server process can write, "
        "then restart `mlflow server`.",
    ),
    (
        r"No space left on device|Errno 28",
        "The server's disk is full",
        "free space where the server keeps its artifacts and database.",
    ),
]


def known_server_error(text: str, quote: bool = True) -> CheckFailed | None:
    """The cause and fix for a server error message we recognise (quoting it, if asked; a
    database error always quotes the database's own words, shortened)."""
    database = explain_database_error(server_text(text))
    if database is not None:
        return CheckFailed(database.message, database.tip)
    for pattern, cause, tip in KNOWN_SERVER_ERRORS:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            said = f" The server said: {first_line(server_text(text))}" if quote else ""
            return CheckFailed(f"{cause.format(match=match.group(0))}.{said}", tip)
    return None


def server_text(text: str) -> str:
    """The server's message inside an MLflow client error, without the client's wrapping."""
    match = re.search(r"Response body: '(.*)'", text, re.DOTALL)
    body = match.group(1) if match else text
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and payload.get("message"):
            return str(payload["message"])
    except ValueError:
        pass
    return body


def keep_server_error_bodies() -> None:
    """Make MLflow's client return 5xx answers after its retries, so we can show their body.

    By default the client raises "too many 500 error responses" and drops what the server
    said (e.g. https://github.com/mlflow/mlflow/issues/15455); with raise_on_status off, the client's
    own response check raises an error that carries the server's message.
    """
    from mlflow.utils import rest_utils

    original = getattr(rest_utils, "_get_http_response_with_retries", None)
    if original is None or getattr(original, "keeps_error_bodies", False):
        return

    def get_with_retries(
        method, url, max_retries, backoff_factor, backoff_jitter, retry_codes, raise_on_status=True, *args, **kwargs
    ):
        return original(method, url, max_retries, backoff_factor, backoff_jitter, retry_codes, False, *args, **kwargs)

    get_with_retries.keeps_error_bodies = True
    rest_utils._get_http_response_with_retries = get_with_retries
