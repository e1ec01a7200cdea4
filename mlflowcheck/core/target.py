"""The tracking server's address: the URI parsed into a Target, or a CheckFailed that says
what is wrong with it; and where the suite looks for it by default."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import Credentials, split_credentials

DEFAULT_TRACKING_URI = "http://127.0.0.1:3111"
SEED_SERVER_COMMAND = (
    "mlflow server --host 127.0.0.1 --port 3111 --backend-store-uri sqlite:///my.db "
    "--artifacts-destination ./mlartifacts"
)


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


def resolve_tracking_uri(cli_value: str | None) -> str:
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
