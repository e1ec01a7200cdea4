"""probes.security against canned answers: what each probe sends, what it records, and the
verdict (explain.posture) on what it recorded."""

from __future__ import annotations

import re

import pytest
from werkzeug import Request, Response

from mlflowcheck.core import secrets
from mlflowcheck.core.observations import FOREIGN_HOST, FOREIGN_ORIGIN
from mlflowcheck.explain import posture
from mlflowcheck.probes.security import (
    probe_anonymous_write,
    probe_cross_origin,
    probe_exposure,
    probe_headers,
    probe_host_header,
    probe_traversal,
    traversal_requests,
)

SEARCH = "/api/2.0/mlflow/experiments/search"
RUN = "a" * 32
EXPERIMENTS = '{"experiments": [{"experiment_id": "0", "name": "Default"}]}'
JSON = "application/json"


@pytest.fixture(autouse=True)
def credentials_for_the_target(monkeypatch, target):
    # The user's credentials, bound to the target: the probes that must ask without them have to drop them.
    for name in ("TOKEN", "INSECURE_TLS", "SERVER_CERT_PATH", "CLIENT_CERT_PATH"):
        monkeypatch.delenv(f"MLFLOW_TRACKING_{name}", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    monkeypatch.setattr(secrets, "_credential_origin", None)
    secrets.use_credentials(None, target.url)


def authorizations(canned) -> list[str | None]:
    return [request.headers.get("Authorization") for request, _ in canned.log]


def test_exposure_passes_a_server_that_asks_for_credentials_and_the_probe_sent_none(canned, target):
    canned.expect_request(SEARCH).respond_with_data("Unauthorized", status=401)
    seen = probe_exposure(target)
    assert (seen.answer.request, seen.answer.status) == ("GET the experiment list without credentials", 401)
    assert (seen.addresses, seen.loopback) == (["127.0.0.1"], True)
    assert authorizations(canned) == [None]
    assert posture.exposure(seen) == posture.Finding("pass", "the API requires credentials (HTTP 401 without them)")


def test_exposure_of_an_open_server_on_loopback_passes_with_the_warning_about_other_addresses(canned, target):
    canned.expect_request(SEARCH, query_string="max_results=1").respond_with_data(EXPERIMENTS, content_type=JSON)
    finding = posture.exposure(probe_exposure(target))
    assert finding.status == "pass"
    assert finding.message == (
        "the API answers without credentials, on loopback only (127.0.0.1): only this machine reaches it this "
        "way; if the server also listens on other addresses (--host 0.0.0.0), it is open there"
    )


def test_exposure_cannot_tell_when_the_api_answers_neither_data_nor_a_refusal(canned, target):
    canned.expect_request(SEARCH).respond_with_data("Bad Gateway", status=502)
    finding = posture.exposure(probe_exposure(target))
    assert finding == posture.Finding(
        "warn", "could not tell: GET the experiment list without credentials answered HTTP 502"
    )


def test_host_header_probe_sends_the_foreign_host_and_a_refusal_passes(canned, target):
    canned.expect_request(SEARCH, headers={"Host": FOREIGN_HOST}).respond_with_data(
        "Invalid Host header - possible DNS rebinding attack detected", status=403
    )
    seen = probe_host_header(target)
    assert seen.status == 403
    assert posture.host_protection(seen) == posture.Finding(
        "pass", "a foreign Host header is refused (HTTP 403): no DNS rebinding"
    )


def test_host_header_probe_fails_a_server_that_answers_any_host(canned, target):
    canned.expect_request(SEARCH, headers={"Host": FOREIGN_HOST}).respond_with_data(EXPERIMENTS, content_type=JSON)
    finding = posture.host_protection(probe_host_header(target))
    assert finding.status == "fail"
    assert finding.message == (
        f"The server accepts any Host header (GET the experiment list with Host: {FOREIGN_HOST} answered HTTP 200): "
        "a web page can reach it from a visitor's browser through DNS rebinding."
    )
    assert finding.tip.startswith("start it with --allowed-hosts set to the names clients use")


def cors_server(canned, *, preflight: Response, json_post: Response, plain_post: Response) -> None:
    def answer(request: Request) -> Response:
        assert request.headers.get("Origin") == FOREIGN_ORIGIN  # every probe claims the foreign origin
        if request.method == "OPTIONS":
            return preflight
        return json_post if request.content_type == JSON else plain_post

    canned.expect_request(SEARCH).respond_with_handler(answer)


def test_cross_origin_passes_a_server_that_allows_no_foreign_origin(canned, target):
    blocked = Response("Cross-origin request blocked", status=403)
    cors_server(canned, preflight=blocked, json_post=blocked, plain_post=blocked)
    seen = probe_cross_origin(target)
    assert [canned.log[i][0].method for i in range(3)] == ["OPTIONS", "POST", "POST"]
    assert posture.cross_origin(seen, requires_credentials=False) == posture.Finding(
        "pass",
        "no foreign origin may read or write (preflight HTTP 403, JSON request HTTP 403, text/plain request "
        "HTTP 403; none allows it)",
    )


def test_cross_origin_fails_every_origin_allowed_with_credentials(canned, target):
    allowed = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true"}
    cors_server(
        canned,
        preflight=Response("", status=200, headers=allowed),
        json_post=Response(EXPERIMENTS, status=200, headers=allowed, content_type=JSON),
        plain_post=Response("Unsupported Media Type", status=415),
    )
    finding = posture.cross_origin(probe_cross_origin(target), requires_credentials=False)
    assert finding.status == "fail"
    assert finding.message == (
        f"The server allows every origin with credentials (preflight (OPTIONS) from Origin {FOREIGN_ORIGIN}: "
        "Access-Control-Allow-Origin: * with Allow-Credentials: true)."
    )
    assert finding.tip == posture.CORS_FIX


def test_cross_origin_fails_a_text_plain_post_that_is_carried_out_as_request_forgery(canned, target):
    blocked = Response("Cross-origin request blocked", status=403)
    cors_server(
        canned, preflight=blocked, json_post=blocked, plain_post=Response(EXPERIMENTS, status=200, content_type=JSON)
    )
    finding = posture.cross_origin(probe_cross_origin(target), requires_credentials=False)
    assert finding.status == "fail"
    assert finding.message == (
        "A page on any site can make this server act (cross-site request forgery): POST the experiment search "
        f"as text/plain from Origin {FOREIGN_ORIGIN} was carried out (HTTP 200); browsers send such requests "
        "without asking first."
    )


def test_traversal_probes_go_out_as_written_and_all_refused_passes(canned, target):
    canned.expect_request(re.compile(".*")).respond_with_data("Not Found", status=404)
    answers = probe_traversal(target, RUN, "0")
    assert len(answers) == len(traversal_requests(RUN, "0")) == 14
    assert posture.traversal(answers) == posture.Finding("pass", "14 traversal requests all refused (HTTP 404)")
    # What reached the server: the dot segments were not resolved away by the client on the way.
    arrived = [request.full_path for request, _ in canned.log]
    assert f"/get-artifact?path={'../' * 8}etc/passwd&run_uuid={RUN}" in arrived
    assert any(path.startswith("/api/2.0/mlflow-artifacts/artifacts/..;/..;/") for path in arrived)


def test_every_traversal_probe_reaches_the_server_as_a_request_of_its_own(canned, target):
    canned.expect_request(re.compile(".*")).respond_with_data("Not Found", status=404)
    probe_traversal(target, RUN, "0")
    raw = [request.environ["REQUEST_URI"] for request, _ in canned.log]
    assert len(set(raw)) == len(raw), sorted(raw)


def test_traversal_fails_when_a_file_outside_the_artifact_store_comes_back(canned, target):
    canned.expect_request("/get-artifact", query_string={"path": "/etc/passwd", "run_uuid": RUN}).respond_with_data(
        "root:x:0:0:root:/root:/bin/bash\n", content_type="text/plain"
    )
    canned.expect_request(re.compile(".*")).respond_with_data("Bad Request", status=400)
    finding = posture.traversal(probe_traversal(target, RUN, "0"))
    assert finding.status == "fail"
    assert finding.message == (
        "Files outside the artifact store came back: run artifact, absolute path: "
        f"GET /get-artifact?path=/etc/passwd&run_uuid={RUN} (HTTP 200)"
    )


def test_traversal_warns_about_answers_that_are_neither_a_refusal_nor_a_file(canned, target):
    canned.expect_request(re.compile(r"/static-files/.*")).respond_with_data("Internal Server Error", status=500)
    canned.expect_request(re.compile(".*")).respond_with_data("Not Found", status=404)
    finding = posture.traversal(probe_traversal(target, RUN, "0"))
    assert finding.status == "warn"
    assert finding.message.startswith(
        "13 traversal requests refused; these answered otherwise, without a file's contents: static files, "
        "encoded ../: GET /static-files/"
    )
    assert finding.message.endswith("(HTTP 500)")


def test_headers_probe_passes_a_server_that_sets_nosniff_and_frame_protection(canned, target):
    safe = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"}
    canned.expect_request("/").respond_with_data("<html></html>", content_type="text/html", headers=safe)
    canned.expect_request(SEARCH).respond_with_data(EXPERIMENTS, content_type=JSON, headers=safe)
    answers = probe_headers(target)
    assert [a.request for a in answers] == ["the web app (GET /)", f"GET {SEARCH}?max_results=1"]
    assert posture.security_headers(answers) == posture.Finding(
        "pass", "X-Content-Type-Options and frame protection are set"
    )


def test_headers_probe_warns_about_each_missing_header_where_it_is_missing(canned, target):
    canned.expect_request("/").respond_with_data(
        "<html></html>", content_type="text/html", headers={"Content-Security-Policy": "frame-ancestors 'self'"}
    )
    canned.expect_request(SEARCH).respond_with_data(EXPERIMENTS, content_type=JSON)
    finding = posture.security_headers(probe_headers(target))
    assert finding.status == "warn"
    assert finding.message == (
        "missing: X-Content-Type-Options: nosniff on the web app (GET /); X-Content-Type-Options: nosniff on "
        f"GET {SEARCH}?max_results=1"
    )


def test_anonymous_write_refused_passes_and_nothing_is_taken_back(canned, target):
    canned.expect_request("/api/2.0/mlflow/runs/set-tag", method="POST").respond_with_data("Unauthorized", status=401)
    answer = probe_anonymous_write(target, RUN)
    assert [request.path for request, _ in canned.log] == ["/api/2.0/mlflow/runs/set-tag"]
    assert authorizations(canned) == [None]
    assert canned.log[0][0].get_json() == {
        "run_id": RUN,
        "key": "mlflowcheck.security.write-probe",
        "value": "anonymous",
    }
    assert posture.anonymous_write(answer, loopback=True) == posture.Finding(
        "pass", "a write without credentials is refused (HTTP 401)"
    )


def test_anonymous_write_that_works_is_taken_back_with_the_users_credentials_and_warned_about(canned, target):
    canned.expect_request("/api/2.0/mlflow/runs/set-tag", method="POST").respond_with_data("{}", content_type=JSON)
    canned.expect_request("/api/2.0/mlflow/runs/delete-tag", method="POST").respond_with_data("{}", content_type=JSON)
    answer = probe_anonymous_write(target, RUN)
    assert [request.path for request, _ in canned.log] == [
        "/api/2.0/mlflow/runs/set-tag", "/api/2.0/mlflow/runs/delete-tag"
    ]  # fmt: skip
    assert canned.log[1][0].get_json() == {"run_id": RUN, "key": "mlflowcheck.security.write-probe"}
    set_tag, delete_tag = authorizations(canned)
    assert set_tag is None
    assert (delete_tag or "").startswith("Basic ")
    finding = posture.anonymous_write(answer, loopback=True)
    assert finding.status == "warn"
    assert finding.message == (
        "set a tag on this run without credentials succeeded (HTTP 200; the tag was removed again): anyone on "
        "this machine can change runs"
    )
    assert finding.tip == posture.AUTH_FIX
