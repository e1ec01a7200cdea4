"""What the security probes' answers mean: a verdict (pass, warn, fail), the cause and the fix.

Pure functions of the observations in ``security`` (and of the server version, for the
advisories), so each is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflowcheck.core.observations import FOREIGN_ORIGIN, PASSWD_LINE, Answer, CrossOrigin, Exposure
from mlflowcheck.explain import advisories

AUTH_FIX = (
    "start the server with authentication (`mlflow server --app-name basic-auth`, with "
    "MLFLOW_AUTH_ADMIN_PASSWORD set) or put an authenticating reverse proxy in front of it, and keep "
    "it bound to 127.0.0.1 (--host) unless others must reach it."
)


@dataclass(frozen=True)
class Finding:
    status: str  # "pass" | "warn" | "fail"
    message: str
    tip: str = ""


def exposure(seen: Exposure) -> Finding:
    status = seen.answer.status
    where = ", ".join(seen.addresses) or "an address that does not resolve"
    if status in (401, 403):
        return Finding("pass", f"the API requires credentials (HTTP {status} without them)")
    if status == 200 and seen.loopback:
        return Finding(
            "pass",
            f"the API answers without credentials, on loopback only ({where}): only this machine reaches it "
            "this way; if the server also listens on other addresses (--host 0.0.0.0), it is open there",
        )
    if status == 200:
        return Finding(
            "fail",
            f"The server answers the API without credentials on {where}: anyone who can reach it can read, "
            "change and delete every experiment, run and model.",
            AUTH_FIX,
        )
    return Finding("warn", f"could not tell: {seen.answer.request} answered HTTP {status}")


def host_protection(seen: Answer) -> Finding:
    if seen.status in (400, 403, 421):
        return Finding("pass", f"a foreign Host header is refused (HTTP {seen.status}): no DNS rebinding")
    if 200 <= seen.status < 300:
        return Finding(
            "fail",
            f"The server accepts any Host header ({seen.request} answered HTTP {seen.status}): a web page "
            "can reach it from a visitor's browser through DNS rebinding.",
            "start it with --allowed-hosts set to the names clients use (`mlflow server --allowed-hosts "
            "'mlflow.example.com,mlflow.example.com:443'`; MLflow 3.5 and newer), and never with "
            "--allowed-hosts '*'.",
        )
    return Finding("warn", f"could not tell: {seen.request} answered HTTP {seen.status}")


def cross_origin(seen: CrossOrigin, requires_credentials: bool) -> Finding:
    allowed = []
    for answer in (seen.preflight, seen.simple):
        origin = answer.headers.get("access-control-allow-origin", "")
        credentials = answer.headers.get("access-control-allow-credentials", "").lower() == "true"
        if origin == "*" and credentials:
            return Finding(
                "fail",
                f"The server allows every origin with credentials ({answer.request}: "
                "Access-Control-Allow-Origin: * with Allow-Credentials: true).",
                CORS_FIX,
            )
        if origin in ("*", FOREIGN_ORIGIN) and 200 <= answer.status < 300:
            allowed.append(f"{answer.request} was allowed (Access-Control-Allow-Origin: {origin})")
    if 200 <= seen.plain.status < 300 and '"experiments"' in seen.plain.body:
        return Finding(
            "fail",
            f"A page on any site can make this server act (cross-site request forgery): {seen.plain.request} "
            f"was carried out (HTTP {seen.plain.status}); browsers send such requests without asking first.",
            "upgrade MLflow (3.5 and newer block cross-origin requests it was not told to allow), and set "
            "--cors-allowed-origins to your own web apps.",
        )
    if not allowed:
        return Finding(
            "pass",
            f"no foreign origin may read or write (preflight HTTP {seen.preflight.status}, JSON request HTTP "
            f"{seen.simple.status}, text/plain request HTTP {seen.plain.status}; none allows it)",
        )
    if requires_credentials and not any("*" not in a for a in allowed):
        return Finding("warn", "; ".join(allowed) + ", but without credentials, which the server requires", CORS_FIX)
    return Finding(
        "fail",
        "Any web page can read and write this server through a visitor's browser: " + "; ".join(allowed) + ".",
        CORS_FIX,
    )


CORS_FIX = (
    "start the server with --cors-allowed-origins set to the origins of your own web apps only "
    "(`mlflow server --cors-allowed-origins https://ml.example.com`), never '*'."
)


def traversal(answers: list[Answer]) -> Finding:
    leaked = [a for a in answers if leaks_a_file(a)]
    if leaked:
        return Finding(
            "fail",
            "Files outside the artifact store came back: "
            + "; ".join(f"{a.request} (HTTP {a.status})" for a in leaked),
            "upgrade MLflow (see the advisories check), and make sure no reverse proxy or static file server "
            "serves the artifact directory by path (nginx: a `location`/`alias` pair without the trailing "
            "slash is the classic off-by-one; serve artifacts only through `mlflow server`).",
        )
    codes = sorted({a.status for a in answers})
    if all(400 <= c < 500 for c in codes):
        return Finding("pass", f"{len(answers)} traversal requests all refused (HTTP {', '.join(map(str, codes))})")
    odd = [a for a in answers if not 400 <= a.status < 500]
    return Finding(
        "warn",
        f"{len(answers) - len(odd)} traversal requests refused; these answered otherwise, without a file's "
        "contents: " + "; ".join(f"{a.request} (HTTP {a.status})" for a in odd),
    )


def leaks_a_file(answer: Answer) -> bool:
    """The answer holds /etc/passwd, or a listing of /etc."""
    if not 200 <= answer.status < 300:
        return False
    return PASSWD_LINE in answer.body or ('"passwd"' in answer.body and '"files"' in answer.body)


def security_headers(answers: list[Answer]) -> Finding:
    missing = []
    for answer in answers:
        h = answer.headers
        if h.get("x-content-type-options", "").lower() != "nosniff":
            missing.append(f"X-Content-Type-Options: nosniff on {answer.request}")
        if answer.request.startswith("the web app"):
            framing = "x-frame-options" in h or "frame-ancestors" in h.get("content-security-policy", "")
            if not framing:
                missing.append(f"frame protection (X-Frame-Options or CSP frame-ancestors) on {answer.request}")
    if not missing:
        return Finding("pass", "X-Content-Type-Options and frame protection are set")
    return Finding(
        "warn",
        "missing: " + "; ".join(missing),
        "upgrade MLflow (3.5 and newer set them; `mlflow server --x-frame-options`), or add the headers "
        "in the reverse proxy (nginx: add_header X-Content-Type-Options nosniff; "
        "add_header X-Frame-Options SAMEORIGIN).",
    )


def known_advisories(server_version: str) -> Finding:
    if not server_version:
        return Finding("warn", "the server's version is not known, so the advisories could not be matched")
    if not advisories.parses(server_version):
        return Finding("warn", f"the server's version {server_version!r} is not a release number, so the advisories "
                       "could not be matched")  # fmt: skip
    found = advisories.affecting(server_version)
    if not found:
        return Finding(
            "pass", f"MLflow {server_version}: none of the {len(advisories.ADVISORIES)} advisories in the table"
        )
    target = advisories.upgrade_to(found)
    listed = "\n".join(f"{a.id} ({a.advisory}, fixed in {a.fixed}): {a.summary}" for a in found)
    return Finding(
        "fail",
        f"MLflow {server_version} is affected by {len(found)} published advisories:\n{listed}",
        f"upgrade the server to MLflow {target} or newer (pip install -U 'mlflow>={target}' on the server host).",
    )


def anonymous_write(answer: Answer, loopback: bool) -> Finding:
    if answer.status in (401, 403):
        return Finding("pass", f"a write without credentials is refused (HTTP {answer.status})")
    if 200 <= answer.status < 300:
        said = f"{answer.request} succeeded (HTTP {answer.status}; the tag was removed again)"
        if loopback:
            return Finding("warn", f"{said}: anyone on this machine can change runs", AUTH_FIX)
        return Finding("fail", f"Anyone who reaches the server can change it: {said}.", AUTH_FIX)
    return Finding("warn", f"could not tell: {answer.request} answered HTTP {answer.status}")
