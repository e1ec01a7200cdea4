"""Team deployments, for real: nginx round-robin over two `mlflow server` replicas on one
database, artifacts in an S3-compatible object store (moto's server), under a path prefix and
at the root, with and without basic-auth; then broken the ways teams break it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlflowcheck.runtime.browser import find_browser
from tests.databases import database_or_skip
from tests.faultproxy import Fault, FaultProxy
from tests.support import ADMIN_PASSWORD, run_suite, start_server
from tests.team import NGINX, Nginx, ObjectStore, hostport, replicas
from tests.test_broken_deployments import assert_fails


@pytest.fixture(autouse=True)
def nginx_installed():
    if not Path(NGINX).exists():
        message = f"nginx is not installed at {NGINX} (apt-get install nginx; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


FAST = ("-k", "not model and not registry")
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture(scope="module")
def store():
    with ObjectStore() as s:
        yield s


@pytest.fixture(scope="module")
def team(store, tmp_path_factory):
    """Two replicas on one PostgreSQL database, artifacts in a bucket, under /mlflow."""
    work = tmp_path_factory.mktemp("team")
    bucket = store.create_bucket("team-artifacts")
    with database_or_skip("postgresql", work) as db, replicas(
        work, 2, backend_store_uri=db.uri, artifacts_destination=f"s3://{bucket}/mlflow",
        env=store.server_env(), static_prefix="/mlflow",
    ) as reps:  # fmt: skip
        yield reps, bucket


@pytest.fixture(scope="module")
def team_at_root(store, tmp_path_factory):
    """Two basic-auth replicas on one MariaDB database (users in one PostgreSQL database), at the root."""
    work = tmp_path_factory.mktemp("team-root")
    bucket = store.create_bucket("team-root-artifacts")
    # The auth database on PostgreSQL: MLflow's auth migrations fail on MariaDB (two foreign keys of the
    # same name in one database, errno 121).
    with database_or_skip("mariadb", work) as db, database_or_skip("postgresql", work) as auth_db:
        ini = work / "basic_auth.ini"
        ini.write_text(
            f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {auth_db.uri}\nadmin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 60\n"
        )
        env = store.server_env(
            MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MLFLOW_FLASK_SERVER_SECRET_KEY="test-only-key",
        )  # fmt: skip
        with replicas(
            work, 2, backend_store_uri=db.uri, artifacts_destination=f"s3://{bucket}/mlflow", env=env,
            extra_args=["--app-name", "basic-auth"],
        ) as reps:  # fmt: skip
            yield reps, bucket


def test_the_whole_suite_passes_through_nginx_over_two_replicas_with_artifacts_in_the_bucket(team, store, tmp_path):
    reps, bucket = team
    with Nginx(tmp_path / "nginx", [hostport(r) for r in reps], extra="client_max_body_size 64m;") as nginx:
        result = run_suite(tmp_path, "--tracking-uri", nginx.url, "--cleanup", ui=find_browser()[0] is not None)
        reached = nginx.upstreams_reached()
    assert result.code == 0, result.output
    assert result.report["tracking_uri"].endswith("/mlflow")
    assert reached == {hostport(r) for r in reps}  # every replica answered
    assert result.report["topology"]["server_versions_seen"] == ["3.17.2"]
    assert result.check("cleanup")["status"] == "passed"
    # --cleanup deleted the run's objects from the bucket; a second run without it leaves them there.
    again = run_with_nginx(tmp_path / "again", reps, "client_max_body_size 64m;")
    assert again.code == 0, again.output
    assert "cleanup" not in again.statuses()
    run, exp = again.report["run_id"], again.report["experiment_id"]
    keys = store.keys(bucket, f"mlflow/{exp}/")
    assert f"mlflow/{exp}/{run}/artifacts/reports/test_report.txt" in keys
    assert f"mlflow/{exp}/{run}/artifacts/reports/large-artifact.bin" in keys
    assert any(k.endswith("/artifacts/model.skops") for k in keys), keys
    assert not store.keys(bucket, f"mlflow/{result.report['experiment_id']}/{result.report['run_id']}/")


def run_with_nginx(tmp_path: Path, upstreams, extra: str = "", *args: str, prefix="/mlflow", env=None, uri_path=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    with Nginx(tmp_path / "nginx", [hostport(r) if not isinstance(r, str) else r for r in upstreams],
               prefix=prefix, extra=extra) as nginx:  # fmt: skip
        uri = nginx.url if uri_path is None else f"http://127.0.0.1:{nginx.port}{uri_path}"
        return run_suite(tmp_path, "--tracking-uri", uri, *args, env=env)


def test_the_suite_passes_at_the_root_over_basic_auth_replicas_on_mariadb(team_at_root, store, tmp_path):
    reps, bucket = team_at_root
    result = run_with_nginx(tmp_path, reps, "client_max_body_size 64m;", prefix="", env=ADMIN)
    result.assert_all_passed()
    assert store.keys(bucket, f"mlflow/{result.report['experiment_id']}/{result.report['run_id']}/")


# --- broken the ways teams break it ----------------------------------------------------------


def test_the_proxys_body_limit_is_named_with_the_largest_size_that_went_through(team, tmp_path):
    reps, _ = team
    result = run_with_nginx(tmp_path, reps, "", *FAST)  # nginx's default client_max_body_size: 1 MB
    assert_fails(result, "big_artifact", "reverse proxy in front of the server (nginx) refused a 4 MiB upload",
                 "HTTP 413", "the largest that went through was", "client_max_body_size")  # fmt: skip
    # nginx's default limit is 1 MiB of body, and a body of exactly 1 MiB is let through.
    assert "the largest that went through was 1 MiB." in result.check("big_artifact")["message"]
    assert result.statuses()["artifact"] == "passed"
    # The trace's 2 MiB span is lost the same way, though its metadata says the trace is whole.
    lost = "The server holds 2 of the trace's 3 spans (its metadata says 3): missing 检索 (2.0 MiB)."
    assert_fails(result, "trace", lost, "POST /mlflow/v1/traces answered HTTP 413", "nginx", "client_max_body_size")


def test_the_proxys_read_timeout_is_named_as_the_proxy_not_the_server(team, tmp_path):
    reps, _ = team
    slow = Fault("POST", r"/runs/log-batch$", "delay:6", body=r'"metrics"')
    with FaultProxy(reps[0].url.removesuffix("/mlflow"), [slow]) as proxy:
        upstream = proxy.url.removeprefix("http://")
        result = run_with_nginx(tmp_path, [upstream], "proxy_read_timeout 2s;", *FAST)
    assert_fails(result, "metrics", "(nginx) gave up waiting for the server (HTTP 504", "proxy_read_timeout")


def test_replicas_on_different_databases_are_named_not_reported_as_a_flaky_not_found(tmp_path):
    # Each replica with its own SQLite file: what happens when --backend-store-uri is left at its default.
    with replicas(tmp_path, 2) as reps:
        result = run_with_nginx(tmp_path / "run", reps, "", *FAST, prefix="")
    assert_fails(result, "experiment", "do not share one tracking store", "--backend-store-uri")


def test_a_missing_bucket_is_named_with_the_object_stores_own_error_code(store, tmp_path):
    srv = start_server(tmp_path / "srv", artifacts_destination="s3://no-such-bucket/mlflow", env=store.server_env())
    try:
        result = run_suite(tmp_path, "--tracking-uri", srv.url, *FAST)
    finally:
        srv.stop()
    assert_fails(result, "artifact", "object store refused", "NoSuchBucket", "the fix is on the server's side")


def test_artifacts_not_proxied_with_an_s3_root_name_the_design_and_the_clients_credentials(store, tmp_path):
    bucket = store.create_bucket("direct-artifacts")
    srv = start_server(
        tmp_path / "srv", extra_args=["--no-serve-artifacts", "--default-artifact-root", f"s3://{bucket}/direct"],
        env=store.server_env(),
    )  # fmt: skip
    try:
        without = run_suite(tmp_path, "--tracking-uri", srv.url, *FAST)
        # The direct design: the client holds the bucket's credentials and endpoint itself.
        client = {k: v for k, v in store.server_env().items() if k.startswith(("AWS", "MLFLOW_S3"))}
        direct = run_suite(tmp_path, "--tracking-uri", srv.url, *FAST, env=client)
    finally:
        srv.stop()
    assert_fails(
        without, "artifact", "does not proxy artifacts", f"s3://{bucket}/direct", "two designs", "direct access"
    )
    assert direct.code == 0, direct.output
    assert "the direct design" in direct.check("artifact")["message"]
    assert store.keys(bucket, "direct/")


def test_the_bare_host_of_a_server_under_a_prefix_gets_the_address_that_works(team, tmp_path):
    reps, _ = team
    with Nginx(tmp_path / "nginx", [hostport(r) for r in reps]) as nginx:
        result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{nginx.port}")
    assert_fails(result, "server", f"but it does at http://127.0.0.1:{nginx.port}/mlflow",
                 f"use --tracking-uri http://127.0.0.1:{nginx.port}/mlflow", code=2)  # fmt: skip


def test_a_prefix_given_for_a_server_at_the_root_gets_the_address_that_works(team_at_root, tmp_path):
    reps, _ = team_at_root
    result = run_with_nginx(tmp_path, reps, "", prefix="", uri_path="/mlflow", env=ADMIN)
    assert_fails(result, "server", "MLflow does not answer at", "use --tracking-uri http://127.0.0.1:", code=2)
    assert "/mlflow" not in result.check("server")["message"].split("use --tracking-uri ")[1]


def test_a_proxy_that_drops_the_authorization_header_is_named(team_at_root, tmp_path):
    reps, _ = team_at_root
    result = run_with_nginx(tmp_path, reps, 'proxy_set_header Authorization "";', *FAST, prefix="", env=ADMIN)
    assert_fails(result, "access", "HTTP 401", "(nginx) may also be dropping the Authorization header")


def test_a_proxys_own_sign_in_page_is_named(tmp_path):
    page = (
        "<html><head><title>Sign in - Example SSO</title></head><body><form><input type=password></form></body></html>"
    )
    # A gateway that answers everything with its login page: no replica behind it at all.
    shutil.rmtree(tmp_path / "nginx", ignore_errors=True)
    with Nginx(
        tmp_path / "nginx", ["127.0.0.1:9"], prefix="", extra=f"default_type text/html; return 200 '{page}';"
    ) as nginx:
        result = run_suite(tmp_path, "--tracking-uri", nginx.url)
    assert_fails(result, "server", "HTML page (titled 'Sign in - Example SSO')", "single sign-on gateway",
                 "MLFLOW_TRACKING_TOKEN", code=2)  # fmt: skip


def test_a_reverse_proxys_own_404_at_the_root_is_named_with_where_to_find_the_path(tmp_path):
    # MLflow under a path the suite cannot guess: at the root, only nginx's own 404 page.
    with Nginx(tmp_path / "nginx", ["127.0.0.1:9"], prefix="/team-a/tracking") as nginx:
        result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{nginx.port}")
    root = f"http://127.0.0.1:{nginx.port}"
    assert_fails(result, "server", f"A reverse proxy (nginx) answers at {root}, with its own page",
                 "MLflow is probably mounted under a path on it that the tracking URI lacks",
                 "the `location` block", "--static-prefix", code=2)  # fmt: skip
    assert "another service" not in result.check("server")["message"]
