"""The layers of a deployment before any data moves, in the order the checks walk them:
network (``reach``; over https the TLS ``handshake``), is it MLflow (``identify``), access
(``access``); and ``diagnose``, which explains a failure and asks the server what only
another request can tell (the object store behind a bare 500)."""

from __future__ import annotations

import re
import socket
import ssl
from urllib.parse import urlsplit

import requests
import requests.adapters

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.core.target import DEFAULT_TRACKING_URI, SEED_SERVER_COMMAND, Target
from mlflowcheck.explain.deployment import reverse_proxy, sign_in_page
from mlflowcheck.explain.errors import (
    answered_by,
    artifact_failure,
    explain,
    explain_http_error,
    known_server_error,
    object_store_said,
    permission_denied,
    unauthenticated,
)
from mlflowcheck.explain.support import answer_of
from mlflowcheck.explain.text import describe_response, first_lines, server_message
from mlflowcheck.explain.tls import (
    CLIENT_CERT_ALERTS,
    TLS_ALERT,
    certificate_rejected,
    client_certificate_refused,
    unusable_tls_file,
)
from mlflowcheck.net.http import CONNECT_TIMEOUT, RESPONSE_DEADLINE, auth_from_env, http
from mlflowcheck.net.liveness import mlflow_version
from mlflowcheck.net.tls import server_certificate, tls_context, tls_settings


def reach(target: Target, timeout: float = CONNECT_TIMEOUT) -> None:
    """Layer 2: something accepts connections at host:port within a short deadline; over
    https, the client's TLS settings can be used and trust the server's certificate (handshake)."""
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except (socket.gaierror, UnicodeError):  # UnicodeError: an empty or too long label (idna)
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
        handshake(target, timeout)
        return
    tip = (
        f"start the seed's server in the project directory: `{SEED_SERVER_COMMAND}`, or run "
        "this suite with --start-server to let it start one."
        if target.url == DEFAULT_TRACKING_URI
        else f"start the server (mlflow server --host {target.host} --port {target.port} ...), "
        "check the address, or add --start-server to let this suite start one there."
    )
    raise CheckFailed(f"Nothing is listening at {target.host}:{target.port} ({cause}).", tip, fatal=True)


def handshake(target: Target, timeout: float = CONNECT_TIMEOUT) -> None:
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


def identify(target: Target) -> str:
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
            f"{target.url} accepted the connection but the HTTP request failed: {first_lines(str(exc), 200)}.",
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


def access(target: Target, server: Implementation | None = None) -> None:
    """Layer 5, access: a real API call answers JSON with our credentials."""
    url = f"{target.url}/api/2.0/mlflow/experiments/search"
    resp = http("GET", url, params={"max_results": 1})
    if resp.status_code == 401 and server is not None and server.auth == "oidc-auth":
        raise unauthenticated(answer_of(resp), server)
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
        raise permission_denied(f"GET {urlsplit(url).path}", server_message(resp), server)
    known = known_server_error(server_message(resp)) if resp.status_code >= 400 else None
    if known is not None:  # MLflow's own JSON error: the server answers, its store fails
        raise known
    if resp.status_code != 200 or "json" not in resp.headers.get("content-type", ""):
        raise CheckFailed(
            f"GET {url} answered {describe_response(resp)}, not the JSON an MLflow server sends.",
            "check that the tracking URI is the server's root and no proxy rewrites /api paths.",
            fatal=resp.status_code == 404,
        )


def object_store_error(server: str) -> CheckFailed | None:
    """An artifact upload failed with a bare 500: the server's artifact listing quotes what its
    object store said, so ask it, and name the store's own error code."""
    try:
        resp = http("GET", f"{server}/api/2.0/mlflow-artifacts/artifacts", params={"path": ""})
    except requests.RequestException:
        return None
    return object_store_said(server_message(resp) if resp.status_code != 200 else "")


def diagnose(exc: BaseException, refused: Answer | None = None, server: Implementation | None = None) -> CheckFailed:
    """``explain``, plus what only another request can tell: for an artifact request that failed
    with a bare 5xx, what the server's object store said (``object_store_error``). ``refused``
    and ``server``: as for ``explain``."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None and artifact_failure(exc.response):
        address = exc.response.url.split("/api/2.0/mlflow-artifacts/")[0]
        return explain_http_error(exc.response, object_store_error(address), server)
    return explain(exc, refused, server)
