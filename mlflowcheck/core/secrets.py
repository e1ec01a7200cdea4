"""Credentials and redaction: secrets never leave the process.

The tracking URI may carry credentials (``http://alice:SECRET@host:5000``), as may a
backend-store URI (``postgresql://mlflow:SECRET@db/mlflow``) and the environment
(``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``). The user info of a tracking URI is
taken out when it is parsed and used as the credentials, as requests would; everything the
suite shows, writes or uploads uses the URI without it. Backend-store URIs are shown through
SQLAlchemy's own rendering with the password hidden.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

MASK = "***"


#: Query parameters whose values are secrets (``?password=``, ``?token=``, ``?X-Amz-Signature=``).
SECRET_KEY = re.compile(r"pass|secret|token|key|auth|sig|credential|session", re.IGNORECASE)


ENV_USER, ENV_PASSWORD, ENV_TOKEN = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"


@dataclass(frozen=True)
class Credentials:
    """Basic-auth credentials. The password is kept out of repr()."""

    username: str
    password: str = field(repr=False)


def split_credentials(uri: str) -> tuple[str, Credentials | None]:
    """The URI without its user info (and with secret query values masked), and the
    credentials the user info held. Never raises: any string gets an answer.

    A password may contain ``@``, ``/``, ``?`` or ``:`` unencoded: the user info runs up to
    the last ``@`` (before a UI fragment ``#/``), so nothing of it is left in what is shown.
    Percent-encoded user info is decoded, as requests does.
    """
    text = str(uri)
    scheme_end = text.find("://")
    start = scheme_end + 3 if scheme_end >= 0 and re.fullmatch(r"[A-Za-z][\w+.-]*", text[:scheme_end]) else 0
    rest = text[start:]
    ui_fragment = rest.find("#/")
    searchable = rest if ui_fragment < 0 else rest[:ui_fragment]
    at = searchable.rfind("@")
    credentials = None
    if at >= 0:
        user, _, password = searchable[:at].partition(":")
        credentials = Credentials(unquote(user), unquote(password))
        rest = rest[at + 1 :]
    return text[:start] + mask_query(rest), credentials


def mask_query(text: str) -> str:
    """``text`` with the values of secret-looking query parameters replaced by ***."""
    head, sep, tail = text.partition("?")
    if not sep:
        return text
    query, hash_sign, fragment = tail.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(SECRET_KEY.search(key) for key, _ in pairs):
        return text
    masked = urlencode([(k, MASK if SECRET_KEY.search(k) else v) for k, v in pairs], safe="*")
    return f"{head}?{masked}{hash_sign}{fragment}"


def redact_backend_uri(uri: str) -> str:
    """A backend-store URI as it may be shown, rendered by SQLAlchemy with the password
    hidden (and secret query parameters masked). Not a SQLAlchemy URL: as a URL.

    The user info is split off first by the same rule as for tracking URIs, so a password
    with an unencoded ``@`` or ``/`` (which SQLAlchemy's parser would cut in two, showing
    half of it as the host) is hidden whole.
    """
    clean, credentials = split_credentials(uri)
    try:
        from sqlalchemy.engine import make_url

        url = make_url(clean)
    except Exception:  # not a database URL (a path, garbage): shown as a URL
        return clean
    if credentials is not None:
        url = url.set(username=credentials.username, password=credentials.password or None)
    rendered = url.render_as_string(hide_password=True)
    return rendered.replace("=%2A%2A%2A", f"={MASK}")  # SQLAlchemy quotes the masked query values


#: The origin (scheme://host:port) the credentials were given for: the tracking URI's.
_credential_origin: str | None = None


def use_credentials(credentials: Credentials | None, tracking_uri: str) -> None:
    """Credentials from the tracking URI become the process's MLflow credentials (the
    client, the model worker and the browser all read them from there). They win over
    credentials already in the environment: they were given for this run. Both kinds go
    to the tracking URI's origin only (:func:`credentials_allowed`)."""
    global _credential_origin
    _credential_origin = origin(tracking_uri)
    if credentials is None:
        return
    os.environ[ENV_USER] = credentials.username
    os.environ[ENV_PASSWORD] = credentials.password


def origin(url: str) -> str | None:
    """``scheme://host:port`` of a URL (the default port written out), or None for a URL that
    has none: the unit web browsers bind credentials to."""
    try:
        parts = urlsplit(split_credentials(url)[0])
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def credentials_allowed(url: str) -> bool:
    """Whether a request to ``url`` may carry the credentials: only to the exact origin of
    the tracking URI the user gave (a probe of the same host over the other scheme must not:
    over plain HTTP the password would cross the network in clear text)."""
    return _credential_origin is not None and origin(url) == _credential_origin


def env_credentials() -> Credentials | str | None:
    """What the MLflow client would send: basic-auth credentials, else a bearer token."""
    user, password, token = (os.environ.get(k) for k in (ENV_USER, ENV_PASSWORD, ENV_TOKEN))
    if user and password:
        return Credentials(user, password)
    return token or None


def secret_values() -> list[str]:
    """The secrets this process holds, for last-line scrubbing of text it writes."""
    return [v for k in (ENV_PASSWORD, ENV_TOKEN) if len(v := os.environ.get(k, "")) >= 4]


def scrub(text: str, also: tuple[str, ...] = ()) -> str:
    """``text`` with every secret this process holds replaced by ***: a last line of
    defence for text a library or a server produced (an error quoting a request). ``also``:
    secrets held elsewhere (the probe exporter's targets, each in a process of its own)."""
    for secret in [*secret_values(), *(s for s in also if len(s) >= 4)]:
        text = text.replace(secret, MASK)
    return text
