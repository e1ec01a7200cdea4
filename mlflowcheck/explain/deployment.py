"""What kind of deployment answered: which server implementation (``implementation``), a
reverse proxy's own page, a sign-in gateway, and client and server versions that cannot work
together (advice for MLflow's own server only)."""

from __future__ import annotations

import re

import requests
import requests.adapters

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.explain.support import OLDEST_SUPPORTED
from mlflowcheck.explain.text import html_text

#: Servers that speak MLflow's REST API without being MLflow, by their Server header.
COMPATIBLE_SERVERS = re.compile(r"\b(FastTrackML)(?:/v?([\w.+-]+))?", re.IGNORECASE)

#: What MLflow's own server sends as its Server header (its web servers), and proxies' names.
MLFLOW_WEB_SERVERS = re.compile(r"^(uvicorn|gunicorn|waitress|Werkzeug|hypercorn|granian)\b", re.IGNORECASE)


def implementation(
    version: str,
    version_answer: Answer,
    server_info: dict | None,
    anonymous: Answer | None,
    oidc_ui: Answer | None = None,
) -> Implementation:
    """Which server answers, from what it said: the Server header of its ``/version`` answer,
    the version's shape, MLflow 3.10+'s ``server-info``, how an anonymous API call was refused
    and, when it was, mlflow-oidc-auth's UI configuration (the auth layer in front)."""
    header = version_answer.headers.get("server", "")
    found = Implementation(product="MLflow", version=version, server_info=server_info)
    proxy = PROXY_SERVERS.search(header)
    found.proxy = proxy.group(1) if proxy else ""
    compatible = COMPATIBLE_SERVERS.search(header)
    if compatible:
        found.product = compatible.group(1)
        found.version = version or compatible.group(2) or ""
        found.evidence = f"Server: {header}"
    elif server_info is not None:
        found.evidence = "GET /api/3.0/mlflow/server-info"
    elif version and not version.startswith("0."):
        found.evidence = f"GET /version: {version}"
    elif version:  # MLflow's releases are 1.0 and later since 2019; a 0.x names another product's version
        named = header.split("/")[0] if header and not proxy and not MLFLOW_WEB_SERVERS.match(header) else ""
        found.product = named or "an MLflow-compatible server"
        found.evidence = f"GET /version: {version}" + (f", Server: {header}" if header else "")
    found.auth = auth_layer(anonymous, oidc_ui)
    return found


#: server-info's fields, as the note says them.
SERVER_INFO_FIELDS = {
    "workspaces_enabled": "workspaces",
    "trace_archival_enabled": "trace archival",
    "multipart_uploads_enabled": "multipart uploads",
    "multipart_downloads_enabled": "multipart downloads",
}


def describe_server_info(info: dict) -> str:
    """server-info on one line: "store SqlStore; workspaces off; trace archival off; ..."."""
    parts = [f"store {info['store_type']}"] if info.get("store_type") else []
    for key, name in SERVER_INFO_FIELDS.items():
        if key in info:
            parts.append(f"{name} {'on' if info[key] else 'off'}")
    features = info.get("features_enabled")
    if isinstance(features, dict) and features:
        parts.append("features: " + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in features.items()))
    return "; ".join(parts) or "answered, with no fields this suite knows"


#: mlflow-oidc-auth's web UI configuration, served without credentials: its fingerprint.
OIDC_UI_CONFIG = "/oidc/ui/config.json"


def auth_layer(anonymous: Answer | None, oidc_ui: Answer | None = None) -> str:
    """The auth layer, by how it refuses an API call without credentials (and, for
    mlflow-oidc-auth, whose 401 carries no challenge, by its UI's configuration)."""
    if anonymous is None or anonymous.status not in (401, 403, 302, 303, 307):
        return ""
    if oidc_ui is not None and oidc_ui.status == 200 and '"uiPath"' in oidc_ui.body:
        return "oidc-auth"
    challenge = anonymous.headers.get("www-authenticate", "")
    body = anonymous.body
    if "oidc" in anonymous.headers.get("location", "").lower() or "oidc" in body.lower():
        return "oidc-auth"
    if 'realm="mlflow"' in challenge or "basic-auth" in body:
        return "basic-auth"
    if anonymous.status in (302, 303, 307):
        return "a gateway"  # a redirect to a sign-in page
    return "a proxy's basic auth" if challenge.lower().startswith("basic") else ""


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
    """Layer 4: the versions of MLflow's own server and this client. Returns a note on minor
    skew. Only for MLflow's own server (``Implementation.is_mlflow``): another product's version
    says nothing about MLflow's; and no advice names a version older than OLDEST_SUPPORTED."""
    if not server_version:
        return "server version not visible before authentication"
    client = _major_minor(client_version)
    server = _major_minor(server_version)
    if server[0] < client[0]:
        raise CheckFailed(
            f"The server runs MLflow {server_version} and this client MLflow {client_version}: "
            f"a {server[0]}.x server lacks APIs a {client[0]}.x client uses (logged models, "
            "model artifacts); the checks that need them are reported as unsupported.",
            f"upgrade the server to MLflow {client[0]}.x, {OLDEST_SUPPORTED} or newer (pip install -U "
            f"'mlflow=={client_version}' in the server's environment, then `mlflow db upgrade <backend-store-uri>` "
            "after a backup, and restart it).",
        )
    if server[0] > client[0]:
        raise CheckFailed(
            f"The server runs MLflow {server_version} and this client MLflow {client_version}: a newer major "
            "version than this suite knows.",
            f"upgrade this suite's MLflow client (pip install -U mlflow) to {server[0]}.x, then run again.",
        )
    if server != client:
        return f"minor skew: server {server_version}, client {client_version}"
    return ""


def _major_minor(version: str) -> tuple[int, int]:
    nums = re.findall(r"\d+", version)
    return (int(nums[0]), int(nums[1]) if len(nums) > 1 else 0)
