"""What the browser may send and trust: the user's credentials for the tracking URI's origin
only, and the user's TLS settings, turned into Chromium's and Playwright's terms."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import credentials_allowed, origin
from mlflowcheck.core.target import Target, parse_target
from mlflowcheck.net.http import auth_from_env
from mlflowcheck.net.tls import server_certificate, tls_settings

WAIT_MS = 20_000  # every wait in the browser has this deadline


def browser_auth(target: Target | None) -> dict:
    """The client's credentials (auth_from_env) as the Authorization header Chromium
    sends, for the target's origin only (secrets.credentials_allowed), as the suite's own
    requests send them: extra_http_headers, which Chromium sends with every request of the page,
    to any origin, so ``scope_headers`` takes it off the requests to other origins.

    Basic auth too, sent at once as requests sends it, rather than Playwright's http_credentials:
    without ``origin`` those answer any origin's 401 challenge; with it, Playwright answers a
    challenge of another origin with CDP's "Default" action, which leaves the request waiting
    for a login dialog that never comes (the page's load event never fires; see
    https://github.com/microsoft/playwright/pull/37169, where this was fixed for BiDi only)."""
    if target is None or not credentials_allowed(target.url):
        return {}
    creds = auth_from_env()
    if "auth" in creds:
        user, password = creds["auth"]
        pair = f"{user}:{password}"
        try:
            raw = pair.encode("latin-1")  # as requests encodes it
        except UnicodeEncodeError:
            raw = pair.encode("utf-8")
        return {"extra_http_headers": {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}}
    if "headers" in creds:
        return {"extra_http_headers": creds["headers"]}
    return {}


def browser_origin(url: str) -> str:
    """The origin of ``url`` as the browser writes it in request URLs (no default port)."""
    at = origin(url) or ""
    for scheme, port in (("http", 80), ("https", 443)):
        if at.startswith(f"{scheme}://") and at.endswith(f":{port}"):
            return at[: -len(f":{port}")]
    return at


def scope_headers(context, target: Target, requests_without_headers) -> None:
    """Take the extra_http_headers (the credentials) off every request to another origin than
    the target's: a page, a script or an image of the web app (or of a proxy in front of it)
    naming another origin must not get them. The route matches only other origins, in
    Playwright's driver: the web app's own requests are not intercepted and cost nothing more.

    Not the other way round (a route adding the header to the target's requests): the headers
    a route adds follow a redirect to another origin (Route.continue_'s documentation), whereas
    Chromium drops the Authorization header of extra_http_headers on a cross-origin redirect."""
    from playwright.sync_api import Error as PlaywrightError

    others = re.compile(f"^(?!{re.escape(browser_origin(target.url))}/)", re.IGNORECASE)

    def strip(route) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "authorization"}
        # Fetched by Playwright, not continued: once a route is set, Playwright answers every 401
        # challenge for which it has no credentials with CDP's "Default" action, and Chromium
        # then waits for a login dialog that never comes (the page's load event never fires;
        # https://github.com/microsoft/playwright/pull/37169 fixed this for BiDi only).
        # Playwright's own request (a request context without the extra headers: Route.fetch
        # would add them back) returns the 401. Other origins are rare: this costs nothing.
        try:
            route.fulfill(response=requests_without_headers.fetch(route.request, headers=headers, timeout=WAIT_MS))
        except PlaywrightError:
            route.abort()

    context.route(others, strip)


@dataclass
class BrowserTls:
    """The user's TLS settings in Chromium's and Playwright's terms."""

    args: list[str] = field(default_factory=list)  # Chromium's command line
    context_options: dict = field(default_factory=dict)  # Browser.new_context's
    driver_env: dict[str, str] = field(default_factory=dict)  # Playwright's driver (Node) process's


def browser_tls(target: Target | None) -> BrowserTls:
    """Make the browser trust what MLflow's client trusts (tls_settings), no more.

    MLFLOW_TRACKING_INSECURE_TLS=true: Playwright's ignore_https_errors. Otherwise the suite
    makes the TLS handshake itself, verifying the chain and host name against the CAs the client
    uses (MLFLOW_TRACKING_SERVER_CERT_PATH, else requests' bundle), and tells Chromium to accept
    that server's key (--ignore-certificate-errors-spki-list, the SHA-256 of the verified leaf's
    SubjectPublicKeyInfo): a certificate the client rejects gives no key, and Chromium then
    rejects it too; another certificate at that address is checked by Chromium as usual. (The
    alternative, the CA in an NSS database under a throwaway HOME, needs certutil from
    libnss3-tools on every machine; the key needs only the `cryptography` package MLflow brings.)

    MLFLOW_TRACKING_CLIENT_CERT_PATH: Playwright's client_certificates, for the target's origin.
    Playwright then connects to that origin itself (Node's TLS, through a proxy of its own
    between Chromium and the server) and verifies the server with Node's CAs: the client's
    CA bundle is added to them (NODE_EXTRA_CA_CERTS, read when the driver starts).
    """
    tls = BrowserTls()
    if target is None or not target.url.startswith("https:"):
        return tls
    settings = tls_settings()
    if not settings.verifies:
        tls.context_options["ignore_https_errors"] = True
    else:
        pin = verified_key_pin(target)
        if pin:
            tls.args.append(f"--ignore-certificate-errors-spki-list={pin}")
        if settings.client_cert:
            cafile = settings.ca_locations().get("cafile")
            if cafile:
                tls.driver_env["NODE_EXTRA_CA_CERTS"] = os.path.abspath(cafile)
    if settings.client_cert:
        parts = urlsplit(target.url)
        cert = os.path.abspath(settings.client_cert)  # one PEM with the key, as MLflow's client takes it
        tls.context_options["client_certificates"] = [
            {"origin": f"{parts.scheme}://{parts.netloc}", "certPath": cert, "keyPath": cert}
        ]
    return tls


def verified_key_pin(target: Target) -> str | None:
    """The base64 SHA-256 of the server's public key (SubjectPublicKeyInfo), when its
    certificate passes the client's verification; else None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        der = server_certificate(target, tls_settings()).certificate
    except (OSError, ValueError):  # ssl.SSLError is an OSError: not verified, not pinned
        return None
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def target_or_none(uri: str) -> Target | None:
    try:
        return parse_target(uri)
    except CheckFailed:
        return None  # the uri check says why
