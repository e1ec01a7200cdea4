"""--security: read-only probes of what an attacker would try, against real servers, proving
the FAIL path (a server with protections off, an unsafe proxy, an old server) as well as PASS."""

from __future__ import annotations

import re

import pytest

from mlflowcheck.core.observations import Answer, CrossOrigin, Exposure
from mlflowcheck.explain import advisories, posture
from mlflowcheck.runtime.server import free_port
from tests.faultproxy import Fault
from tests.support import ADMIN_PASSWORD, ALL_CHECKS, run_suite
from tests.test_broken_deployments import assert_fails, run_through_proxy
from tests.test_diagnosis import old_python

SECURITY_CHECKS = ["exposure", "hosts", "cors", "traversal", "headers", "advisories"]
FAST = ("-k", "not model and not registry")  # the model checks have nothing to do with the probes


def security_statuses(result) -> dict[str, str]:
    return {c["name"]: c["status"] for c in result.report["checks"] if c["name"] in [*SECURITY_CHECKS, "writes"]}


def test_default_light_server_on_loopback_passes_with_notes(server, tmp_path):
    junit = tmp_path / "junit.xml"
    result = run_suite(
        tmp_path, "--tracking-uri", server.url, "--security", "--security-write", "--junitxml", str(junit)
    )
    assert result.code == 0, result.output
    assert security_statuses(result) == {**dict.fromkeys(SECURITY_CHECKS, "passed"), "writes": "warn"}
    assert "on loopback only (127.0.0.1)" in result.check("exposure")["message"]
    assert "refused (HTTP 403)" in result.check("hosts")["message"]
    assert "14 traversal requests all refused" in result.check("traversal")["message"]
    assert "MLflow 3.17.2: none of the" in result.check("advisories")["message"]
    assert "anyone on this machine can change runs" in result.check("writes")["message"]
    assert re.search(r"^  WARN  writes ", result.output, re.MULTILINE)
    assert "(1 with warnings)" in result.output
    assert '<property name="warnings" value="writes" />' in junit.read_text()


def test_without_security_no_probe_runs(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, *FAST)
    assert result.code == 0, result.output
    assert set(result.statuses()) == set(ALL_CHECKS) - {"model", "registry"}, result.output
    assert not re.search(rf"^  \w+  ({'|'.join([*SECURITY_CHECKS, 'writes'])}) ", result.output, re.MULTILINE)


def test_server_without_host_protection_or_cors_limits_fails_with_the_options_to_set(fresh_server, tmp_path):
    srv = fresh_server(extra_args=["--allowed-hosts", "*", "--cors-allowed-origins", "*"])
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--security", *FAST)
    assert_fails(result, "hosts", "accepts any Host header", "DNS rebinding", "--allowed-hosts")
    assert_fails(
        result, "cors", "Any web page can read and write", "Access-Control-Allow-Origin: *", "--cors-allowed-origins"
    )
    assert result.statuses()["traversal"] == "passed"


def test_server_with_allowed_hosts_refuses_a_foreign_host(fresh_server, tmp_path):
    port = free_port()  # the suite reaches the server as 127.0.0.1:PORT: allow exactly that
    srv = fresh_server(port=port, extra_args=["--allowed-hosts", f"127.0.0.1:{port}"])
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--security", *FAST)
    assert result.code == 0, result.output
    assert "a foreign Host header is refused" in result.check("hosts")["message"]


def test_basic_auth_server_requires_credentials_for_reads_and_writes(auth_server, tmp_path):
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    result = run_suite(tmp_path, "--tracking-uri", auth_server.url, "--security-write", *FAST, env=env)
    assert result.code == 0, result.output
    assert "the API requires credentials (HTTP 401 without them)" in result.check("exposure")["message"]
    assert "a write without credentials is refused (HTTP 401)" in result.check("writes")["message"]


def test_an_unsafe_proxy_that_serves_the_artifact_directory_by_path_fails_traversal(server, tmp_path):
    root = server.workdir / "mlartifacts"
    unsafe = Fault("GET", r"^/api/2\.0/mlflow-artifacts/artifacts/([^?]+)$", f"serve-dir:{root}")
    result = run_through_proxy(server, tmp_path, unsafe, args=["--security", *FAST])
    assert_fails(result, "traversal", "Files outside the artifact store came back", "encoded ../", "alias")
    assert result.statuses()["artifact"] == "passed"  # the proxy serves the real artifacts too


def test_seed_era_server_is_reported_with_the_advisories_that_apply(fresh_server, tmp_path):
    srv = fresh_server(python=old_python("3.1.4"))
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--security", *FAST)
    expected = [a.id for a in advisories.affecting("3.1.4")]
    assert "CVE-2026-2033" in expected
    assert_fails(result, "advisories", f"MLflow 3.1.4 is affected by {len(expected)} published advisories", *expected,
                 "upgrade the server to MLflow 3.11.1")  # fmt: skip
    assert_fails(result, "hosts", "accepts any Host header")  # host protection came in 3.5


# --- the pure judgements and the table -------------------------------------------------------


def test_the_advisory_table_parses_and_every_row_names_a_fixed_release_outside_its_range():
    for a in advisories.ADVISORIES:
        assert re.fullmatch(r"CVE-\d{4}-\d+", a.id), a
        assert re.fullmatch(r"(GHSA(-[23456789cfghjmpqrvwx]{4}){3}|PYSEC-\d{4}-\d+)", a.advisory), a
        assert not a.affects(a.fixed), a
    assert [a.id for a in advisories.affecting("3.17.2")] == []
    assert advisories.affecting("not a version") == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [("3.9.1", "CVE-2026-2611"), ("3.7.0", "CVE-2026-2033"), ("3.0.0", "CVE-2026-2635"), ("2.22.3", "CVE-2025-11201")],
)
def test_versions_are_matched_to_their_advisories(version, expected):
    assert expected in [a.id for a in advisories.affecting(version)]


def answer(status: int, body: str = "", **headers: str) -> Answer:
    return Answer("probe", status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def test_exposure_is_a_failure_only_off_loopback():
    assert posture.exposure(Exposure(answer(200), ["127.0.0.1"], True)).status == "pass"
    open_to_all = posture.exposure(Exposure(answer(200), ["10.1.2.3"], False))
    assert open_to_all.status == "fail"
    assert "--app-name basic-auth" in open_to_all.tip
    assert posture.exposure(Exposure(answer(401), ["10.1.2.3"], False)).status == "pass"


def test_cors_wildcard_with_credentials_fails_even_when_the_request_was_refused():
    wildcard = answer(403, access_control_allow_origin="*", access_control_allow_credentials="true")
    assert (
        posture.cross_origin(CrossOrigin(wildcard, answer(403), answer(403)), requires_credentials=True).status
        == "fail"
    )
    refused = CrossOrigin(answer(400), answer(403), answer(400))
    assert posture.cross_origin(refused, requires_credentials=False).status == "pass"
    forged = CrossOrigin(answer(400), answer(403), answer(200, '{"experiments": []}'))
    assert "cross-site request forgery" in posture.cross_origin(forged, requires_credentials=True).message


def test_a_passwd_line_or_an_etc_listing_is_a_leak_and_a_refusal_is_not():
    assert posture.leaks_a_file(answer(200, "root:x:0:0:root:/root:/bin/bash"))
    assert posture.leaks_a_file(answer(200, '{"files": [{"path": "passwd"}]}'))
    assert not posture.leaks_a_file(answer(400, "root:x:0:0:"))
    assert posture.traversal([answer(400), answer(404)]).status == "pass"


def test_missing_security_headers_are_a_warning_with_the_header_to_add():
    finding = posture.security_headers([Answer("the web app (GET /)", 200, {})])
    assert finding.status == "warn"
    assert "X-Frame-Options" in finding.message
    assert "add_header" in finding.tip
