"""Is the server (still) there: its version answer, a lost connection told apart from a
refusal, and after one whether the server is down or came back."""

from __future__ import annotations

import re
import time

import requests
import requests.adapters

from mlflowcheck.core.target import Target
from mlflowcheck.net.http import http

VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?([.\w+-]*)$")


def mlflow_version(resp: requests.Response) -> str:
    """The version an answer to GET /version names, or '' when it is not MLflow's answer."""
    text = resp.text.strip()
    return text if resp.status_code == 200 and VERSION_RE.match(text) else ""


#: How a request fails when nothing answers at the address any more (requests, urllib3, MLflow's
#: client, the browser). MLflow's "failed with exception HTTPConnectionPool(" is the connection's
#: failure too, whatever follows: the model worker's messages come shortened, often right there
#: (a timeout also says it, and then the server answers when asked again: no death).
CONNECTION_LOST = re.compile(
    r"Connection refused|Failed to establish a new connection|RemoteDisconnected|Connection aborted|"
    r"connection reset|reset by peer|Max retries exceeded|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|"
    r"ERR_CONNECTION_RESET|failed with exception HTTPS?ConnectionPool\(",
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
