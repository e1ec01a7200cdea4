"""Missing, not broken: a server's answer that says it has no such endpoint, or a version of
MLflow's server older than the API; each turned into an ``Unsupported`` that names the endpoint
and the product (pure: no requests)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from mlflowcheck.core.errors import Unsupported
from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.explain.text import first_lines, html_text

#: The oldest MLflow server this suite supports: no Tip recommends an older one.
OLDEST_SUPPORTED = "3.1.4"

#: The headers an answer keeps (the rest says nothing about who answered or why).
KEPT_HEADERS = ("server", "content-type", "www-authenticate", "location")


def answer_of(resp, body_limit: int = 2000) -> Answer:
    """A requests.Response as plain data: the request ("POST /api/2.0/..."), status, headers, body."""
    request = getattr(resp, "request", None)
    method = getattr(request, "method", None) or "GET"
    headers = {name: resp.headers[name] for name in KEPT_HEADERS if name in resp.headers}
    try:
        body = resp.text[:body_limit]
    except Exception:  # a stream already consumed, an undecodable body
        body = ""
    return Answer(f"{method} {urlsplit(resp.url).path}", resp.status_code, headers, body)


def error_code(answer: Answer) -> str:
    """MLflow's JSON error code in an answer ("ENDPOINT_NOT_FOUND"), else ''."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        return ""
    return str(payload.get("error_code") or "") if isinstance(payload, dict) else ""


def said(answer: Answer) -> str:
    """What an answer says, short: "HTTP 404 ENDPOINT_NOT_FOUND: Not found"."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        words = " ".join(str(payload.get(k) or "") for k in ("error_code", "message")).strip()
        if words:
            return f"HTTP {answer.status} {first_lines(words, 200)}"
    text = html_text(answer.body)
    return f"HTTP {answer.status}" + (f": {first_lines(text, 120)!r}" if text else "")


#: The paths of MLflow's APIs (an HTML 404 elsewhere says nothing about the API).
API_PATHS = ("/api/", "/ajax-api/", "/v1/traces")


def is_unsupported(answer: Answer) -> bool:
    """The server (or the proxy in front) says the endpoint does not exist: 404 with MLflow's
    ENDPOINT_NOT_FOUND or with no JSON at all (an HTML or text 404 page), 501 Not Implemented,
    405 for a path the API defines. A 404 about data (RESOURCE_DOES_NOT_EXIST) is not this."""
    code = error_code(answer)
    if code == "ENDPOINT_NOT_FOUND" or answer.body.startswith("ENDPOINT_NOT_FOUND"):  # FastTrackML's artifact 500s
        return answer.status in (404, 405, 500, 501)
    api = any(part in answer.request for part in API_PATHS) and "/mlflow-artifacts/" not in answer.request
    if not api:  # a missing artifact is lost data, not a missing feature
        return False
    return answer.status in (501, 405) or (
        answer.status == 404 and not code and "json" not in answer.headers.get("content-type", "")
    )


def unsupported(answer: Answer | None, implementation: Implementation | None = None) -> Unsupported:
    """The message for an endpoint the server lacks: which endpoint, which product, and what to do."""
    server = implementation.name if implementation else "The server"
    endpoint = answer.request if answer else ""
    what = endpoint or "an endpoint this check needs (the request was not recorded)"
    seen = f" It answered {said(answer)}." if answer else ""
    message = f"{server} does not implement {what}.{seen}"
    if implementation is not None and not implementation.is_mlflow:
        tip = (
            f"{implementation.product} implements only part of MLflow's REST API; this feature is missing there, "
            "not broken (the support matrix below lists what it has). Use MLflow's own server where you need it."
        )
    elif answer is not None and not error_code(answer) and answer.status == 404:
        tip = (
            "the server's MLflow may be older than this API (upgrade it to a recent 3.x; this suite supports 3.1.4 "
            "and newer), or a proxy in front of it does not pass this path on (check its routes for /api/ and "
            "/ajax-api/)."
        )
    else:
        tip = (
            "the server's MLflow is older than this API, or a plugin replaced its routes: upgrade the server to a "
            "recent MLflow 3.x (this suite supports 3.1.4 and newer; the client here is newer), then run again."
        )
    return Unsupported(message, tip, endpoint=endpoint)


def not_in_version(check: str, since: str, implementation: Implementation) -> Unsupported:
    """A check whose API came with a later MLflow than the server's: not asked, reported as such."""
    return Unsupported(
        f"not in this version: the {check} check needs MLflow {since} or newer, the server runs {implementation.name}.",
        f"upgrade the server to MLflow {since if not older_than(since, OLDEST_SUPPORTED) else OLDEST_SUPPORTED} "
        "or newer to have it.",
    )


def older_than(version: str, since: str) -> bool:
    """``version`` predates ``since`` ("3.1.4" < "3.10"); False when either is not a version."""
    have, need = _numbers(version), _numbers(since)
    return bool(have and need) and have < need


def _numbers(version: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version or "")
    return tuple(int(n) for n in match.group(1).split(".")) if match else ()
