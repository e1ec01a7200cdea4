"""The suite's own HTTP requests: a deadline for the whole answer, a size cap, and credentials
only for the origin the user gave them for, over the TLS settings the user gave."""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings

import requests
import requests.adapters
import urllib3
import urllib3.connection

from mlflowcheck.core.secrets import Credentials, credentials_allowed, env_credentials
from mlflowcheck.net.limits import CONNECT_TIMEOUT, MAX_RESPONSE_BYTES, READ_TIMEOUT, RESPONSE_DEADLINE
from mlflowcheck.net.tls import tls_settings


def auth_from_env() -> dict:
    """Credentials the MLflow client would use, as requests arguments (never printed)."""
    creds = env_credentials()
    if isinstance(creds, Credentials):
        return {"auth": (creds.username, creds.password)}
    if creds:
        return {"headers": {"Authorization": f"Bearer {creds}"}}
    return {}


def tls_from_env() -> dict:
    """TLS as MLflow's client does it, as requests arguments (verify=, cert=), so that the
    suite's own requests see what the client sees."""
    return tls_settings().requests_kwargs()


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
        if key == "headers":  # the caller's own headers (a Range) go with them, not instead
            kwargs["headers"] = {**value, **kwargs.get("headers", {})}
        else:
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


class _RawPathSession(requests.Session):
    """Sends the URL exactly as given: requests re-quotes it and would decode a probe's %2e to '.'."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        prepared.url = request.url
        return prepared


def _read_capped(method: str, url: str, raw_path: bool = False, **kwargs) -> requests.Response:
    with (_RawPathSession if raw_path else requests.Session)() as session:
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
