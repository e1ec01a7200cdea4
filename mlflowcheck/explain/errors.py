"""An exception or a server's answer, turned into a cause and a Tip (pure: no requests).

The later checks (tracking store, artifact store, models) raise CheckFailed through
``explain`` when the server refuses them. Every message names the cause and ends with what
to do ("Tip: ...")."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests
import requests.adapters

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import AUTH_NAMES, Answer, Implementation
from mlflowcheck.core.secrets import Credentials, env_credentials
from mlflowcheck.explain.databases import explain_database_error
from mlflowcheck.explain.support import answer_of, is_unsupported, said, unsupported
from mlflowcheck.explain.text import first_lines, html_text, server_message, server_text

#: How the MLflow client says a request got no answer at all (a refused connection, a timeout).
NO_ANSWER = re.compile(r"failed with exception|timed out|Max retries exceeded|Connection (?:refused|aborted|reset)")


def explain(exc: BaseException, refused: Answer | None = None, server: Implementation | None = None) -> CheckFailed:
    """Turn an exception from the MLflow client into a message with a cause and a tip.

    ``refused``: the last answer of 400 or more the client got during the check (the client's
    exceptions keep neither the endpoint nor the HTTP status); ``server``: who answers."""
    if isinstance(exc, CheckFailed):
        return exc
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return explain_http_error(exc.response, server=server)  # its own answer, not the client's last
    if refused is not None and NO_ANSWER.search(str(exc)):
        refused = None  # the request failed without an answer: the refusal was another's
    if isinstance(exc, MlflowException) and refused is not None:
        by_status = refusal(refused, server)
        if by_status is not None:
            return by_status
    if isinstance(exc, RestException) and exc.error_code == "ENDPOINT_NOT_FOUND":
        return unsupported(None, server)
    if isinstance(exc, RestException) and exc.error_code == "PERMISSION_DENIED":
        return permission_denied("the request", first_lines(exc.message), server)
    if isinstance(exc, MlflowException):
        text = exc.message
        if status_in(text) == 403 and "Permission denied" in text:  # an artifact request, through the client
            return permission_denied("an artifact request", first_lines(server_text(text)))
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
            return CheckFailed(f"The server refused the request ({exc.error_code}): {first_lines(text)}", tip)
        if "too many" in text and "error responses" in text:
            return CheckFailed(
                f"The server kept answering with errors: {first_lines(text)}",
                "the server failed internally; its log says why.",
            )
        if "<html" in text.lower() or "<!doctype" in text.lower():
            return CheckFailed(
                f"The server answered with an HTML error page: {first_lines(html_text(text))}",
                "the server (or a proxy in front of it) failed; look in the server's log.",
            )
        return CheckFailed(first_lines(text), "look in the server's log for the request that failed.")
    if isinstance(exc, requests.Timeout):
        return CheckFailed(f"The server did not answer in time: {exc}", "is it overloaded or hung? Look at its log.")
    if isinstance(exc, requests.ConnectionError):
        return CheckFailed(
            f"The connection to the server failed: {first_lines(str(exc))}",
            "the server stopped answering during the run; check that it is still up.",
        )
    return CheckFailed(
        f"{type(exc).__name__}: {first_lines(str(exc))}",
        "this is unexpected; run again with --verbose to see the traceback.",
    )


def refusal(answer: Answer, server: Implementation | None = None) -> CheckFailed | None:
    """What an answer's status alone decides: 403 is a permission (whatever the body says: MLflow's
    PERMISSION_DENIED, a plugin's {"message": "Permission denied"}, a gateway's page), 401 is
    authentication, a missing endpoint is unsupported; else None (the body tells)."""
    if answer.status == 403 and "Invalid Host header" not in answer.body:
        return permission_denied(answer.request, said(answer), server)
    if answer.status == 401:
        return unauthenticated(answer, server)
    if is_unsupported(answer):
        return unsupported(answer, server)
    return None


def unauthenticated(answer: Answer, server: Implementation | None = None) -> CheckFailed:
    """HTTP 401: the credentials are missing or refused (never a storage or UI problem)."""
    creds = env_credentials()
    have = "no credentials were given" if creds is None else "the credentials this client sent were refused"
    layer = AUTH_NAMES.get(server.auth, server.auth) if server is not None and server.auth else "the server"
    how = {
        "oidc-auth": "an access token from mlflow-oidc-auth (made in its web UI, /oidc/ui, after signing in) as "
        "MLFLOW_TRACKING_PASSWORD, with the account's name as MLFLOW_TRACKING_USERNAME",
    }.get(
        server.auth if server else "",
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
    )
    return CheckFailed(
        f"{answer.request} answered HTTP 401: {layer} requires authentication and {have}.",
        f"set {how} to an account on this server, then run again.",
    )


def explain_http_error(
    resp: requests.Response, store: CheckFailed | None = None, server: Implementation | None = None
) -> CheckFailed:
    """A failed request the client made directly (artifact uploads and downloads); ``store``:
    what the object store behind the server said, when a probe asked it (``artifact_failure``)."""
    message = server_message(resp)
    decided = refusal(answer_of(resp), server)
    if decided is not None:
        return decided
    known = known_server_error(message)
    if known is not None:
        return known
    request = f"{resp.request.method} {urlsplit(resp.url).path}" if resp.request is not None else resp.url
    if artifact_5xx(resp):  # (one the server explained itself returned above)
        if store is not None:
            return store
        return CheckFailed(
            f"The server failed to handle an artifact ({request} answered {message}).",
            "the server's artifact store is failing: check that its --artifacts-destination exists, "
            "is writable by the server process and has free space; the server's log names the error.",
        )
    return CheckFailed(f"{request} answered {message}.", "look in the server's log for this request.")


def artifact_5xx(resp: requests.Response) -> bool:
    return "/mlflow-artifacts/" in resp.url and resp.status_code >= 500


def artifact_failure(resp: requests.Response) -> bool:
    """A bare 5xx of the server's artifact proxy, which its object store may explain."""
    return artifact_5xx(resp) and known_server_error(server_message(resp)) is None


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


def object_store_said(said: str) -> CheckFailed | None:
    """The object store's own error code in what the server's artifact listing quoted."""
    for message, code in S3_MESSAGES.items():
        if message.lower() in said.lower():
            return known_server_error(f"{code}: {said}")
    return known_server_error(said) if said and "Errno" in said else None


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


def permission_denied(what: str, said: str, server: Implementation | None = None) -> CheckFailed:
    """HTTP 403 from an auth layer (or a proxy): a permission, never a storage problem. Names
    the account, the resource and how the auth layer in front grants it."""
    creds = env_credentials()
    who = f"the account {creds.username!r}" if isinstance(creds, Credentials) else "these credentials"
    if creds is None:
        who = "an anonymous client"
    resource = next((f", on {name}" for key, name in RESOURCES.items() if key in what), "")
    auth = server.auth if server is not None else ""
    account = creds.username if isinstance(creds, Credentials) else "<account>"
    # MLflow's own PERMISSION_DENIED, with no layer named: its basic-auth app's.
    grant = GRANTS.get(auth or "basic-auth", GRANTS["other"]).format(account=account)
    answer = said if said.startswith("HTTP") else f"HTTP 403 ({said})"
    return CheckFailed(
        f"The server does not allow {who} to do this: {what} answered {answer}{resource}.",
        f"this is a permission, not a storage problem. An admin grants it: {grant}; or use --registered-model "
        "with a model this account may edit.",
    )


#: What a request path writes to, for the permission message.
RESOURCES = {
    "registered-models": "the registered model (--registered-model), which this account may not edit",
    "model-versions": "the registered model (--registered-model), which this account may not edit",
    "logged-models": "a logged model in the run's experiment",
    "mlflow-artifacts": "the run's artifacts",
    "experiments": "an experiment",
    "runs": "a run of the experiment",
}

#: How each auth layer grants a permission (the 403's fix): "An admin grants it: ...".
GRANTS = {
    "basic-auth": "with MLflow's basic-auth app, EDIT on the registered model "
    "(`mlflow.server.get_app_client('basic-auth', tracking_uri=URL).create_registered_model_permission(NAME, "
    "USER, 'EDIT')`, or POST /api/2.0/mlflow/registered-models/permissions/create) or on the experiment "
    "(create_experiment_permission)",
    "other": "whoever runs the auth layer in front of the server, for this account and this resource",
    "oidc-auth": "with mlflow-oidc-auth, the resource's owner (MANAGE) or an admin, in its web UI (/oidc/ui) or "
    "by `POST /api/2.0/mlflow/permissions/users/{account}/registered-models/<model name>` (or "
    '`.../experiments/<experiment id>`) with the body `{{"permission": "EDIT"}}`',
}


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
            said = f" The server said: {first_lines(server_text(text))}" if quote else ""
            return CheckFailed(f"{cause.format(match=match.group(0))}.{said}", tip)
    return None
