"""Safe to point at a shared server: no secret leaks, nothing from the server run unverified,
only the suite's own data touched (and, with --cleanup, deleted), any input answered."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import pickle
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from mlflowcheck.core import seed
from mlflowcheck.net.http import ResponseDeadline, http
from mlflowcheck.runtime.browser import find_browser
from mlflowcheck.runtime.server import free_port
from tests.databases import database_or_skip
from tests.faultproxy import Fault
from tests.listener import RecordingListener, StuckServer
from tests.support import ADMIN_PASSWORD, run_suite
from tests.test_broken_deployments import assert_fails, run_through_proxy
from tests.test_monitoring import probe as run_probe

# --- secrets ---------------------------------------------------------------------------------

#: Canaries: a password with the characters that break naive redaction, a token, a database password.
CANARY = ADMIN_PASSWORD  # the session basic-auth server's admin password
TOKEN_CANARY = f"tok-canary-{uuid.uuid4().hex[:10]}"
DB_CANARY = f"db-canary-{uuid.uuid4().hex[:10]}"


def admin(srv) -> tuple[str, str]:
    return ("admin", CANARY)


def places_written(result, tmp_path: Path, server_log: Path, srv_url: str, auth) -> dict[str, str]:
    """Everything the suite wrote or uploaded, as text: where a secret must never be."""
    from mlflow import MlflowClient

    places = {"stdout and stderr": result.output, "the JSON report": json.dumps(result.report, ensure_ascii=False)}
    places["the JUnit XML"] = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    places["the server log"] = server_log.read_text(errors="replace")
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = auth or ("", "")
    try:
        client = MlflowClient(srv_url)
        run = client.get_run(result.report["run_id"])
        report = client.download_artifacts(run.info.run_id, seed.REPORT_PATH, dst_path=str(tmp_path / "dl"))
        places["the report artifact, downloaded back"] = Path(report).read_text(encoding="utf-8")
        places["the run's params and tags"] = json.dumps([run.data.params, run.data.tags], ensure_ascii=False)
        experiment = client.get_experiment(result.report["experiment_id"])
        places["the experiment's tags"] = json.dumps(experiment.tags, ensure_ascii=False)
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)
    return places


def assert_no_leak(places: dict[str, str], *secrets: str) -> None:
    for secret in secrets:
        for fragment in {secret, secret.split("/")[-1], requests.utils.quote(secret, safe="")}:
            leaked = [name for name, text in places.items() if fragment in text]
            assert not leaked, f"{fragment!r} leaked into {leaked}"


def test_a_password_in_the_tracking_uri_is_used_and_leaks_nowhere(auth_server, tmp_path):
    srv = auth_server
    uri = srv.url.replace("http://", f"http://admin:{CANARY}@")  # unencoded @ and / in the password
    result = run_suite(
        tmp_path, "--tracking-uri", uri, "--junitxml", str(tmp_path / "junit.xml"), ui=find_browser()[0] is not None
    )
    result.assert_all_passed()
    assert f"MLflow deployment check: {srv.url} " in result.output
    assert result.report["tracking_uri"] == srv.url
    places = places_written(result, tmp_path, srv.log_path, srv.url, admin(srv))
    assert len(places) == 7
    assert_no_leak(places, CANARY)


def test_passwords_and_tokens_in_the_environment_leak_nowhere(auth_server, tmp_path):
    srv = auth_server
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": CANARY}
    env["MLFLOW_TRACKING_TOKEN"] = TOKEN_CANARY
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--junitxml", str(tmp_path / "junit.xml"), env=env)
    result.assert_all_passed()
    places = places_written(result, tmp_path, srv.log_path, srv.url, admin(srv))
    assert_no_leak(places, CANARY, TOKEN_CANARY)


def test_a_probes_password_in_the_uri_or_the_environment_leaks_nowhere(auth_server, tmp_path):
    srv = auth_server
    textfile = tmp_path / "mlflow_probe.prom"
    uri = srv.url.replace("http://", f"http://admin:{CANARY}@")
    in_uri = run_probe(tmp_path, "--tracking-uri", uri, "--prom-textfile", str(textfile))
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": CANARY}
    in_env = run_probe(tmp_path, "--tracking-uri", srv.url, env=env)
    for code, output, _ in (in_uri, in_env):
        assert code == 0, output
    assert f'mlflowcheck_probe_success{{target="{srv.url}"}} 1.0' in textfile.read_text()
    places = {
        "stdout and stderr": in_uri[1] + in_env[1],
        "the JSON reports": json.dumps([in_uri[2], in_env[2]], ensure_ascii=False),
        "the textfile": textfile.read_text(),
        "the server log": srv.log_path.read_text(errors="replace"),
    }
    assert_no_leak(places, CANARY)


def test_a_database_password_in_the_backend_store_uri_leaks_nowhere(tmp_path):
    with database_or_skip("postgresql", tmp_path) as db:
        # PostgreSQL here trusts local connections: the password is sent and ignored.
        uri = db.uri.replace("postgres@", f"postgres:{DB_CANARY}@")
        server_dir = tmp_path / "server"
        result = run_suite(
            tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
            "--server-dir", str(server_dir), "--backend-store-uri", uri, "--junitxml", str(tmp_path / "junit.xml"),
            "-k", "not model and not registry",
        )  # fmt: skip
        assert result.code == 0, result.output
        assert "postgresql+psycopg2://postgres:***@127.0.0.1:5432/" in result.output  # SQLAlchemy's rendering
        # The suite stopped the server it started: read what it stored from the stores themselves.
        exp, run = result.report["experiment_id"], result.report["run_id"]
        report = server_dir / "mlartifacts" / exp / run / "artifacts" / seed.REPORT_PATH
        places = {
            "stdout and stderr": result.output,
            "the JSON report": json.dumps(result.report, ensure_ascii=False),
            "the JUnit XML": (tmp_path / "junit.xml").read_text(encoding="utf-8"),
            "the server log": (server_dir / "mlflow-server.log").read_text(errors="replace"),
            "the report artifact, as stored": report.read_text(encoding="utf-8"),
            "the run's params and tags": repr(
                db.query("select key, value from params where run_uuid = %s", run)
                + db.query("select key, value from tags where run_uuid = %s", run)
                + db.query("select key, value from experiment_tags where experiment_id = %s", int(exp))
            ),
        }
        assert "local_test" in places["the run's params and tags"]  # the query reads the run
    assert_no_leak(places, DB_CANARY)


def test_403_is_explained_as_a_permission_with_the_grant_command(auth_server, tmp_path):
    srv = auth_server
    password = f"bob-pw-{uuid.uuid4().hex}"
    user = f"bob{uuid.uuid4().hex[:6]}"
    model = f"team-model-{uuid.uuid4().hex[:6]}"
    api = f"{srv.url}/api/2.0/mlflow"
    requests.post(f"{api}/users/create", json={"username": user, "password": password}, auth=admin(srv), timeout=30)
    resp = requests.post(f"{api}/registered-models/create", json={"name": model}, auth=admin(srv), timeout=30)
    assert resp.status_code == 200, resp.text
    env = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--registered-model", model, env=env)
    expected = (f"does not allow the account {user!r}", "HTTP 403", "create_registered_model_permission")
    assert_fails(result, "registry", *expected)
    assert "artifact store" not in result.check("registry")["message"]
    assert result.statuses()["model"] == "passed"


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (key, cert)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.mark.parametrize(
    "given", ["https", "http"], ids=["https-uri-to-a-plain-listener", "http-uri-to-a-tls-listener"]
)
def test_credentials_never_reach_the_same_host_over_the_other_scheme(given, certificate, tmp_path):
    # The address fails with the scheme given, so the suite asks the same port over the other
    # scheme which one it speaks: plain HTTP would carry the password in clear text, and the
    # https probe does not verify the certificate, so neither may carry credentials.
    key, cert = certificate
    with RecordingListener(*((cert, key) if given == "http" else ())) as listener:
        uri = f"{given}://admin:{CANARY}@127.0.0.1:{listener.port}"
        env = {"MLFLOW_TRACKING_PASSWORD": CANARY, "MLFLOW_TRACKING_TOKEN": TOKEN_CANARY}
        result = run_suite(tmp_path, "--tracking-uri", uri, env=env)
    other = "http" if given == "https" else "https"
    assert_fails(result, "server", f"speaks {'plain HTTP' if other == 'http' else 'HTTPS'}", code=2)
    seen = listener.requests_seen()
    assert "GET /version HTTP/1.1" in seen  # the probe did reach the listener
    assert "authorization" not in seen.lower()
    places = {"the listener on the other scheme": seen, "stdout and stderr": result.output}
    places["the JSON report"] = json.dumps(result.report, ensure_ascii=False)
    assert_no_leak(places, CANARY, TOKEN_CANARY)


# --- nothing from the server runs unverified -------------------------------------------------


class Trap:
    """A pickle that, when loaded, creates a file: what a malicious server would send."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_model_file_swapped_on_the_server_is_never_loaded(server, tmp_path):
    marker = tmp_path / "the-server-ran-code-here"
    payload = pickle.dumps(Trap(marker))
    result = run_through_proxy(
        server, tmp_path, Fault("GET", r"/artifacts/.*model\.pkl$", "replace:", payload=payload),
        args=["--model-format", "pickle"],
    )  # fmt: skip
    assert_fails(result, "model", "are not the ones this suite saved, so nothing was loaded", "model.pkl: sha256 ")
    assert hashlib.sha256(payload).hexdigest() in result.check("model")["message"]
    assert not marker.exists()
    assert result.statuses()["registry"] == "skipped"


def test_registry_fails_when_the_alias_resolves_to_another_version(server, tmp_path):
    other = json.dumps({"model_version": {"name": "mlflow-local-test-model", "version": "999"}}).encode()
    result = run_through_proxy(server, tmp_path, Fault("GET", r"/registered-models/alias", "status:200", payload=other))
    assert_fails(result, "registry", "resolves to version 999, not to", "--alias")


def test_terminal_escape_sequences_from_the_server_are_printed_escaped(server, tmp_path):
    evil = json.dumps({"error_code": "INTERNAL_ERROR", "message": "boom\x1b[2J\x1b]0;pwned\x07"}).encode()
    result = run_through_proxy(server, tmp_path, Fault("POST", r"/experiments/create$", "status:500", payload=evil))
    assert_fails(result, "experiment", "boom\\x1b[2J\\x1b]0;pwned\\x07")
    assert "\x1b" not in result.output
    assert "\x07" not in result.output


# --- any input gets an answer, never a hang --------------------------------------------------


@pytest.mark.parametrize("drip", [False, True], ids=["silent", "drip-feeding"])
def test_a_server_that_accepts_and_never_answers_gets_a_verdict_in_bounded_time(tmp_path, drip):
    stuck = StuckServer(drip)
    try:
        result = run_suite(tmp_path, "--tracking-uri", f"http://127.0.0.1:{stuck.port}", timeout=120)
    finally:
        stuck.close()
    assert_fails(result, "server", "did not answer GET /version completely within 30s", code=2)
    assert result.seconds < 45, f"took {result.seconds:.0f}s"


def connections_to(port: int) -> int:
    """Open client connections of this process to ``port`` (ESTABLISHED or closing half-way)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the directory's own descriptor is gone once listed
            inodes.add(os.readlink(f"/proc/self/fd/{fd}"))
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
        if remote_port == port and state in ("01", "08") and f"socket:[{inode}]" in inodes:  # ESTABLISHED, CLOSE_WAIT
            count += 1
    return count


def test_a_drip_feeding_server_given_up_on_leaves_no_thread_and_no_open_connection():
    stuck = StuckServer(drip=True)
    threads_before = set(threading.enumerate())
    try:
        started = time.monotonic()
        with pytest.raises(ResponseDeadline):
            http("GET", f"http://127.0.0.1:{stuck.port}/version", deadline=2.5)
        assert time.monotonic() - started < 4
        left = [t.name for t in set(threading.enumerate()) - threads_before if not t.name.startswith("Thread-")]
        assert left == [], f"threads still running after the deadline: {left}"
        assert connections_to(stuck.port) == 0
    finally:
        stuck.close()


def test_http_to_a_tls_server_is_told_to_use_https_and_https_then_passes(fresh_server, certificate, tmp_path):
    key, cert = certificate
    srv = fresh_server(extra_args=["--uvicorn-opts", f"--ssl-keyfile {key} --ssl-certfile {cert}"], scheme="https")
    plain = f"http://127.0.0.1:{srv.port}"
    result = run_suite(tmp_path, "--tracking-uri", plain)
    expected = ("speaks HTTPS, not plain HTTP", f"use --tracking-uri https://127.0.0.1:{srv.port}")
    assert_fails(result, "server", *expected, code=2)
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in result.check("server")["message"]
    secure = run_suite(
        tmp_path, "--tracking-uri", f"https://127.0.0.1:{srv.port}", env={"MLFLOW_TRACKING_SERVER_CERT_PATH": str(cert)}
    )
    secure.assert_all_passed()


# --- only its own data -----------------------------------------------------------------------


def test_eight_suites_started_at_once_each_get_their_own_experiment_and_data(server, tmp_path):
    from mlflow import MlflowClient

    # Take the seed's names for the next two minutes: every suite must fall back to _2, _3 ...
    # at the same moment, so they race for the same names by construction, not by luck.
    client = MlflowClient(server.url)
    now = int(time.time())
    taken = {client.create_experiment(seed.experiment_name(now + s)) for s in range(120)}

    def one(i: int):
        return run_suite(tmp_path / f"suite{i}", "--tracking-uri", server.url, timeout=600)

    for i in range(8):
        (tmp_path / f"suite{i}").mkdir()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for result in results:
        result.assert_all_passed()
    experiments = {r.report["experiment_id"] for r in results}
    names = {r.report["experiment_name"] for r in results}
    assert len(experiments) == len(names) == 8
    assert not experiments & taken
    assert all(n.rsplit("_", 1)[-1].isdigit() and n.count("_") == 2 for n in names), names
    for r in results:  # each read back its own data: its run is in its own experiment
        assert client.get_run(r.report["run_id"]).info.experiment_id == r.report["experiment_id"]
    assert len({r.check("registry")["message"].split(" version ")[1].split(",")[0] for r in results}) == 8
    for exp_id in taken:  # the experiments it did not create are untouched
        assert client.get_experiment(exp_id).lifecycle_stage == "active"


def server_snapshot(url: str, artifacts: Path, exclude_experiments: set[str]) -> dict:
    """Everything on the server but the given experiments: experiments, runs (params, metric
    histories, tags), logged models, traces (spans, assessments), registered models, versions,
    aliases, prompts and their versions, evaluation datasets, artifact files."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(url)
    snap: dict = {"experiments": {}, "runs": {}, "logged_models": {}, "traces": {}}
    for e in client.search_experiments(view_type=ViewType.ALL):
        if e.experiment_id in exclude_experiments:
            continue
        snap["experiments"][e.experiment_id] = (e.name, e.lifecycle_stage, e.artifact_location, e.tags)
        for r in client.search_runs([e.experiment_id], run_view_type=ViewType.ALL):
            histories = {k: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(r.info.run_id, k)]
                         for k in r.data.metrics}  # fmt: skip
            snap["runs"][r.info.run_id] = (r.info.status, r.info.lifecycle_stage, r.data.params, r.data.tags, histories)
        for m in client.search_logged_models(experiment_ids=[e.experiment_id]):
            snap["logged_models"][m.model_id] = (m.name, str(m.status), m.source_run_id)
        for t in client.search_traces(locations=[e.experiment_id], max_results=500):
            spans = [(s.name, s.parent_id) for s in t.data.spans]
            snap["traces"][t.info.trace_id] = (spans, sorted(a.name for a in t.info.assessments))
    snap["registered_models"] = {m.name: (m.aliases, m.tags) for m in client.search_registered_models()}
    snap["prompts"] = {
        p.name: sorted((v.version, v.template) for v in client.search_prompt_versions(p.name))
        for p in client.search_prompts()
    }
    snap["datasets"] = {d.dataset_id: d.name for d in client.search_datasets(max_results=500)}
    snap["versions"] = {
        (v.name, v.version): (v.source, v.run_id, v.status, sorted(v.aliases)) for v in client.search_model_versions()
    }
    snap["artifacts"] = {
        p.relative_to(artifacts).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in artifacts.rglob("*")
        if p.is_file()
    }
    return snap


def someone_elses_data(url: str) -> None:
    """What other users of the server have: an experiment, a finished run with params,
    metrics, tags and an artifact, a version of the suite's registered model behind an alias, a prompt."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    exp = client.create_experiment(f"team-experiment-{uuid.uuid4().hex[:6]}", tags={"team": "ml"})
    run = client.create_run(exp, run_name="their-run")
    client.log_param(run.info.run_id, "lr", "0.1")
    for step in range(3):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    client.set_tag(run.info.run_id, "owner", "someone else")
    client.log_text(run.info.run_id, "their notes", "notes/readme.txt")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("mlflow-local-test-model")
    version = client.create_model_version(
        "mlflow-local-test-model", f"{run.info.artifact_uri}/notes", run_id=run.info.run_id
    )
    client.set_registered_model_alias("mlflow-local-test-model", "champion", version.version)
    client.register_prompt("their-prompt", "他们的提示：{{ 问题 }}")
    # A model with the monitoring probe's name prefix, not its tag: the probe's sweep leaves it.
    client.create_registered_model("mlflowcheck-probe-theirs")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cleanup_deletes_exactly_what_the_run_created_and_nothing_else(backend, fresh_server, tmp_path):
    with database_or_skip(backend, tmp_path) as db:
        srv = fresh_server(backend_store_uri=db.uri)
        someone_elses_data(srv.url)
        artifacts = srv.workdir / "mlartifacts"
        before = server_snapshot(srv.url, artifacts, set())
        # Once moving the shared alias "champion" (put back afterwards), once with the run's own alias.
        moved = run_suite(tmp_path, "--tracking-uri", srv.url, "--cleanup", "--alias", "champion")
        # ... and with the load probe, whose runs and artifacts are this run's too.
        own = run_suite(tmp_path, "--tracking-uri", srv.url, "--cleanup", "--load", "2", "--load-seconds", "1")
        # ... and the monitoring probe's cycles, which delete what they wrote (the first creates the
        # probe's own experiment, which they keep).
        probes = [run_probe(tmp_path, "--tracking-uri", srv.url) for _ in range(2)]
        probe_experiment = MlflowClient(srv.url).get_experiment_by_name("mlflowcheck-probe").experiment_id
        mine = {moved.report["experiment_id"], own.report["experiment_id"], probe_experiment}
        after = server_snapshot(srv.url, artifacts, mine)
        deleted = server_snapshot(srv.url, artifacts, set())
    for result in (moved, own):
        assert result.code == 0, result.output
        assert result.check("cleanup")["status"] == "passed", result.output
        message = result.check("cleanup")["message"]
        assert "only moves runs and experiments to the trash" in message
        gc = "mlflow gc --backend-store-uri <the server's --backend-store-uri> --experiment-ids"
        assert f"{gc} {result.report['experiment_id']}" in message
        assert "(moved to the trash by --cleanup)" in result.output
    assert "alias @champion points at version 1 again, as before this run" in moved.check("cleanup")["message"]
    assert "removed alias @check-" in own.check("cleanup")["message"]
    assert "deleted the app's logged model m-" in own.check("cleanup")["message"]
    for result in (moved, own):  # the seed's model and the app's (the trace's) are both gone
        run_id = result.report["run_id"]
        assert not [m for m in deleted["logged_models"].values() if m[2] == run_id], deleted["logged_models"]
    assert own.check("cleanup")["message"].count("deleted load run ") == 2
    assert [code for code, _, _ in probes] == [0, 0], probes[-1][1]
    assert after == before
    for exp_id in mine - {probe_experiment}:  # the run's own experiment and run are in the trash
        assert deleted["experiments"][exp_id][1] == "deleted"
    assert {r[1] for rid, r in deleted["runs"].items() if rid not in before["runs"]} == {"deleted"}


def test_without_cleanup_nothing_is_deleted(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, "-k", "not model and not registry")
    assert result.code == 0, result.output
    assert "cleanup" not in result.statuses()
    exp = result.report["experiment_id"]
    assert (server.workdir / "mlartifacts" / exp / result.report["run_id"] / "artifacts" / "reports").is_dir()
