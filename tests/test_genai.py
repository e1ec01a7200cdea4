"""The GenAI group against real servers: what a healthy server stores is read back whole, and
what a deployment loses is named (the route, the proxy, the body limit). The seed's 3.1.4 is in
tests/test_support_matrix.py, a proxy's body limit in tests/test_team_deployment.py, a server
killed during the trace in tests/test_server_death.py; PostgreSQL and MariaDB run every check
in tests/test_backends.py."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.faultproxy import Fault, FaultProxy
from tests.support import run_suite

GENAI = ["trace", "otlp", "assessments", "prompts", "evaluation"]


def test_what_the_genai_checks_wrote_is_on_the_server_as_they_say(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, "--no-ui", "-k", "not load")
    assert [result.statuses()[name] for name in GENAI] == ["passed"] * 5, result.output
    client = MlflowClient(server.url)
    experiment, run_id = result.report["experiment_id"], result.report["run_id"]
    trace_id = result.check("trace")["message"].split(":")[0]
    # An independent look at what the checks claim: the trace, its spans in the database, its
    # links, the assessments, the OpenTelemetry trace and the evaluation run.
    trace = client.get_trace(trace_id)
    assert [s.name for s in trace.data.spans] == ["本地测试应用", "检索", "失败的工具"]
    assert trace.info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run_id
    # Linked to the app's own logged model (set_active_model), not to the seed's scikit-learn model.
    app = client.get_logged_model(trace.info.trace_metadata["mlflow.modelId"])
    assert (app.name, app.experiment_id, app.source_run_id) == (f"本地测试应用-{run_id}", experiment, run_id)
    assert app.model_id in result.check("trace")["message"]
    assert app.model_id not in result.check("model")["message"]
    assert {a.name for a in trace.info.assessments} == {"正确性", "期望答案"}
    otlp_id = result.check("otlp")["message"].split(":")[0]
    assert client.get_trace(otlp_id).info.experiment_id == experiment
    evaluation_run = result.check("evaluation")["message"].split("evaluate run ")[1].split(":")[0]
    assert client.get_run(evaluation_run).data.metrics["完全一致/mean"] == 1.0
    prompt = result.check("prompts")["message"].split(":")[0]
    assert client.load_prompt(f"prompts:/{prompt}@mlflowcheck").version == 1


def test_a_proxy_that_does_not_pass_the_opentelemetry_route_is_named(server, tmp_path):
    # As a reverse proxy that forwards only /api/ answers the rest: its own 404 page.
    blocked = Fault("POST", r"/v1/traces$", "status:404", payload=b"<html>404 Not Found</html>")
    with FaultProxy(server.url, [blocked]) as proxy:
        result = run_suite(tmp_path, "--tracking-uri", proxy.url, "--no-ui", "-k", "not load")
    assert result.code == 1, result.output
    statuses = result.statuses()
    assert statuses["otlp"] == "failed", result.output
    otlp = result.check("otlp")["message"]
    assert "POST /v1/traces (OpenTelemetry's exporter) answered HTTP 404" in otlp
    assert "/v1/traces is outside /api/" in otlp
    # MLflow's own client falls back to traces.json in the artifact store: its trace is whole,
    # and the check says what OpenTelemetry clients lose.
    assert statuses["trace"] == "warn", result.output
    trace = result.check("trace")["message"]
    assert "3 spans read back equal" in trace
    assert "spans in traces.json in the artifact store" in trace
    assert "POST /v1/traces answered HTTP 404" in trace
    assert "OpenTelemetry exporters (collectors, other languages) that send to /v1/traces lose theirs" in trace
    assert "/v1/traces is outside /api/" in trace
    assert statuses["assessments"] == "passed"
    assert "Traceback" not in result.output


def private_view(tmp_path: Path, directory: Path) -> Path:
    """A python that runs in a mount namespace of its own, where ``directory`` is an empty tmpfs:
    the suite sees the server's artifact root as a client on another machine does."""
    if shutil.which("unshare") is None or subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, timeout=30
    ).returncode:  # fmt: skip
        pytest.skip("no private mount namespaces here (unshare --mount)")
    wrapper = tmp_path / "python-in-a-private-mount"
    wrapper.write_text(
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private -- "
        'sh -c \'mount -t tmpfs client-side "$1" && shift && exec "$@"\' sh '
        f'{shlex.quote(str(directory))} {shlex.quote(sys.executable)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_artifacts_not_served_fail_while_the_trace_passes_with_its_spans_in_the_database(fresh_server, tmp_path):
    # A trace proves nothing about artifacts: with --no-serve-artifacts a client elsewhere
    # writes "artifacts" to a path on its own disk, while spans go to the server's database.
    server_side = tmp_path / "server-side"
    server_side.mkdir()
    srv = fresh_server(extra_args=["--no-serve-artifacts", "--default-artifact-root", str(server_side)])
    python = private_view(tmp_path, server_side)
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "-k", "not load", python=python)
    statuses = result.statuses()
    assert statuses["artifact"] == "failed", result.output
    assert "a path on the client" in result.check("artifact")["message"]
    assert statuses["trace"] == "passed", result.output
    trace = result.check("trace")["message"]
    assert "spans in the tracking database (POST /v1/traces)" in trace
    trace_id = trace.split(":")[0]
    spans = MlflowClient(srv.url).get_trace(trace_id).data.spans
    assert [s.name for s in spans] == ["本地测试应用", "检索", "失败的工具"]
    # What the client wrote under the artifact root stayed on its own disk (the tmpfs), never the server's.
    assert not any(server_side.iterdir()), sorted(server_side.rglob("*"))
