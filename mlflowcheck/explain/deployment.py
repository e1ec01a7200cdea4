"""What kind of deployment answered: a reverse proxy's own page, a sign-in gateway, and
client and server versions that cannot work together."""

from __future__ import annotations

import re

import requests
import requests.adapters

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.explain.text import html_text

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


def version_skew(client_version: str, server_version: str) -> str:
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
