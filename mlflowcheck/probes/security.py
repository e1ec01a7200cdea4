"""Security probes (--security): ask the server what an attacker would try, read-only.

Each probe sends requests and records what the server answered (an ``Observation``); what
that means, and the fix, is decided apart from the asking, in ``posture``. The probes only
read: GET, OPTIONS and a POST to the read-only experiment search. They name files that exist
on every Linux server (/etc/passwd) and never a path that would change anything. The write
probes run only with --security-write, and then only on the run this suite created.
"""

from __future__ import annotations

import ipaddress
import socket

import requests

from mlflowcheck.core.observations import FOREIGN_HOST, FOREIGN_ORIGIN, Answer, CrossOrigin, Exposure
from mlflowcheck.core.target import Target
from mlflowcheck.net.http import anonymous, http

SEARCH = "/api/2.0/mlflow/experiments/search"


def ask(target: Target, method: str, path: str, *, what: str | None = None, **kwargs) -> Answer:
    """One probe request; a request that fails is an answer too (status 0)."""
    request = what or f"{method} {path}"
    try:
        resp = http(method, target.url + path, **kwargs)
    except requests.RequestException as exc:
        return Answer(request, 0, body=str(exc))
    headers = {k.lower(): v for k, v in resp.headers.items()}
    return Answer(request, resp.status_code, headers, resp.text[:4096])


def probe_exposure(target: Target) -> Exposure:
    answer = ask(target, "GET", f"{SEARCH}?max_results=1", what="GET the experiment list without credentials",
                 **anonymous())  # fmt: skip
    try:
        infos = socket.getaddrinfo(target.host, target.port, proto=socket.IPPROTO_TCP)
        addresses = sorted({info[4][0] for info in infos})
    except OSError:
        addresses = []
    loopback = bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)
    return Exposure(answer, addresses, loopback)


def probe_host_header(target: Target) -> Answer:
    return ask(
        target, "GET", f"{SEARCH}?max_results=1", headers={"Host": FOREIGN_HOST},
        what=f"GET the experiment list with Host: {FOREIGN_HOST}",
    )  # fmt: skip


def probe_cross_origin(target: Target) -> CrossOrigin:
    preflight = ask(
        target, "OPTIONS", SEARCH, what=f"preflight (OPTIONS) from Origin {FOREIGN_ORIGIN}",
        headers={"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    simple = ask(
        target, "POST", SEARCH, what=f"POST the experiment search from Origin {FOREIGN_ORIGIN}",
        headers={"Origin": FOREIGN_ORIGIN, "Content-Type": "application/json"}, data='{"max_results": 1}',
    )  # fmt: skip
    plain = ask(
        target, "POST", SEARCH, what=f"POST the experiment search as text/plain from Origin {FOREIGN_ORIGIN}",
        headers={"Origin": FOREIGN_ORIGIN, "Content-Type": "text/plain"}, data='{"max_results": 1}',
    )  # fmt: skip
    return CrossOrigin(preflight, simple, plain)


def traversal_requests(run_id: str, experiment_id: str) -> list[tuple[str, str]]:
    """(what, path) of every traversal probe: encoded and double-encoded ``../`` in artifact
    paths, absolute paths, and run, model and trace identifiers carrying path segments.
    ``../`` stays encoded in paths: an HTTP client would resolve it before sending."""
    up = "%2e%2e%2f" * 8
    return [
        ("artifact download, encoded ../", f"/api/2.0/mlflow-artifacts/artifacts/{up}etc%2fpasswd"),
        ("artifact download, ..%2f", f"/api/2.0/mlflow-artifacts/artifacts/{'..%2f' * 8}etc%2fpasswd"),
        (
            "artifact download, double-encoded ../",
            f"/api/2.0/mlflow-artifacts/artifacts/{'%252e%252e%252f' * 8}etc%252fpasswd",
        ),
        ("artifact listing, absolute path", "/api/2.0/mlflow-artifacts/artifacts?path=/etc"),
        ("artifact listing, ../", f"/api/2.0/mlflow-artifacts/artifacts?path={'../' * 8}etc"),
        ("run artifact, ../", f"/get-artifact?path={'../' * 8}etc/passwd&run_uuid={run_id}"),
        ("run artifact, absolute path", f"/get-artifact?path=/etc/passwd&run_uuid={run_id}"),
        ("run id carrying a path", f"/get-artifact?path=passwd&run_uuid={'../' * 8}etc"),
        ("run artifact listing, ../", f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={'../' * 8}etc"),
        ("model version artifact, ../", f"/model-versions/get-artifact?path={'../' * 8}etc/passwd&name=x&version=1"),
        ("trace id carrying a path", f"/ajax-api/2.0/mlflow/get-trace-artifact?request_id={'../' * 8}etc/passwd"),
        (
            "experiment id carrying a path",
            f"/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}/{'../' * 8}etc",
        ),
        ("static files, encoded ../", f"/static-files/{up}etc%2fpasswd"),
        ("artifact download, ; variant", "/api/2.0/mlflow-artifacts/artifacts/..;/..;/..;/..;/..;/..;/etc/passwd"),
    ]


def probe_traversal(target: Target, run_id: str | None, experiment_id: str | None) -> list[Answer]:
    return [
        ask(target, "GET", path, what=f"{what}: GET {path}", raw_path=True)  # the encoded ../ must arrive encoded
        for what, path in traversal_requests(run_id or "0" * 32, experiment_id or "0")
    ]


def probe_headers(target: Target) -> list[Answer]:
    return [ask(target, "GET", "/", what="the web app (GET /)"), ask(target, "GET", f"{SEARCH}?max_results=1")]


def probe_anonymous_write(target: Target, run_id: str) -> Answer:
    """Try, without credentials, to set a tag on this suite's own run (and take it away again
    if that worked)."""
    tag = {"run_id": run_id, "key": "mlflowcheck.security.write-probe", "value": "anonymous"}
    answer = ask(
        target, "POST", "/api/2.0/mlflow/runs/set-tag", json=tag, what="set a tag on this run without credentials",
        **anonymous(),
    )  # fmt: skip
    if 200 <= answer.status < 300:
        ask(target, "POST", "/api/2.0/mlflow/runs/delete-tag", json={"run_id": run_id, "key": tag["key"]})
    return answer
