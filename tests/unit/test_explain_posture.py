"""The security verdicts (explain.posture): what the probes saw (core.observations) judged pass,
warn or fail, with the cause and the fix."""

from __future__ import annotations

import pytest

from mlflowcheck.core.observations import FOREIGN_ORIGIN, PASSWD_LINE, Answer, CrossOrigin, Exposure
from mlflowcheck.explain import posture
from mlflowcheck.explain.posture import Finding

AUTH_FIX = (
    "start the server with authentication (`mlflow server --app-name basic-auth`, with MLFLOW_AUTH_ADMIN_PASSWORD "
    "set) or put an authenticating reverse proxy in front of it, and keep it bound to 127.0.0.1 (--host) unless "
    "others must reach it."
)
CORS_FIX = (
    "start the server with --cors-allowed-origins set to the origins of your own web apps only (`mlflow server "
    "--cors-allowed-origins https://ml.example.com`), never '*'."
)

SEARCH = "POST /api/2.0/mlflow/experiments/search"


def seen(status: int, addresses: list[str], loopback: bool) -> Exposure:
    return Exposure(Answer(SEARCH, status), addresses, loopback)


# --- exposure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_an_api_that_asks_for_credentials_passes_exposure(status):
    assert posture.exposure(seen(status, ["10.0.0.5"], False)) == Finding(
        "pass", f"the API requires credentials (HTTP {status} without them)"
    )


def test_an_open_api_on_loopback_only_passes_with_the_warning_about_other_addresses():
    found = posture.exposure(seen(200, ["127.0.0.1", "::1"], True))
    assert found == Finding(
        "pass",
        "the API answers without credentials, on loopback only (127.0.0.1, ::1): only this machine reaches it this "
        "way; if the server also listens on other addresses (--host 0.0.0.0), it is open there",
    )


def test_an_open_api_on_a_network_address_fails_with_the_authentication_fix():
    found = posture.exposure(seen(200, ["10.0.0.5"], False))
    assert found.status == "fail"
    assert found.message == (
        "The server answers the API without credentials on 10.0.0.5: anyone who can reach it can read, change and "
        "delete every experiment, run and model."
    )
    assert found.tip == AUTH_FIX


def test_an_open_api_whose_host_does_not_resolve_says_so():
    found = posture.exposure(seen(200, [], False))
    assert found.message.startswith(
        "The server answers the API without credentials on an address that does not resolve:"
    )


def test_any_other_answer_to_the_exposure_probe_cannot_tell():
    assert posture.exposure(seen(500, ["10.0.0.5"], False)) == Finding(
        "warn", f"could not tell: {SEARCH} answered HTTP 500"
    )


# --- host protection ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 421])
def test_a_refused_foreign_host_header_passes(status):
    assert posture.host_protection(Answer("GET / with Host: x", status)) == Finding(
        "pass", f"a foreign Host header is refused (HTTP {status}): no DNS rebinding"
    )


def test_an_accepted_foreign_host_header_fails_with_allowed_hosts():
    found = posture.host_protection(Answer("GET / with Host: x", 200))
    assert found.status == "fail"
    assert found.message == (
        "The server accepts any Host header (GET / with Host: x answered HTTP 200): a web page can reach it from a "
        "visitor's browser through DNS rebinding."
    )
    assert found.tip == (
        "start it with --allowed-hosts set to the names clients use (`mlflow server --allowed-hosts "
        "'mlflow.example.com,mlflow.example.com:443'`; MLflow 3.5 and newer), and never with --allowed-hosts '*'."
    )


def test_a_redirect_for_a_foreign_host_cannot_tell():
    assert posture.host_protection(Answer("GET /", 302)) == Finding("warn", "could not tell: GET / answered HTTP 302")


# --- cross-origin requests ---------------------------------------------------------------------


def cors(preflight: Answer | None = None, simple: Answer | None = None, plain: Answer | None = None) -> CrossOrigin:
    return CrossOrigin(
        preflight or Answer("OPTIONS search", 403),
        simple or Answer("POST search (JSON)", 403),
        plain or Answer("POST search (text/plain)", 415),
    )


def test_no_foreign_origin_allowed_passes_with_every_status():
    assert posture.cross_origin(cors(), requires_credentials=False) == Finding(
        "pass",
        "no foreign origin may read or write (preflight HTTP 403, JSON request HTTP 403, text/plain request HTTP "
        "415; none allows it)",
    )


def test_every_origin_with_credentials_fails_first():
    answer = Answer(
        "OPTIONS search",
        200,
        {"access-control-allow-origin": "*", "access-control-allow-credentials": "TRUE"},
    )
    found = posture.cross_origin(cors(preflight=answer), requires_credentials=True)
    assert found == Finding(
        "fail",
        "The server allows every origin with credentials (OPTIONS search: Access-Control-Allow-Origin: * with "
        "Allow-Credentials: true).",
        CORS_FIX,
    )


def test_a_text_plain_request_carried_out_is_cross_site_request_forgery():
    plain = Answer("POST search (text/plain)", 200, body='{"experiments": []}')
    found = posture.cross_origin(cors(plain=plain), requires_credentials=False)
    assert found.status == "fail"
    assert found.message == (
        "A page on any site can make this server act (cross-site request forgery): POST search (text/plain) was "
        "carried out (HTTP 200); browsers send such requests without asking first."
    )
    assert found.tip == (
        "upgrade MLflow (3.5 and newer block cross-origin requests it was not told to allow), and set "
        "--cors-allowed-origins to your own web apps."
    )


def test_a_text_plain_answer_without_experiments_is_not_forgery():
    plain = Answer("POST search (text/plain)", 200, body="ok")
    assert posture.cross_origin(cors(plain=plain), requires_credentials=False).status == "pass"


@pytest.mark.parametrize("allowed", ["*", FOREIGN_ORIGIN])
def test_a_foreign_origin_allowed_to_read_and_write_fails(allowed):
    simple = Answer("POST search (JSON)", 200, {"access-control-allow-origin": allowed})
    found = posture.cross_origin(cors(simple=simple), requires_credentials=False)
    assert found == Finding(
        "fail",
        "Any web page can read and write this server through a visitor's browser: POST search (JSON) was allowed "
        f"(Access-Control-Allow-Origin: {allowed}).",
        CORS_FIX,
    )


def test_the_foreign_origin_allowed_on_a_server_that_requires_credentials_fails_too():
    simple = Answer("POST search (JSON)", 200, {"access-control-allow-origin": FOREIGN_ORIGIN})
    assert posture.cross_origin(cors(simple=simple), requires_credentials=True).status == "fail"


def test_every_origin_allowed_without_credentials_on_a_server_that_requires_them_is_a_warning():
    # A browser sends no credentials to a "*" origin: the page gets the server's 401, nothing more.
    preflight = Answer("OPTIONS search", 204, {"access-control-allow-origin": "*"})
    found = posture.cross_origin(cors(preflight=preflight), requires_credentials=True)
    assert found == Finding(
        "warn",
        "OPTIONS search was allowed (Access-Control-Allow-Origin: *), but without credentials, which the server "
        "requires",
        CORS_FIX,
    )


def test_an_allow_origin_header_on_a_refusal_is_not_an_allowance():
    simple = Answer("POST search (JSON)", 403, {"access-control-allow-origin": "*"})
    assert posture.cross_origin(cors(simple=simple), requires_credentials=False).status == "pass"


# --- path traversal ----------------------------------------------------------------------------


def test_every_traversal_refused_passes_with_the_codes_seen():
    answers = [Answer("GET a", 400), Answer("GET b", 404), Answer("GET c", 400)]
    assert posture.traversal(answers) == Finding("pass", "3 traversal requests all refused (HTTP 400, 404)")


def test_a_file_outside_the_store_coming_back_fails_naming_the_requests():
    answers = [Answer("GET ../../etc/passwd", 200, body=f"{PASSWD_LINE}/root:/bin/bash"), Answer("GET b", 404)]
    found = posture.traversal(answers)
    assert found.status == "fail"
    assert found.message == "Files outside the artifact store came back: GET ../../etc/passwd (HTTP 200)"
    assert found.tip.startswith("upgrade MLflow (see the advisories check), and make sure no reverse proxy")
    assert "serve artifacts only through `mlflow server`" in found.tip


def test_answers_that_are_neither_a_refusal_nor_a_file_are_a_warning():
    answers = [Answer("GET a", 404), Answer("GET b", 200, body="[]"), Answer("GET c", 500)]
    assert posture.traversal(answers) == Finding(
        "warn",
        "1 traversal requests refused; these answered otherwise, without a file's contents: GET b (HTTP 200); "
        "GET c (HTTP 500)",
    )


@pytest.mark.parametrize(
    ("answer", "leaks"),
    [
        (Answer("r", 200, body="root:x:0:0:root:/root:/bin/bash"), True),
        (Answer("r", 200, body='{"files": [{"path": "passwd"}, {"path": "hosts"}]}'), True),  # a listing of /etc
        (Answer("r", 404, body="root:x:0:0:"), False),  # quoted in an error: not served
        (Answer("r", 200, body='{"files": []}'), False),
    ],
)
def test_a_leaked_file_is_the_passwd_file_or_a_listing_of_etc(answer, leaks):
    assert posture.leaks_a_file(answer) is leaks


# --- security headers --------------------------------------------------------------------------


def test_nosniff_everywhere_and_framing_on_the_web_app_pass():
    answers = [
        Answer("the web app /", 200, {"x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN"}),
        Answer("the API", 200, {"x-content-type-options": "NoSniff"}),
        Answer(
            "the web app /static",
            200,
            {"x-content-type-options": "nosniff", "content-security-policy": "frame-ancestors 'self'"},
        ),
    ]
    assert posture.security_headers(answers) == Finding("pass", "X-Content-Type-Options and frame protection are set")


def test_missing_headers_are_a_warning_naming_each_and_the_proxy_fix():
    answers = [Answer("the web app /", 200, {}), Answer("the API", 200, {"x-content-type-options": "nosniff"})]
    found = posture.security_headers(answers)
    assert found.status == "warn"
    assert found.message == (
        "missing: X-Content-Type-Options: nosniff on the web app /; frame protection (X-Frame-Options or CSP "
        "frame-ancestors) on the web app /"
    )
    assert found.tip == (
        "upgrade MLflow (3.5 and newer set them; `mlflow server --x-frame-options`), or add the headers in the "
        "reverse proxy (nginx: add_header X-Content-Type-Options nosniff; add_header X-Frame-Options SAMEORIGIN)."
    )


def test_the_api_needs_no_frame_protection():
    assert posture.security_headers([Answer("the API", 200, {"x-content-type-options": "nosniff"})]).status == "pass"


# --- advisories --------------------------------------------------------------------------------


def test_a_version_without_advisories_passes_naming_the_size_of_the_table():
    assert posture.known_advisories("3.11.1") == Finding(
        "pass", "MLflow 3.11.1: none of the 19 advisories in the table"
    )


def test_an_affected_version_fails_listing_each_advisory_and_the_release_that_fixes_all():
    found = posture.known_advisories("3.10.5")
    assert found.status == "fail"
    assert found.message == (
        "MLflow 3.10.5 is affected by 5 published advisories:\n"
        "CVE-2026-33865 (GHSA-fh64-r2vc-xvhr, fixed in 3.11.1): stored XSS through a malicious MLmodel file\n"
        "CVE-2026-2651 (GHSA-8c7q-86fq-vvmh, fixed in 3.11.0): multipart upload endpoints unauthorized with "
        "--serve-artifacts\n"
        "CVE-2026-3198 (GHSA-r5m9-wm49-959f, fixed in 3.11.0): basic-auth: any user can list gateway secrets and "
        "endpoints\n"
        "CVE-2026-4035 (GHSA-g35p-px32-whv6, fixed in 3.11.0): AI Gateway secrets can exfiltrate server environment "
        "variables\n"
        "CVE-2026-2652 (GHSA-75cm-x2w3-8mgf, fixed in 3.11.0): basic-auth: FastAPI routes reachable without "
        "authentication"
    )
    assert (
        found.tip
        == "upgrade the server to MLflow 3.11.1 or newer (pip install -U 'mlflow>=3.11.1' on the server host)."
    )


def test_an_unknown_server_version_is_a_warning():
    assert posture.known_advisories("") == Finding(
        "warn", "the server's version is not known, so the advisories could not be matched"
    )


def test_a_server_version_that_does_not_parse_is_a_warning_not_a_pass():
    assert posture.known_advisories("not-a-version").status == "warn"


# --- writes without credentials ----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_anonymous_write_passes(status):
    assert posture.anonymous_write(Answer("set-tag", status), loopback=False) == Finding(
        "pass", f"a write without credentials is refused (HTTP {status})"
    )


def test_an_anonymous_write_on_loopback_is_a_warning_and_on_the_network_a_failure():
    on_loopback = posture.anonymous_write(Answer("POST set-tag", 200), loopback=True)
    assert on_loopback == Finding(
        "warn",
        "POST set-tag succeeded (HTTP 200; the tag was removed again): anyone on this machine can change runs",
        AUTH_FIX,
    )
    on_network = posture.anonymous_write(Answer("POST set-tag", 200), loopback=False)
    assert on_network == Finding(
        "fail",
        "Anyone who reaches the server can change it: POST set-tag succeeded (HTTP 200; the tag was removed again).",
        AUTH_FIX,
    )


def test_any_other_answer_to_an_anonymous_write_cannot_tell():
    assert posture.anonymous_write(Answer("POST set-tag", 500), loopback=False) == Finding(
        "warn", "could not tell: POST set-tag answered HTTP 500"
    )
